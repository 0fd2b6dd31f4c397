/**
 * A testing kit for projects that embed widgethost: an in-memory homeserver port, a manual clock and a widget harness.
 *
 * @packageDocumentation
 * @module @widgethost/testing
 */
export * from "./in-memory-homeserver.ts"
export * from "./manual-clock.ts"
export * from "./widget-harness.ts"
