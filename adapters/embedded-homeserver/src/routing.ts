import type { IncomingHttpHeaders } from "node:http"
import type { DelayedEvents } from "./delayed-events.ts"
import type { RegistrationPolicy } from "./registration.ts"
import type { MediaStore } from "./media-store.ts"
import type { RtcTransport } from "./rtc-transports.ts"
import type { Store } from "./store.ts"

/**
 * The route table's vocabulary: what a handler gets (a decoded request) and gives back (a
 * status and a JSON body). Handlers throw `MatrixError` for every failure; the server writes it.
 */
export interface Auth {
  readonly userId: string
  readonly deviceId: string
  /** Hash of the access token: the scope of transaction ids and of `unsigned.transaction_id`. */
  readonly tokenKey: string
}

export interface TurnOptions {
  readonly uris: ReadonlyArray<string>
  readonly sharedSecret: string
  readonly ttlSeconds: number
}

/** What every handler may use: the state, the configuration and the delayed-event scheduler. */
export interface Env {
  readonly store: Store
  readonly serverName: string
  readonly baseUrl: () => string
  readonly registration: RegistrationPolicy
  readonly turn: TurnOptions | undefined
  readonly rtcTransports: ReadonlyArray<RtcTransport>
  readonly media: MediaStore
  readonly maxUploadBytes: number
  readonly now: () => number
  readonly delayed: DelayedEvents
  /** Which MSC4140 revision this server speaks (see `EmbeddedHomeserverOptions.delayedEvents`). */
  readonly delayedEventsShape: DelayedEventsShape
}

/**
 * MSC4140's revisions, as a server advertises them in `/versions`: `query-parameter` (2025, what
 * Synapse deploys: `?org.matrix.msc4140.delay=` on `/send` and `/state`, feature
 * `org.matrix.msc4140`), `endpoint` (the 2026 text under its unstable prefix:
 * `PUT /unstable/org.matrix.msc4140/rooms/{roomId}/delayed_event/{eventType}/{txnId}`, the same
 * feature flag) and `endpoint-stable` (the accepted text: the `/v3` endpoint too, and
 * `org.matrix.msc4140.stable`). The endpoint revisions do not read the query parameter: such a
 * server sends the event at once, as a server without that revision does.
 */
export type DelayedEventsShape = "query-parameter" | "endpoint" | "endpoint-stable"

/**
 * The `:name` segments of a route path: `"/rooms/:roomId/send/:eventType"` gives
 * `"roomId" | "eventType"`. The router fills every one of them (each is one non-empty path
 * segment), so a handler's `params` has exactly these keys.
 */
export type ParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<Rest>
  : P extends `${string}:${infer Name}`
    ? Name
    : never

/**
 * `N` names the path parameters a handler needs, `O` those it reads when its route has them
 * (a handler shared by `/state/:eventType` and `/state/:eventType/:stateKey`).
 */
export interface RequestContext<A extends Auth | undefined = Auth, N extends string = string, O extends string = never> {
  readonly env: Env
  readonly method: string
  readonly params: Readonly<Record<N, string> & Partial<Record<O, string>>>
  readonly query: URLSearchParams
  readonly body: unknown
  /** The body's bytes, for routes that take them as they are (`rawBody`); `body` is then `{}`. */
  readonly raw?: Buffer
  /** Request headers, as Node parsed them (lower-cased names). */
  readonly headers: IncomingHttpHeaders
  readonly auth: A
  /** Aborted when the client hangs up or the server closes: long-polls stop waiting. */
  readonly signal: AbortSignal
}

export interface Reply {
  readonly status?: number
  /** JSON, or a Buffer sent as it is (its `content-type` in `headers`). */
  readonly body: unknown
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * One segment of a route's path: a literal, a `:name` parameter (any one non-empty segment), or
 * one of a few literals (`{v3}`).
 */
export type Segment = string | { readonly param: string; readonly oneOf?: undefined } | { readonly param?: undefined; readonly oneOf: ReadonlyArray<string> }

export interface Route {
  readonly method: string
  /** The path split at `/` (the leading empty segment included), matched by `route-table.ts`. */
  readonly segments: ReadonlyArray<Segment>
  /** "required": 401 without a valid token. "optional": resolved when present, ignored when absent. */
  readonly auth: "required" | "optional"
  /** The body is bytes (media uploads), up to `maxUploadBytes`: never parsed as JSON. */
  readonly rawBody?: boolean
  readonly handle: (ctx: RequestContext<Auth | undefined>) => Promise<Reply> | Reply
}

/**
 * Compiles `/rooms/:roomId/send/:eventType/:txnId` into segments. `{v3}` stands for the client
 * API version prefix, matching both `v3` and `r0` (older clients still say r0; the paths are the
 * same). Parameters are single path segments, percent-decoded after splitting, so an encoded `/`
 * in an event type stays inside its segment.
 */
const compile = (path: string): { segments: ReadonlyArray<Segment> } => ({
  segments: path.split("/").map((segment): Segment => {
    if (segment === "{v3}") return { oneOf: ["v3", "r0"] }
    if (segment.startsWith(":")) return { param: segment.slice(1) }
    return segment
  })
})

/** A route that needs a valid access token. */
export const authed = <P extends string>(
  method: string,
  path: P,
  handle: (ctx: RequestContext<Auth, ParamNames<P>>) => Promise<Reply> | Reply
): Route => ({ method, ...compile(path), auth: "required", handle: (ctx) => handle(ctx as RequestContext<Auth, ParamNames<P>>) })

/** A route anyone may call (`auth` is set when a valid token came along anyway). */
export const open = <P extends string>(
  method: string,
  path: P,
  handle: (ctx: RequestContext<Auth | undefined, ParamNames<P>>) => Promise<Reply> | Reply
): Route => ({ method, ...compile(path), auth: "optional", handle })

export const json = (body: unknown, status = 200): Reply => ({ status, body })

export const CLIENT = "/_matrix/client/{v3}"
