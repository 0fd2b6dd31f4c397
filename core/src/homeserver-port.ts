import type { Effect } from "effect"
import type { HomeserverError } from "./homeserver-error.ts"
import type { RoomEvent, ToDeviceEvent, TurnServers } from "./matrix.ts"

/**
 * What the engine asks of the homeserver, as data. The session reducer emits these inside
 * `CallHomeserver` commands; the edge runs them against a {@link HomeserverPort}.
 */
export type HomeserverRequest =
  | { readonly _tag: "SendEvent"; readonly roomId: string; readonly type: string; readonly stateKey?: string; readonly content: Readonly<Record<string, unknown>>; readonly delayMs?: number; readonly parentDelayId?: string }
  | { readonly _tag: "Redact"; readonly roomId: string; readonly eventId: string; readonly reason?: string }
  | { readonly _tag: "ReadEvents"; readonly query: ReadEventsQuery }
  | { readonly _tag: "ReadState"; readonly roomId: string; readonly type: string; readonly stateKey?: string }
  | { readonly _tag: "SendToDevice"; readonly type: string; readonly encrypted: boolean; readonly messages: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>> }
  | { readonly _tag: "JoinedRooms" }
  | { readonly _tag: "TurnServers" }
  | { readonly _tag: "RtcTransports" }
  /** `POST /user_directory/search` (MSC3973 mirrors its body both ways). */
  | { readonly _tag: "UserDirectorySearch"; readonly searchTerm: string; readonly limit?: number }
  /** MSC4140: act on one of the account's delayed events (`restart` is MSC4157's `refresh`). */
  | { readonly _tag: "UpdateDelayedEvent"; readonly delayId: string; readonly action: "cancel" | "restart" | "send" }

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
}

export interface SendEventResult {
  readonly roomId: string
  readonly eventId?: string
  readonly delayId?: string
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
  /** The homeserver's answer to a user directory search, as it sent it (`{ limited, results }`). */
  readonly userDirectorySearch: (request: Extract<HomeserverRequest, { _tag: "UserDirectorySearch" }>) => Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError>
  /** Cancels, restarts (the timeout begins again) or sends now one of the account's delayed events. */
  readonly updateDelayedEvent: (request: Extract<HomeserverRequest, { _tag: "UpdateDelayedEvent" }>) => Effect.Effect<void, HomeserverError>
  /** Rooms the account has joined, for `m.timeline:*` reads. */
  readonly joinedRooms: () => Effect.Effect<ReadonlyArray<string>, HomeserverError>
  /**
   * Decrypted room events and to-device events as they arrive, in timeline order per room, each
   * exactly once, local echoes never (see `PromiseHomeserverPort.subscribe`). Returns the
   * function that unsubscribes.
   */
  readonly subscribe: (listener: (update: HomeserverUpdate) => void) => () => void
}
