import type { Effect } from "effect"
import type { HomeserverError } from "./homeserver-error.ts"
import type { RoomEvent, ToDeviceEvent, TurnServers } from "./matrix.ts"

/**
 * What the engine asks of the homeserver, as data. The session reducer emits these inside
 * `CallHomeserver` commands; the edge runs them against a {@link HomeserverPort}.
 */
/** The MSC4195 LiveKit endpoints MSC4533 delegates. */
export type RtcLivekitEndpoint = "get_token" | "delegate_delayed_leave"

export type HomeserverRequest =
  | { readonly _tag: "SendEvent"; readonly roomId: string; readonly type: string; readonly stateKey?: string; readonly content: Readonly<Record<string, unknown>>; readonly delayMs?: number; readonly parentDelayId?: string }
  | { readonly _tag: "Redact"; readonly roomId: string; readonly eventId: string; readonly reason?: string }
  | { readonly _tag: "ReadEvents"; readonly query: ReadEventsQuery }
  | { readonly _tag: "ReadState"; readonly roomId: string; readonly type: string; readonly stateKey?: string }
  | { readonly _tag: "SendToDevice"; readonly type: string; readonly encrypted: boolean; readonly messages: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>> }
  | { readonly _tag: "JoinedRooms" }
  | { readonly _tag: "TurnServers" }
  | { readonly _tag: "RtcTransports" }
  /**
   * MSC4533: `POST /_matrix/client/v1/rtc/livekit/{endpoint}` (MSC4195) with the widget's data
   * as the body, verbatim.
   */
  | { readonly _tag: "RtcLivekit"; readonly endpoint: RtcLivekitEndpoint; readonly body: Readonly<Record<string, unknown>> }
  /** `POST /user_directory/search` (MSC3973 mirrors its body both ways). */
  | { readonly _tag: "UserDirectorySearch"; readonly searchTerm: string; readonly limit?: number }
  /** `GET /v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]` (MSC3869). */
  | { readonly _tag: "ReadRelations"; readonly query: RelationsQuery }
  /** `GET /v3/user/{userId}/rooms/{roomId}/account_data/{type}` for the port's own user. */
  | { readonly _tag: "ReadRoomAccountData"; readonly roomId: string; readonly type: string }
  /** MSC4140: act on one of the account's delayed events (`restart` is MSC4157's `refresh`). */
  | { readonly _tag: "UpdateDelayedEvent"; readonly delayId: string; readonly action: "cancel" | "restart" | "send" }
  /** `POST /user/{userId}/openid/request_token` for the account's own user (MSC1960 `get_openid`). */
  | { readonly _tag: "RequestOpenIdToken" }
  /** `GET /_matrix/client/v1/media/config` (MSC4039 `get_media_config`, and the upload size check). */
  | { readonly _tag: "MediaConfig" }
  /** `POST /_matrix/media/v3/upload` with the bytes as they are (MSC4039 `upload_file`). */
  | { readonly _tag: "UploadFile"; readonly file: MediaFile }
  /** `GET /_matrix/client/v1/media/download/{serverName}/{mediaId}` (MSC4039 `download_file`). */
  | { readonly _tag: "DownloadFile"; readonly serverName: string; readonly mediaId: string; readonly timeoutMs?: number }

/**
 * A file to upload, as the widget gave it: bytes, or a `Blob` (postMessage carries one as it is;
 * its size is known without reading it, so the size check needs no I/O). `contentType` is the
 * Blob's type when it has one.
 */
export interface MediaFile {
  readonly body: Uint8Array | Blob
  /** Bytes in `body`. */
  readonly size: number
  readonly contentType?: string
}

/** A downloaded file: its bytes, and the content type the media repository served them with. */
export interface DownloadedFile {
  readonly data: Uint8Array
  readonly contentType?: string
}

/** `read_events` for one room, as the homeserver port answers it. */
export interface ReadEventsQuery {
  readonly roomId: string
  readonly type: string
  /** `undefined`: message-like events only; a string: state events with that key; `true`: any key. */
  readonly stateKey?: string | true
  readonly msgtype?: string
  readonly limit: number
  /** A pagination token from a previous answer's `end`. */
  readonly from?: string
  /** `b`: newest first (the default); `f`: oldest first. */
  readonly dir: "b" | "f"
}

export interface ReadEventsPage {
  readonly events: ReadonlyArray<RoomEvent>
  /** Present only when more events remain in `dir`. */
  readonly end?: string
  /**
   * Encrypted events in the stretch of timeline this page covers that could not be decrypted
   * (no room key, the key withheld, bad ciphertext). Their type is unknown, so they are counted
   * whatever the query's type; absent or 0: none. The engine tells the widget as
   * {@link WITHHELD_FIELD}.
   */
  readonly withheld?: number
}

/**
 * The `read_events` response field that tells a widget how many events in the stretch of
 * timeline it read could not be decrypted and were left out: `{ "events": [...],
 * "io.widgethost.withheld": 2 }`. Absent when there were none, so every answer without it is
 * exactly MSC2762's. A namespaced extra field, because MSC2762 defines the response as an object
 * whose `events` must be present, and matrix-widget-api types response data as open
 * (`[key: string]: unknown`): widgets that do not know the field ignore it.
 */
export const WITHHELD_FIELD = "io.widgethost.withheld"

/**
 * One page of an event's relations. The homeserver's filters, in the client-server API's terms;
 * the port may return fewer than `limit` events (decryption happens before `eventType` is matched).
 */
export interface RelationsQuery {
  readonly roomId: string
  /** The parent event. */
  readonly eventId: string
  readonly relType?: string
  /**
   * Only children of this type (after decryption). Without `relType` the endpoint has no path for
   * it, so the port asks for every relation and filters itself.
   */
  readonly eventType?: string
  readonly limit?: number
  /** Tokens from a previous page's `nextBatch` / `prevBatch`, as the homeserver issued them. */
  readonly from?: string
  readonly to?: string
  /** `b`: newest first (the endpoint's default); `f`: oldest first. */
  readonly dir?: "b" | "f"
}

export interface RelationsPage {
  readonly events: ReadonlyArray<RoomEvent>
  /** Present only when more relations remain in `dir`. */
  readonly nextBatch?: string
  readonly prevBatch?: string
}

export interface SendEventResult {
  readonly roomId: string
  readonly eventId?: string
  readonly delayId?: string
}

/**
 * An OpenID token as `/openid/request_token` answers it, in its wire names: MSC1960 hands these
 * fields to the widget as they are, and its backend checks them at the token's server
 * (`/_matrix/federation/v1/openid/userinfo`).
 */
export interface OpenIdToken {
  readonly access_token: string
  readonly token_type: string
  readonly matrix_server_name: string
  /** Seconds the token stays valid. */
  readonly expires_in: number
}

/** What arrives from the homeserver for widgets: already decrypted, never ciphertext. */
export type HomeserverUpdate =
  | { readonly _tag: "RoomEvent"; readonly event: RoomEvent }
  | { readonly _tag: "ToDevice"; readonly event: ToDeviceEvent }

/**
 * Marks a {@link HomeserverPort} (the Effect-native port), so `createEngine` tells it from a
 * `PromiseHomeserverPort`, which carries no mark (an adopter writing plain async functions
 * should not need one). `Symbol.for`: two copies of this package still agree.
 */
export const HomeserverPortTypeId: unique symbol = Symbol.for("@widgethost/core/HomeserverPort")
export type HomeserverPortTypeId = typeof HomeserverPortTypeId

/** Whether `port` is the Effect-native port (it carries {@link HomeserverPortTypeId}). */
export const isHomeserverPort = (port: unknown): port is HomeserverPort => typeof port === "object" && port !== null && HomeserverPortTypeId in port

/**
 * The engine's view of one Matrix account on a homeserver, Effect-native. Adapters implement it
 * (HTTP with end-to-end encryption, an in-memory fake in tests) and set
 * `[HomeserverPortTypeId]: HomeserverPortTypeId`; nothing above it knows HTTP. Every call fails
 * only with {@link HomeserverError}. Embedders without Effect implement `PromiseHomeserverPort`
 * instead (same methods, async functions; `fromPromisePort` converts it), which documents the
 * event contract of {@link HomeserverPort.subscribe} in full.
 */
export interface HomeserverPort {
  readonly [HomeserverPortTypeId]: HomeserverPortTypeId
  readonly userId: string
  readonly deviceId: string
  readonly sendEvent: (request: Extract<HomeserverRequest, { _tag: "SendEvent" }>) => Effect.Effect<SendEventResult, HomeserverError>
  readonly redact: (request: Extract<HomeserverRequest, { _tag: "Redact" }>) => Effect.Effect<SendEventResult, HomeserverError>
  /** Matching events after decryption (a type filter on ciphertext would match nothing). */
  readonly readEvents: (query: ReadEventsQuery) => Effect.Effect<ReadEventsPage, HomeserverError>
  /** Current room state entries of `type` (and `stateKey`, when given). */
  readonly readState: (roomId: string, type: string, stateKey?: string) => Effect.Effect<ReadonlyArray<RoomEvent>, HomeserverError>
  readonly sendToDevice: (request: Extract<HomeserverRequest, { _tag: "SendToDevice" }>) => Effect.Effect<void, HomeserverError>
  readonly turnServers: () => Effect.Effect<TurnServers, HomeserverError>
  /**
   * The body of `GET /_matrix/client/v1/rtc/transports` (MSC4143), as the homeserver sent it:
   * `{ rtc_transports: [{ type, ... }] }`. MSC4515 forwards it to the widget verbatim. A server
   * without the endpoint fails with its error (typically 404 `M_UNRECOGNIZED`).
   */
  readonly rtcTransports: () => Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError>
  /**
   * The body of `POST /_matrix/client/v1/rtc/livekit/{endpoint}` (MSC4195; the unstable
   * `io.element.msc4195` path where the stable one is unrecognised), as the homeserver sent it.
   * MSC4533 forwards it verbatim; a server without the endpoint fails with its error (404
   * `M_UNRECOGNIZED`), which tells the widget to keep its delayed leave alive itself.
   */
  readonly rtcLivekit: (request: Extract<HomeserverRequest, { _tag: "RtcLivekit" }>) => Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError>
  /** The homeserver's answer to a user directory search, as it sent it (`{ limited, results }`). */
  readonly userDirectorySearch: (request: Extract<HomeserverRequest, { _tag: "UserDirectorySearch" }>) => Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError>
  /** One page of an event's relations, decrypted like `readEvents`; never ciphertext. */
  readonly readRelations: (query: RelationsQuery) => Effect.Effect<RelationsPage, HomeserverError>
  /**
   * The content of the account's room account data of `type` in `roomId`, or `undefined` when none
   * is set (the endpoint's 404 `M_NOT_FOUND`); other failures are errors.
   */
  readonly readRoomAccountData: (roomId: string, type: string) => Effect.Effect<Readonly<Record<string, unknown>> | undefined, HomeserverError>
  /** Cancels, restarts (the timeout begins again) or sends now one of the account's delayed events. */
  readonly updateDelayedEvent: (request: Extract<HomeserverRequest, { _tag: "UpdateDelayedEvent" }>) => Effect.Effect<void, HomeserverError>
  /** A fresh OpenID token for the account's user, proving its identity to a third party (MSC1960). */
  readonly requestOpenIdToken: () => Effect.Effect<OpenIdToken, HomeserverError>
  /** Rooms the account has joined, for `m.timeline:*` reads. */
  readonly joinedRooms: () => Effect.Effect<ReadonlyArray<string>, HomeserverError>
  /**
   * The body of `GET /_matrix/client/v1/media/config`, as the homeserver sent it (`m.upload.size`:
   * the largest upload it accepts, in bytes). MSC4039 mirrors it to the widget.
   */
  readonly mediaConfig: () => Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError>
  /**
   * Uploads `file` unchanged (`POST /_matrix/media/v3/upload`) and answers its `mxc://` URI. Never
   * encrypts: MSC4039 widgets encrypt files themselves in encrypted rooms, as with matrix-widget-api.
   */
  readonly uploadFile: (request: Extract<HomeserverRequest, { _tag: "UploadFile" }>) => Effect.Effect<{ readonly contentUri: string }, HomeserverError>
  /** Downloads one file of the media repository (authenticated media), unchanged. */
  readonly downloadFile: (request: Extract<HomeserverRequest, { _tag: "DownloadFile" }>) => Effect.Effect<DownloadedFile, HomeserverError>
  /**
   * Decrypted room events and to-device events as they arrive, in timeline order per room, each
   * exactly once, local echoes never (see `PromiseHomeserverPort.subscribe`). Returns the
   * function that unsubscribes.
   */
  readonly subscribe: (listener: (update: HomeserverUpdate) => void) => () => void
}
