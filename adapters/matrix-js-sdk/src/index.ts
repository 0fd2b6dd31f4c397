/**
 * The engine's homeserver port over a matrix-js-sdk `MatrixClient` the client already runs: the
 * widget acts through the client's own session, sync and crypto (`fromMatrixClient`).
 *
 * @packageDocumentation
 * @module @widgethost/matrix-js-sdk
 */
export { fromMatrixClient, type MatrixClientPort, type MatrixClientPortOptions } from "./matrix-client-port.ts"
export type { ReadEventsOptions } from "./read-events.ts"
export type { RoomFeedOptions, UndecryptableEvent } from "./room-feed.ts"
