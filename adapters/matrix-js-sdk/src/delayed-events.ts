/**
 * MSC4140 delayed events through a matrix-js-sdk client, in whichever revision its homeserver
 * speaks, told apart as the HTTP port tells them (`@widgethost/homeserver-client`'s
 * delayed-events.ts): `org.matrix.msc4140.stable` in `/versions` means the accepted text's
 * endpoints (`PUT /_matrix/client/v3/rooms/{roomId}/delayed_event/{eventType}/{txnId}`,
 * `POST /_matrix/client/v1/delayed_events/{delay_id}/{action}`); `org.matrix.msc4140` alone is
 * either the 2025 revision deployed servers speak (a query parameter on `/send` and `/state`, the
 * management action in the body) or the 2026 text under its unstable prefix. A server of the
 * newer one ignores the query parameter and would send the event at once, so one `PUT` with an
 * empty body (which no server can schedule) to the unstable endpoint tells them apart first:
 * 404 or 405 `M_UNRECOGNIZED` means no such endpoint (the 2025 revision).
 *
 * matrix-js-sdk 36's own calls (`_unstable_sendDelayedEvent`, `_unstable_sendDelayedStateEvent`,
 * `_unstable_updateDelayedEvent`) speak only the 2025 revision: they serve it, and the endpoint
 * revisions go through the client's `http.authedRequest` (its session, its base URL).
 */
import { ClientPrefix, type MatrixClient, MatrixError, Method, type SendDelayedEventRequestOpts, UpdateDelayedEventAction } from "matrix-js-sdk"
import type { HomeserverRequestOf } from "@widgethost/core"
import { portError, viaSdk } from "./sdk-errors.ts"

export type DelayedEventsRevision = "endpoint-stable" | "endpoint" | "query-parameter"

const UNSTABLE = "/_matrix/client/unstable/org.matrix.msc4140"
/** A room that cannot exist: the probe must not touch a real one. */
const PROBE_ROOM = "!msc4140-probe:invalid"

const actions: Record<HomeserverRequestOf<"UpdateDelayedEvent">["action"], UpdateDelayedEventAction> = {
  cancel: UpdateDelayedEventAction.Cancel,
  restart: UpdateDelayedEventAction.Restart,
  send: UpdateDelayedEventAction.Send
}

const isUnrecognisedEndpoint = (e: unknown): boolean => e instanceof MatrixError && (e.httpStatus === 404 || e.httpStatus === 405) && e.errcode === "M_UNRECOGNIZED"

const segment = encodeURIComponent

/** One delayed send, as the widget asked it. */
export interface DelayedSend {
  readonly roomId: string
  readonly type: string
  readonly stateKey?: string
  readonly content: Readonly<Record<string, unknown>>
  readonly delayMs?: number
  readonly parentDelayId?: string
}

export const delayedEventsOf = (client: MatrixClient) => {
  let learned: Promise<DelayedEventsRevision | undefined> | undefined

  const probe = async (): Promise<DelayedEventsRevision> => {
    try {
      await client.http.authedRequest(Method.Put, `/rooms/${segment(PROBE_ROOM)}/delayed_event/m.room.message/${segment(client.makeTxnId())}`, undefined, {}, { prefix: UNSTABLE })
    } catch (e) {
      if (isUnrecognisedEndpoint(e)) return "query-parameter"
      const status = e instanceof MatrixError ? e.httpStatus : undefined
      // A refusal of the request itself says the endpoint exists; a failure of the server says nothing.
      if (status === undefined || status === 429 || status >= 500) throw portError(e)
    }
    return "endpoint"
  }

  /** The revision the server speaks; `undefined` when it has no MSC4140 at all. Learned once, asked again after a failure. */
  const revision = (): Promise<DelayedEventsRevision | undefined> =>
    (learned ??= (async () => {
      if (await client.doesServerSupportUnstableFeature("org.matrix.msc4140.stable")) return "endpoint-stable" as const
      return (await client.doesServerSupportUnstableFeature("org.matrix.msc4140")) ? probe() : undefined
    })().catch((error: unknown) => {
      learned = undefined
      throw portError(error)
    }))

  /** Schedules `send` in `spoken`; the answer holds `delay_id`. Refused, nothing sent, where the revision cannot carry it. */
  const schedule = async (spoken: DelayedEventsRevision, send: DelayedSend): Promise<{ readonly delay_id?: unknown }> => {
    const content = { ...send.content }
    if (spoken === "query-parameter") {
      const delay: SendDelayedEventRequestOpts =
        send.delayMs !== undefined ? { delay: send.delayMs, ...(send.parentDelayId === undefined ? {} : { parent_delay_id: send.parentDelayId }) } : { parent_delay_id: send.parentDelayId! }
      return send.stateKey !== undefined
        ? viaSdk(() => client._unstable_sendDelayedStateEvent(send.roomId, delay, send.type as never, content as never, send.stateKey))
        : viaSdk(() => client._unstable_sendDelayedEvent(send.roomId, delay, null, send.type as never, content as never))
    }
    if (send.parentDelayId !== undefined || send.delayMs === undefined) {
      throw new Error("This homeserver's MSC4140 (the delayed_event endpoint) has no parent delays (parent_delay_id): nothing was sent")
    }
    const body = { delay_ms: send.delayMs, content, ...(send.stateKey === undefined ? {} : { state_key: send.stateKey }) }
    const at = `/rooms/${segment(send.roomId)}/delayed_event/${segment(send.type)}/${segment(client.makeTxnId())}`
    return viaSdk(() => client.http.authedRequest<{ delay_id?: unknown }>(Method.Put, at, undefined, body, { prefix: spoken === "endpoint-stable" ? ClientPrefix.V3 : UNSTABLE }))
  }

  /** Cancel, restart or send now: the action in the path (endpoint revisions) or in the body (2025, the SDK's call). */
  const update = async (request: HomeserverRequestOf<"UpdateDelayedEvent">): Promise<void> => {
    const spoken = await revision()
    if (spoken === "endpoint-stable" || spoken === "endpoint") {
      const at = `/delayed_events/${segment(request.delayId)}/${request.action}`
      await viaSdk(() => client.http.authedRequest(Method.Post, at, undefined, {}, { prefix: spoken === "endpoint-stable" ? ClientPrefix.V1 : UNSTABLE }))
    } else {
      // The 2025 revision, or a server without MSC4140 (its refusal reaches the widget).
      await viaSdk(() => client._unstable_updateDelayedEvent(request.delayId, actions[request.action]))
    }
  }

  return { revision, schedule, update }
}
