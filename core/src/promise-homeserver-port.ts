/**
 * The homeserver port the engine runs on: the methods of the Effect-native `HomeserverPort` as
 * async functions that resolve with plain values and reject with the homeserver's error response
 * ({@link HomeserverErrorResponse}). `createEngine` takes it as its `homeserver`; an Effect-native
 * port is converted by `fromEffectPort` of `@widgethost/core/effect`, so the Effect runtime is
 * bundled only by those who use one.
 */
import { HomeserverError } from "./homeserver-error.ts"
import type {
  DownloadedFile,
  OpenIdToken,
  RelationsPage,
  RelationsQuery,
  HomeserverRequest,
  HomeserverUpdate,
  ReadEventsPage,
  ReadEventsQuery,
  SendEventResult
} from "./homeserver-port.ts"
import type { RoomEvent, TurnServers } from "./matrix.ts"

/** The request of one kind, e.g. `HomeserverRequestOf<"SendEvent">`. */
export type HomeserverRequestOf<Tag extends HomeserverRequest["_tag"]> = Extract<HomeserverRequest, { readonly _tag: Tag }>

/**
 * What a {@link PromiseHomeserverPort} method rejects with when the homeserver answered with an
 * error: the widget gets it as `matrix_api_error` (status, headers, url and body), so a widget
 * SDK can rebuild the homeserver's error. Anything else a method throws or rejects with (an
 * `Error`, a string, a network failure) reaches the widget as an error without
 * `matrix_api_error`, with the `Error`'s message when there is one.
 *
 * @example
 * throw { status: 429, errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", headers: { "retry-after": "2" }, body: { retry_after_ms: 2000 } }
 */
export interface HomeserverErrorResponse {
  /** The HTTP status of the homeserver's answer (100 to 599). */
  readonly status: number
  readonly errcode: string
  readonly error?: string
  /**
   * Response headers. Only those the Matrix spec defines for errors are kept (`retry-after`, on
   * 429 and 503), under lower-case names; the engine's TURN poller waits as long as it says.
   */
  readonly headers?: Readonly<Record<string, string>>
  /** The URL that was asked, when known (the widget's `matrix_api_error.url`; else `""`). */
  readonly url?: string
  /**
   * The whole JSON body when there is more than `errcode` and `error` (`retry_after_ms` of
   * `M_LIMIT_EXCEEDED`, `soft_logout`, …); `errcode` and `error` above take precedence.
   */
  readonly body?: Readonly<Record<string, unknown>>
}

/**
 * The engine's view of one Matrix account, as plain async functions: what an embedding client
 * implements over its own SDK session (see `@widgethost/matrix-js-sdk`), without Effect. Every
 * method resolves with the value described, or rejects with a {@link HomeserverErrorResponse}
 * when the homeserver refused; anything else thrown or rejected (synchronously too) reaches the
 * widget as an error without `matrix_api_error` (see {@link homeserverErrorFrom}).
 */
export interface PromiseHomeserverPort {
  readonly userId: string
  readonly deviceId: string
  /**
   * Sends a room event (`stateKey` present: a state event, in clear; otherwise encrypted when
   * the room is). `delayMs` / `parentDelayId` (MSC4140): schedule it instead, answering
   * `delayId`; refuse (reject) when the server cannot, rather than sending at once.
   */
  readonly sendEvent: (request: HomeserverRequestOf<"SendEvent">) => Promise<SendEventResult>
  readonly redact: (request: HomeserverRequestOf<"Redact">) => Promise<SendEventResult>
  /** Matching events after decryption (a type filter on ciphertext would match nothing); see {@link ReadEventsQuery}. */
  readonly readEvents: (query: ReadEventsQuery) => Promise<ReadEventsPage>
  /** Current room state entries of `type` (and `stateKey`, when given). */
  readonly readState: (roomId: string, type: string, stateKey?: string) => Promise<ReadonlyArray<RoomEvent>>
  /** `messages[userId][deviceId]` (`*`: all the user's devices); `encrypted`: Olm-encrypt each, never send those in clear. */
  readonly sendToDevice: (request: HomeserverRequestOf<"SendToDevice">) => Promise<void>
  /** `GET /voip/turnServer`'s answer; `ttl` in seconds from now. The engine runs the one refresh loop. */
  readonly turnServers: () => Promise<TurnServers>
  /** The body of `GET /_matrix/client/v1/rtc/transports` (MSC4143) as the homeserver sent it. */
  readonly rtcTransports: () => Promise<Readonly<Record<string, unknown>>>
  /** The body of `POST /_matrix/client/v1/rtc/livekit/{endpoint}` (MSC4195) as the homeserver sent it (MSC4533). */
  readonly rtcLivekit: (request: HomeserverRequestOf<"RtcLivekit">) => Promise<Readonly<Record<string, unknown>>>
  /** The homeserver's answer to `POST /user_directory/search`, as it sent it (`{ limited, results }`). */
  readonly userDirectorySearch: (request: HomeserverRequestOf<"UserDirectorySearch">) => Promise<Readonly<Record<string, unknown>>>
  /** Cancels, restarts or sends now one of the account's delayed events (MSC4140). */
  /** One page of an event's relations, decrypted like `readEvents`; never ciphertext. */
  readonly readRelations: (query: RelationsQuery) => Promise<RelationsPage>
  /** The room account data's content, or `undefined` when none is set (the endpoint's 404 `M_NOT_FOUND`). */
  readonly readRoomAccountData: (roomId: string, type: string) => Promise<Readonly<Record<string, unknown>> | undefined>
  /** A fresh OpenID token for the account's user (MSC1960: `POST /user/{userId}/openid/request_token`). */
  readonly requestOpenIdToken: () => Promise<OpenIdToken>
  readonly updateDelayedEvent: (request: HomeserverRequestOf<"UpdateDelayedEvent">) => Promise<void>
  /** Rooms the account has joined, for `m.timeline:*` reads. */
  readonly joinedRooms: () => Promise<ReadonlyArray<string>>
  /** The body of `GET /_matrix/client/v1/media/config` as the homeserver sent it (`m.upload.size`). */
  readonly mediaConfig: () => Promise<Readonly<Record<string, unknown>>>
  /** Uploads the file's bytes unchanged (never encrypted: the widget encrypts, MSC4039) and answers its `mxc://` URI. */
  readonly uploadFile: (request: HomeserverRequestOf<"UploadFile">) => Promise<{ readonly contentUri: string }>
  /** Downloads one file of the media repository (authenticated media) unchanged. */
  readonly downloadFile: (request: HomeserverRequestOf<"DownloadFile">) => Promise<DownloadedFile>
  /**
   * The live feed for widgets. The engine relies on each of these:
   * - **decrypted**: a room event arrives with its clear `type` and `content`, never as
   *   `m.room.encrypted`; one that cannot be decrypted is not delivered at all (it may come
   *   later, once its key does). A to-device event likewise, with `encrypted` saying how it
   *   really arrived (never taken from its content);
   * - **timeline order per room**: as the homeserver's timeline has them (an event that waits
   *   for its key may hold back the later ones of its room, or come late, out of order, but
   *   only once); rooms are independent;
   * - **each exactly once**: no repeats on sync retries, reconnects or timeline resets;
   * - **no local echoes**: what the account sends arrives once, as the homeserver's copy with
   *   its real `event_id` (widgets see their own sends this way), never the client's pending
   *   copy;
   * - **live only**: what arrives after the subscription, not history from the first sync.
   * The listener is called synchronously and must not throw. Returns the function that
   * unsubscribes.
   */
  readonly subscribe: (listener: (update: HomeserverUpdate) => void) => () => void
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null

/** Response headers the Matrix spec defines on errors; all others are dropped. */
const specErrorHeaders = ["retry-after"] as const

const isErrorResponse = (value: unknown): value is HomeserverErrorResponse =>
  isRecord(value) && Number.isInteger(value["status"]) && (value["status"] as number) >= 100 && (value["status"] as number) <= 599 && typeof value["errcode"] === "string"

const specHeaders = (headers: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  if (!isRecord(headers)) return out
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (typeof value === "string" && (specErrorHeaders as ReadonlyArray<string>).includes(lower)) out[lower] = value
  }
  return out
}

/**
 * What a {@link PromiseHomeserverPort} method threw or rejected with, as the engine's
 * {@link HomeserverError}: a {@link HomeserverErrorResponse} keeps its status, spec headers, url
 * and body; a `HomeserverError` stays as it is; anything else is a failure without an answer
 * from the homeserver (no `http`), with the `Error`'s message, the string thrown, or no detail.
 *
 * @example
 * homeserverErrorFrom({ status: 404, errcode: "M_NOT_FOUND", error: "Event not found" }, "readState").http?.status // 404
 */
export const homeserverErrorFrom = (thrown: unknown, method: string): HomeserverError => {
  if (thrown instanceof HomeserverError) return thrown
  if (isErrorResponse(thrown)) {
    const body = { ...(isRecord(thrown.body) ? thrown.body : {}), errcode: thrown.errcode, ...(typeof thrown.error === "string" ? { error: thrown.error } : {}) }
    const summary = body.error === undefined ? body.errcode : `${body.errcode}: ${String(body.error)}`
    return new HomeserverError({
      message: `${method} failed with ${thrown.status} ${summary}`,
      http: { status: thrown.status, headers: specHeaders(thrown.headers), url: typeof thrown.url === "string" ? thrown.url : "", body }
    })
  }
  if (thrown instanceof Error && thrown.message !== "") return new HomeserverError({ message: thrown.message })
  // Other values are not shown: the message goes to the widget, and an object may hold anything.
  return new HomeserverError({ message: typeof thrown === "string" && thrown !== "" ? `${method} failed: ${thrown}` : `${method} failed unexpectedly` })
}
