/**
 * MSC4140 delayed events through a matrix-js-sdk client, in whichever revision its homeserver
 * speaks, told apart by core's `learnDelayedEventsRevision` (its header says how) over the
 * client's own HTTP.
 *
 * matrix-js-sdk 36's own calls (`_unstable_sendDelayedEvent`, `_unstable_sendDelayedStateEvent`,
 * `_unstable_updateDelayedEvent`) speak only the 2025 revision: they serve it, and the endpoint
 * revisions go through the client's `http.authedRequest` (its session, its base URL).
 */
import { ClientPrefix, type MatrixClient, MatrixError, Method, type SendDelayedEventRequestOpts, UpdateDelayedEventAction } from "matrix-js-sdk"
import { type DelayedEventsRevision, type HomeserverRequestOf, learnDelayedEventsRevision, MSC4140_PROBE_ROOM, MSC4140_UNSTABLE_PREFIX as UNSTABLE } from "@widgethost/core"
import { portError, viaSdk } from "./sdk-errors.ts"


const actions: Record<HomeserverRequestOf<"UpdateDelayedEvent">["action"], UpdateDelayedEventAction> = {
  cancel: UpdateDelayedEventAction.Cancel,
  restart: UpdateDelayedEventAction.Restart,
  send: UpdateDelayedEventAction.Send
}

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
  /** The revision the server speaks; `undefined` when it has no MSC4140 at all. */
  const learned = learnDelayedEventsRevision({
    versions: async () => ({
      stable: await client.doesServerSupportUnstableFeature("org.matrix.msc4140.stable"),
      unstable: await client.doesServerSupportUnstableFeature("org.matrix.msc4140")
    }),
    tryEndpoint: async () => {
      try {
        await client.http.authedRequest(Method.Put, `/rooms/${segment(MSC4140_PROBE_ROOM)}/delayed_event/m.room.message/${segment(client.makeTxnId())}`, undefined, {}, { prefix: UNSTABLE })
        return undefined
      } catch (error) {
        return error instanceof MatrixError ? { status: error.httpStatus, errcode: error.errcode, error } : { status: undefined, errcode: undefined, error }
      }
    }
  })
  const revision = async (): Promise<DelayedEventsRevision | undefined> => {
    try {
      return await learned()
    } catch (error) {
      throw portError(error)
    }
  }

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
