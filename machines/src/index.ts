/**
 * The session runtime: the xstate session chart, the router and the engine a client embeds (`createEngine`).
 *
 * @packageDocumentation
 * @module @widgethost/engine
 */
export * from "./session-machine.ts"
export * from "./session-charts.ts"
export { RecordedSteps, recordedSteps } from "./recorded-steps.ts"
export * from "./router.ts"
export * from "./turn-poller.ts"
export * from "./engine.ts"
export * from "./create-engine.ts"
export * from "./widget-session.ts"
export * from "./timer-queue.ts"
export type { OpenIdApprovalRequest, OpenIdApprover } from "@widgethost/core"
export * from "./client-hooks.ts"
export * from "./lifecycle.ts"
export { WidgetRequestError } from "./session-handle.ts"
