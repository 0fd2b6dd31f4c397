export { fromMatrixClient, type MatrixClientPort, type MatrixClientPortOptions } from "./matrix-client-port.ts"
export type { ReadEventsOptions } from "./read-events.ts"
export type { RoomFeedOptions, UndecryptableEvent } from "./room-feed.ts"
