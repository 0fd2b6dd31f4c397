/**
 * The port bridge's wire format, shared by its two ends: a page in a browser that runs our engine
 * but cannot run the Node homeserver client, and the Node process that can. Each call of a
 * `HomeserverPort` method is one HTTP request, `POST /call/<method>` with the arguments as a JSON
 * array; the answer is `{ "value": ... }` or, for a failure, a `BridgeFailure` (status 502). The
 * port's updates arrive as server-sent events on `GET /updates`, one `HomeserverUpdate` each.
 * Bytes (MSC4039 files) cross as `{ "$bytes": "<base64>" }` both ways (`toWire` / `fromWire`).
 */
import type { HomeserverError, HomeserverPort, HomeserverPortTypeId } from "@widgethost/core"
import { Base64 } from "effect/encoding"
import { Result } from "effect"

/** The port's methods that answer with an Effect: everything but the ids and `subscribe`. */
export const BRIDGED_METHODS = [
  "sendEvent",
  "redact",
  "readEvents",
  "readState",
  "sendToDevice",
  "turnServers",
  "rtcTransports",
  "rtcLivekit",
  "userDirectorySearch",
  "updateDelayedEvent",
  "requestOpenIdToken",
  "joinedRooms",
  "readRelations",
  "readRoomAccountData",
  "mediaConfig",
  "uploadFile",
  "downloadFile"
] as const satisfies ReadonlyArray<keyof HomeserverPort>

export type BridgedMethod = (typeof BRIDGED_METHODS)[number]

/** A port method added without its place in the list above fails to compile here. */
type Unbridged = Exclude<keyof HomeserverPort, BridgedMethod | "userId" | "deviceId" | "subscribe" | typeof HomeserverPortTypeId>
const everyMethodIsBridged: [Unbridged] extends [never] ? true : Unbridged = true
void everyMethodIsBridged

export const isBridgedMethod = (name: string): name is BridgedMethod => (BRIDGED_METHODS as ReadonlyArray<string>).includes(name)

/**
 * A failed call: the homeserver's `status`, `errcode` and `error` when it answered (null when it
 * never did), and `http` in full, so the far end rebuilds the same `HomeserverError` (its
 * `matrix_api_error` included).
 */
export interface BridgeFailure {
  readonly status: number | null
  readonly errcode: string | null
  readonly error: string
  readonly http?: HomeserverError["http"]
}

export const failureOf = (e: HomeserverError): BridgeFailure => ({
  status: e.http?.status ?? null,
  errcode: e.http?.body.errcode ?? null,
  error: e.message,
  ...(e.http === undefined ? {} : { http: e.http })
})

/** `GET /whoami`: the account the port acts for. */
export interface BridgeIdentity {
  readonly userId: string
  readonly deviceId: string
}

/** JSON of `value` with every Uint8Array as `{ "$bytes": base64 }` (a Blob must be read into bytes first). */
export const toWire = (value: unknown): string => JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $bytes: Base64.encode(v) } : v))

/** The inverse of {@link toWire}. */
export const fromWire = (text: string): unknown =>
  JSON.parse(text, (_key, v: unknown) => {
    if (typeof v !== "object" || v === null || typeof (v as { $bytes?: unknown }).$bytes !== "string") return v
    const bytes = Base64.decode((v as { $bytes: string }).$bytes)
    return Result.isSuccess(bytes) ? bytes.success : v
  })
