import type { JsonObject } from "./decode.ts"

/**
 * The journal's vocabulary: every mutation of the homeserver is one or more of these records.
 * The in-memory state is nothing but the fold of all records ever committed (`Store.apply`), so
 * replaying the journal after a crash rebuilds exactly what was acknowledged. Records therefore
 * carry every input the fold needs (ids, timestamps, hashes), never anything to be recomputed
 * from a clock or a random source.
 *
 * `pos` is the position on the single stream that `/sync`, `/messages` and `/keys/changes` tokens
 * point into. Only records a client can observe through a token take a position, and every one of
 * them is journaled, so after a restart the stream continues where the last durable record left
 * it and no token a client holds can point past the end.
 */
export type JournalRecord =
  | { readonly t: "user"; readonly userId: string; readonly passwordHash: string; readonly ts: number }
  | { readonly t: "password"; readonly userId: string; readonly passwordHash: string }
  | { readonly t: "device"; readonly pos: number; readonly userId: string; readonly deviceId: string; readonly displayName?: string; readonly ts: number }
  | { readonly t: "device.deleted"; readonly pos: number; readonly userId: string; readonly deviceId: string }
  | { readonly t: "token"; readonly tokenKey: string; readonly userId: string; readonly deviceId: string }
  | { readonly t: "token.revoked"; readonly tokenKey: string }
  | { readonly t: "profile"; readonly userId: string; readonly displayname?: string | null; readonly avatar_url?: string | null }
  | { readonly t: "event"; readonly pos: number; readonly event: StoredEvent; readonly txn?: Txn }
  | { readonly t: "room.visibility"; readonly roomId: string; readonly visibility: "public" | "private" }
  | { readonly t: "alias"; readonly alias: string; readonly roomId: string | null; readonly creator: string }
  | { readonly t: "account_data"; readonly pos: number; readonly userId: string; readonly roomId?: string; readonly type: string; readonly content: JsonObject }
  | { readonly t: "receipt"; readonly pos: number; readonly roomId: string; readonly userId: string; readonly receiptType: string; readonly eventId: string; readonly threadId?: string; readonly ts: number }
  | { readonly t: "filter"; readonly userId: string; readonly filterId: string; readonly filter: JsonObject }
  | { readonly t: "to_device"; readonly pos: number; readonly sender: string; readonly type: string; readonly txn?: Txn; readonly messages: ReadonlyArray<ToDeviceMessage> }
  | { readonly t: "to_device.acked"; readonly userId: string; readonly deviceId: string; readonly upTo: number }
  | { readonly t: "keys.device"; readonly pos: number; readonly userId: string; readonly deviceId: string; readonly keys: JsonObject }
  | { readonly t: "keys.otk"; readonly userId: string; readonly deviceId: string; readonly keys: JsonObject }
  | { readonly t: "keys.otk.claimed"; readonly userId: string; readonly deviceId: string; readonly keyId: string }
  | { readonly t: "keys.fallback"; readonly userId: string; readonly deviceId: string; readonly keys: JsonObject }
  | { readonly t: "keys.fallback.used"; readonly userId: string; readonly deviceId: string; readonly keyId: string }
  | { readonly t: "keys.cross_signing"; readonly pos: number; readonly userId: string; readonly usage: CrossSigningUsage; readonly key: JsonObject }
  | { readonly t: "keys.signature"; readonly pos: number; readonly userId: string; readonly keyId: string; readonly signer: string; readonly signatures: JsonObject }
  | { readonly t: "openid"; readonly tokenKey: string; readonly userId: string; readonly expiresAt: number }
  | { readonly t: "backup.version"; readonly userId: string; readonly version: string; readonly algorithm: string; readonly authData: JsonObject }
  | { readonly t: "backup.version.deleted"; readonly userId: string; readonly version: string }
  | { readonly t: "backup.keys"; readonly userId: string; readonly version: string; readonly keys: ReadonlyArray<BackedUpKey> }
  | { readonly t: "backup.keys.deleted"; readonly userId: string; readonly version: string; readonly roomId?: string; readonly sessionId?: string }
  | { readonly t: "delayed.scheduled"; readonly delayed: DelayedEvent; readonly txn?: Txn }
  | { readonly t: "delayed.restarted"; readonly delayId: string; readonly runningSince: number }
  | { readonly t: "delayed.finalised"; readonly delayId: string; readonly finalised: DelayedOutcome }

/**
 * Which access token sent which transaction id to which endpoint (`scope`, e.g.
 * `send/!room:hs`): the key of idempotency. A retry with the same key gets the first answer.
 */
export interface Txn {
  readonly tokenKey: string
  readonly scope: string
  readonly txnId: string
}

/**
 * A room event as stored: the client-format fields, minus `unsigned` (computed when served).
 * `content` is replaced in place when the event is redacted.
 */
export interface StoredEvent {
  readonly event_id: string
  readonly room_id: string
  readonly type: string
  readonly sender: string
  readonly origin_server_ts: number
  readonly state_key?: string
  readonly redacts?: string
  readonly content: JsonObject
}

export interface ToDeviceMessage {
  readonly userId: string
  readonly deviceId: string
  readonly content: JsonObject
}

/** One room key in a server-side key backup: `data` is the spec's `KeyBackupData`, opaque to us but for its ranking fields. */
export interface BackedUpKey {
  readonly roomId: string
  readonly sessionId: string
  readonly data: JsonObject
}

export type CrossSigningUsage = "master" | "self_signing" | "user_signing"

export interface DelayedEvent {
  readonly delayId: string
  readonly userId: string
  readonly roomId: string
  readonly type: string
  readonly stateKey?: string
  readonly content: JsonObject
  readonly delay: number
  readonly runningSince: number
}

export interface DelayedOutcome {
  readonly outcome: "send" | "cancel"
  readonly reason: "error" | "action" | "delay"
  readonly error?: JsonObject
  readonly eventId?: string
  readonly ts: number
}
