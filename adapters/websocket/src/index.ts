/**
 * The websocket transport (MSC3009) for Node: a server that widgets connect to.
 *
 * @packageDocumentation
 * @module @widgethost/websocket
 */
export * from "./listen.ts"
export * from "./websocket.ts"
export * from "./transport-types.ts"
export * from "./link-endings.ts"
export { corkForThisTurn } from "./corked-writes.ts"
