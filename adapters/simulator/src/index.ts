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
export { scenarioReportOf, type OutageSeen, type ScenarioOutcome, type ScenarioReport, type WidgetReport } from "./scenario-verdict.ts"
export type { WidgetOutcome } from "./scenario-widget.ts"
export type { SecondBucket } from "./run-timeline.ts"
export { renderReportPage, type ReportPage, type Rows, type Table } from "./report-html.ts"
export type { WidgetStat } from "./run-report.ts"
export * from "./report-page.ts"
export * from "./scenario-command.ts"
export * from "./simulate-workers.ts"
export * from "./scaling.ts"
export type { FromWorker, SendCounts, ShareInput, ShareOptions, ShareReport, ToWorker } from "./simulate-worker.ts"
