/**
 * MSC4140 delayed events over our HTTP client, in whichever revision the homeserver speaks (told
 * apart by core's `learnDelayedEventsRevision`, whose header says how).
 */
import { HomeserverError, type HomeserverRequest, learnDelayedEventsRevision, MSC4140_PROBE_ROOM, MSC4140_UNSTABLE_PREFIX as UNSTABLE } from "@widgethost/core"
import { type MatrixHttp, path } from "./matrix-http.ts"

/** A server without MSC4140 (its `/versions` does not list it): nothing is sent. */
export const noDelayedEvents = (): HomeserverError => new HomeserverError({ message: "This homeserver does not support delayed events (MSC4140 is not in its /versions): nothing was sent" })

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
  /** The revision the server speaks; `undefined` when it has no MSC4140 at all. */
  const revision = learnDelayedEventsRevision({
    versions: async () => {
      const res = await http.request<{ unstable_features?: Record<string, unknown> }>({ method: "GET", path: "/_matrix/client/versions" })
      const features = res.unstable_features ?? {}
      return { stable: features["org.matrix.msc4140.stable"] === true, unstable: features["org.matrix.msc4140"] === true }
    },
    tryEndpoint: async () => {
      try {
        await http.request({ method: "PUT", path: `${UNSTABLE}${path`/rooms/${MSC4140_PROBE_ROOM}/delayed_event/m.room.message/${http.txnId()}`}`, body: {}, retry: { maxAttempts: 1 } })
        return undefined
      } catch (error) {
        const answered = error instanceof HomeserverError ? error.http : undefined
        return { status: answered?.status, errcode: (answered?.body as { errcode?: unknown } | undefined)?.errcode, error }
      }
    }
  })

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
