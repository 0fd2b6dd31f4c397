/**
 * An in-process Matrix homeserver speaking the real client-server HTTP API on 127.0.0.1, so the
 * widgethost service and its tests run without an external homeserver, and real clients
 * (matrix-js-sdk, matrix-sdk-crypto) can talk to it. Persistent with `dataDir`, in memory without.
 *
 * @packageDocumentation
 * @module @widgethost/embedded-homeserver
 */
export { startEmbeddedHomeserver } from "./server.ts"
export type { EmbeddedHomeserver, EmbeddedHomeserverOptions, Fault, FaultKind } from "./server.ts"
export type { DelayedEventsShape } from "./routing.ts"
export { MatrixError } from "./errors.ts"
