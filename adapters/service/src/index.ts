/**
 * The `widgethost` service and CLI: hosts a room's widgets over websockets with an approval console.
 *
 * @packageDocumentation
 * @module @widgethost/service
 */
export type { AdminAccount } from "./admin-account.ts"
export * from "./admin-block.ts"
export * from "./admin-console-page.ts"
export * from "./admin-users.ts"
export * from "./admin.ts"
export * from "./approvals.ts"
export * from "./config.ts"
export * from "./configured-rooms.ts"
export * from "./delivery-journal.ts"
export * from "./delivery-resume.ts"
export * from "./device-trust.ts"
export * from "./homeserver-health.ts"
export * from "./log.ts"
export * from "./message-log.ts"
export * from "./serve.ts"
export * from "./widget-blocklist.ts"
export * from "./widget-host.ts"
export * from "./widget-uris.ts"
export { conformHost, type ConformHostOptions, type ConformReport, type Finding, type PathResult } from "./conform/conform-host.ts"
export { defaultHarness, type Harness, HarnessError, loadHarness, makeHarness } from "./conform/harness.ts"
export type { Divergence } from "./conform/host-checks.ts"
export { hostJunit, hostSummary } from "./conform/host-report.ts"
export { describePath, type Step } from "./conform/widget-steps.ts"
