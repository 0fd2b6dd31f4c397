import { Effect } from "effect"
import { HomeserverError, type HomeserverRequest, type SendEventResult } from "@widgethost/core"
import { tryPromise } from "./account-calls.ts"
import type { E2ee } from "./crypto.ts"
import { type delayedEventsCalls, noDelayedEvents } from "./delayed-events.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"
import type { RoomDirectory } from "./room-directory.ts"

/**
 * The port's writes: room events (encrypted into encrypted rooms, delayed where asked), redactions
 * and to-device messages. Each send keeps one transaction id across its retries, so the homeserver
 * dedupes a send that was retried after a lost answer.
 */
export const roomWrites = (http: MatrixHttp, e2ee: E2ee, rooms: RoomDirectory, delayedEvents: ReturnType<typeof delayedEventsCalls>) => {
  const sendEvent = (request: Extract<HomeserverRequest, { _tag: "SendEvent" }>): Effect.Effect<SendEventResult, HomeserverError> =>
    tryPromise("send event", async (signal) => {
      const delayed = request.delayMs !== undefined || request.parentDelayId !== undefined
      // Refused before anything is encrypted or sent (Synapse 1.67 would ignore the delay and send).
      if (delayed && (await delayedEvents.revision()) === undefined) throw noDelayedEvents()
      let type = request.type
      let content: Readonly<Record<string, unknown>> = request.content
      // State events go in clear: servers must read them to authorise the room.
      const encryption = request.stateKey === undefined ? await rooms.encryption(request.roomId, signal) : undefined
      if (encryption !== undefined) {
        const to = await rooms.memberList(request.roomId, signal)
        content = await e2ee.encryptRoomEvent(request.roomId, to, request.type, request.content, encryption)
        type = "m.room.encrypted"
      }
      // One transaction id for every retry of this send: the homeserver dedupes on it.
      const txnId = http.txnId()
      let res: { event_id?: unknown; delay_id?: unknown }
      if (delayed) {
        res = await delayedEvents.schedule({ ...request, type, content }, txnId, signal)
        // Never a success without its delay id: the widget would believe its event is scheduled.
        if (typeof res.delay_id !== "string") throw new HomeserverError({ message: "The homeserver did not schedule the event (no delay_id in its answer); it may have been sent at once" })
      } else if (request.stateKey !== undefined) {
        res = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${request.roomId}/state/${request.type}/${request.stateKey}`, body: content, signal })
      } else {
        res = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${request.roomId}/send/${type}/${txnId}`, body: content, signal })
      }
      return {
        roomId: request.roomId,
        ...(typeof res.event_id === "string" ? { eventId: res.event_id } : {}),
        ...(typeof res.delay_id === "string" ? { delayId: res.delay_id } : {})
      }
    })

  const redact = (request: Extract<HomeserverRequest, { _tag: "Redact" }>): Effect.Effect<SendEventResult, HomeserverError> =>
    tryPromise("redact", async (signal) => {
      const res = await http.request<{ event_id?: unknown }>({
        method: "PUT",
        path: path`/_matrix/client/v3/rooms/${request.roomId}/redact/${request.eventId}/${http.txnId()}`,
        body: request.reason === undefined ? {} : { reason: request.reason },
        signal
      })
      return { roomId: request.roomId, ...(typeof res.event_id === "string" ? { eventId: res.event_id } : {}) }
    })

  const sendToDevice = (request: Extract<HomeserverRequest, { _tag: "SendToDevice" }>): Effect.Effect<void, HomeserverError> =>
    tryPromise("send to-device", async (signal) => {
      const txnId = http.txnId()
      if (!request.encrypted) {
        await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/${request.type}/${txnId}`, body: { messages: request.messages }, signal })
        return
      }
      const { messages, unknown } = await e2ee.encryptToDevice(request.type, request.messages)
      // MSC3819: an error anywhere along the send path is the widget's error. Refusing the whole
      // request (nothing sent) leaves the widget free to retry or to drop those devices.
      if (unknown.length > 0) throw new Error(`to-device ${request.type}: no device keys for ${unknown.join(", ")}; nothing was sent`)
      if (Object.keys(messages).length === 0) return
      await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/m.room.encrypted/${txnId}`, body: { messages }, signal })
    })

  return { sendEvent, redact, sendToDevice }
}
