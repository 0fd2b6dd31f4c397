/**
 * Headless simulations of many widgets and users against a homeserver.
 *
 * @packageDocumentation
 * @module @widgethost/simulator
 */
export * from "./cli-flags.ts"
export * from "./simulate-options.ts"
export * from "./workload.ts"
export * from "./simulate.ts"
export * from "./simulate-command.ts"
export * from "./fault-proxy.ts"
export * from "./scenario-file.ts"
export { runScenario } from "./scenario-run.ts"
export { runScenarioOnWorkers, type ScenarioWorkerRow, type ScenarioWorkersReport } from "./scenario-workers.ts"
export type { ScenarioReport, WidgetReport } from "./scenario-verdict.ts"
export * from "./scenario-command.ts"
export * from "./simulate-workers.ts"
export * from "./scaling.ts"
export type { FromWorker, SendCounts, ShareInput, ShareOptions, ShareReport, ToWorker } from "./simulate-worker.ts"
