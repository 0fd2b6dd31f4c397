/**
 * A drop-in for matrix-widget-api's `ClientWidgetApi`: the same constructor, events and methods,
 * any `WidgetDriver`, run through the widgethost engine.
 *
 * @packageDocumentation
 * @module @widgethost/client-widget-api
 */
export * from "./client-widget-api.ts"
export type { DropInTransport } from "./widget-traffic.ts"
export { DriverPort, type DriverPortOptions } from "./driver-port.ts"
export { definitionOf } from "./widget-definition.ts"
