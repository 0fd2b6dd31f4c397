/**
 * The homeserver port over Matrix client-server HTTP, with end-to-end encryption (matrix-sdk-crypto), cross-signing and secret storage. Node.
 *
 * @packageDocumentation
 * @module @widgethost/homeserver-client
 */
export * from "./account-calls.ts"
export * from "./account-secrets.ts"
export * from "./cross-signing.ts"
export * from "./crypto-store.ts"
export * from "./crypto.ts"
export * from "./crypto-error.ts"
export * from "./decrypting-timeline.ts"
export * from "./key-backup.ts"
export * from "./load-progress.ts"
export * from "./matrix-homeserver.ts"
export * from "./matrix-http.ts"
export * from "./missed-events.ts"
export * from "./secret-storage.ts"
export * from "./verification-flow.ts"
export * from "./verification.ts"
export { type SyncErrorKind, type SyncHealth, syncErrorKind } from "./sync-health.ts"
