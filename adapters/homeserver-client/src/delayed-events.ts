/**
 * MSC4140 delayed events in whichever revision the homeserver speaks. `/versions` tells part of
 * it: `org.matrix.msc4140.stable` means the accepted text's endpoints
 * (`PUT /_matrix/client/v3/rooms/{roomId}/delayed_event/{eventType}/{txnId}`,
 * `POST /_matrix/client/v1/delayed_events/{delay_id}/{action}`). `org.matrix.msc4140` alone is
 * shared by two revisions: the 2025 one deployed servers (Synapse) speak, a query parameter on
 * `/send` and `/state` with the management action in the body, and the 2026 text under its
 * unstable prefix (`/_matrix/client/unstable/org.matrix.msc4140/rooms/…/delayed_event/…`). A
 * server of the newer one ignores the query parameter and would send the event at once, so the
 * two are told apart before anything is scheduled: one `PUT` to the unstable endpoint with an
 * empty body, which no server can schedule (`delay_ms` and `content` are required). 404 (or 405)
 * `M_UNRECOGNIZED` means the endpoint does not exist (the 2025 revision); any other refusal
 * means it does. Learned once per port, asked again after a failure.
 */
import { HomeserverError, type HomeserverRequest } from "@widgethost/core"
import { type MatrixHttp, path } from "./matrix-http.ts"

/** A server without MSC4140 (its `/versions` does not list it): nothing is sent. */
export const noDelayedEvents = (): HomeserverError => new HomeserverError({ message: "This homeserver does not support delayed events (MSC4140 is not in its /versions): nothing was sent" })

export type DelayedEventsRevision = "endpoint-stable" | "endpoint" | "query-parameter"

const UNSTABLE = "/_matrix/client/unstable/org.matrix.msc4140"
/** A room that cannot exist: the probe must not touch a real one. */
const PROBE_ROOM = "!msc4140-probe:invalid"

const isUnrecognised = (e: unknown): boolean =>
  e instanceof HomeserverError && (e.http?.status === 404 || e.http?.status === 405) && (e.http.body as { errcode?: unknown }).errcode === "M_UNRECOGNIZED"

/** One delayed send, its content already encrypted where the room is. */
export interface DelayedSend {
  readonly roomId: string
  readonly type: string
  readonly stateKey?: string
  readonly content: Readonly<Record<string, unknown>>
  readonly delayMs?: number
  readonly parentDelayId?: string
}

export const delayedEventsCalls = (http: MatrixHttp) => {
  let learned: Promise<DelayedEventsRevision | undefined> | undefined
  const probe = async (): Promise<DelayedEventsRevision> => {
    try {
      await http.request({ method: "PUT", path: `${UNSTABLE}${path`/rooms/${PROBE_ROOM}/delayed_event/m.room.message/${http.txnId()}`}`, body: {}, retry: { maxAttempts: 1 } })
    } catch (e) {
      if (isUnrecognised(e)) return "query-parameter"
      const status = e instanceof HomeserverError ? e.http?.status : undefined
      // A refusal of the request itself says the endpoint exists; a failure of the server says nothing.
      if (status === undefined || status === 429 || status >= 500) throw e
    }
    return "endpoint"
  }
  /** The revision the server speaks; `undefined` when it has no MSC4140 at all. */
  const revision = (): Promise<DelayedEventsRevision | undefined> =>
    (learned ??= (async () => {
      const res = await http.request<{ unstable_features?: Record<string, unknown> }>({ method: "GET", path: "/_matrix/client/versions" })
      const features = res.unstable_features ?? {}
      if (features["org.matrix.msc4140.stable"] === true) return "endpoint-stable"
      return features["org.matrix.msc4140"] === true ? probe() : undefined
    })().catch((error: unknown) => {
      learned = undefined
      throw error
    }))

  /**
   * Schedules `send` in the server's revision (`txnId` for the endpoint, whose sends are
   * idempotent per transaction); the answer holds `delay_id`. Refused, with nothing sent, where
   * the revision cannot carry it.
   */
  const schedule = async (send: DelayedSend, txnId: string, signal: AbortSignal): Promise<{ readonly delay_id?: unknown; readonly event_id?: unknown }> => {
    const spoken = await revision()
    if (spoken === undefined) throw noDelayedEvents()
    if (spoken === "query-parameter") {
      const query = { "org.matrix.msc4140.delay": send.delayMs, "org.matrix.msc4140.parent_delay_id": send.parentDelayId }
      return send.stateKey !== undefined
        ? http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${send.roomId}/state/${send.type}/${send.stateKey}`, query, body: send.content, signal })
        : http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${send.roomId}/send/${send.type}/${txnId}`, query, body: send.content, signal })
    }
    if (send.parentDelayId !== undefined || send.delayMs === undefined) {
      throw new HomeserverError({ message: "This homeserver's MSC4140 (the delayed_event endpoint) has no parent delays (parent_delay_id): nothing was sent" })
    }
    const prefix = spoken === "endpoint-stable" ? "/_matrix/client/v3" : UNSTABLE
    return http.request({
      method: "PUT",
      path: `${prefix}${path`/rooms/${send.roomId}/delayed_event/${send.type}/${txnId}`}`,
      body: { delay_ms: send.delayMs, content: send.content, ...(send.stateKey === undefined ? {} : { state_key: send.stateKey }) },
      signal
    })
  }

  /** Cancel, restart or send now: the action in the path (endpoint revisions) or in the body (2025). */
  const update = async (request: Extract<HomeserverRequest, { _tag: "UpdateDelayedEvent" }>, signal: AbortSignal): Promise<void> => {
    const spoken = await revision()
    if (spoken === "endpoint-stable") await http.request({ method: "POST", path: path`/_matrix/client/v1/delayed_events/${request.delayId}/${request.action}`, body: {}, signal })
    else if (spoken === "endpoint") await http.request({ method: "POST", path: `${UNSTABLE}${path`/delayed_events/${request.delayId}/${request.action}`}`, body: {}, signal })
    // The 2025 revision, or a server without MSC4140 (its refusal reaches the widget).
    else await http.request({ method: "POST", path: `${UNSTABLE}${path`/delayed_events/${request.delayId}`}`, body: { action: request.action }, signal })
  }

  return { revision, schedule, update }
}
