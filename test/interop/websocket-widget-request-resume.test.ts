/**
 * The widget's own request across a dropped websocket: our engine behind our websocket transport
 * (real sockets on 127.0.0.1), the widget-side client as the widget. The widget sends
 * `send_event`, and the link drops: before the host reads the request (the request is lost), or
 * after the host executed it and wrote the answer, before the widget read it (the answer is
 * lost). The widget resumes and sends its pending request again, same id. Want: the widget gets
 * exactly one answer (its promise resolves with the event id), and the homeserver has exactly
 * one event: the host never runs the request twice.
 */
import { afterEach, assert, describe, it } from "vitest"
import { WebSocket } from "ws"
import type { WidgetDefinition } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { websocketTransport, type WebSocketConstructor, WidgetClient } from "@widgethost/widget-client"
import { fromEffectPort } from "@widgethost/core/effect"
import { waitUntil } from "../src/engine-fixture.ts"
import { resumeOver } from "../src/widget-resume.ts"

const ROOM = "!room:localhost"
const CAPABILITIES = ["m.send.event:m.room.message"]
const widget: WidgetDefinition = { id: "w", kind: "room", roomId: ROOM, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

type Fault = "request lost" | "answer lost"

/**
 * The widget's sockets: each records the answers to its `send_event` it delivered to the client;
 * armed, one cuts itself (no close frame: 1006, resumable) instead of sending the request, or
 * instead of delivering the answer.
 */
const lossySockets = () => {
  let armed: Fault | undefined
  const answersHeard: Array<string> = []
  const isSendEvent = (text: string, answer: boolean) => text.includes(`"action":"send_event"`) && text.includes(`"api":"fromWidget"`) && text.includes(`"response"`) === answer
  class LossySocket extends WebSocket {
    override emit(event: string | symbol, ...args: Array<unknown>): boolean {
      if (event === "message" && isSendEvent(String(args[0]), true)) {
        if (armed === "answer lost") {
          armed = undefined
          this.terminate()
          return true
        }
        answersHeard.push((JSON.parse(String(args[0])) as { requestId: string }).requestId)
      }
      return super.emit(event, ...args)
    }
    override send(data: unknown, ...rest: Array<never>): void {
      if (armed === "request lost" && typeof data === "string" && isSendEvent(data, false)) {
        armed = undefined
        this.terminate()
        return
      }
      super.send(data as string, ...rest)
    }
  }
  return { Socket: LossySocket as unknown as WebSocketConstructor, arm: (fault: Fault) => void (armed = fault), fired: () => armed === undefined, answersHeard }
}

describe("websocket: the widget's request across a dropped link", () => {
  for (const fault of ["request lost", "answer lost"] as const)
    it(`${fault}: sent again on resume, answered once, the event sent once`, async () => {
      const homeserver = makeInMemoryHomeserver({ rooms: [ROOM] })
      const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested })
      const transport = await startWebsocketTransport({ resumeGraceMs: 60_000 })
      cleanups.push(() => engine.stop(), () => transport.close())
      const { uri } = transport.register(widget.id, (send) => engine.openSession({ widget, waitForIframeLoad: false, send }))
      const lossy = lossySockets()
      const client = new WidgetClient({ transport: await websocketTransport(uri, { WebSocket: lossy.Socket }), widgetId: widget.id, capabilities: CAPABILITIES })
      cleanups.push(() => client.close())
      await client.contentLoaded()
      await client.ready
      const timeline = () => homeserver.rooms.get(ROOM)!.timeline.filter((e) => (e.content as { body?: unknown }).body === "once")
      lossy.arm(fault)
      const sent = client.sendEvent("m.room.message", { msgtype: "m.text", body: "once" })
      await waitUntil("the link to drop", () => lossy.fired() && transport.stats().connections === 0, 5000)
      assert.equal(timeline().length, fault === "answer lost" ? 1 : 0, fault === "answer lost" ? "executed before the drop" : "never reached the host")
      await resumeOver(client, uri, lossy.Socket)
      const { event_id } = await sent
      assert.equal(timeline().length, 1, "the homeserver has exactly one event")
      assert.equal(event_id, timeline()[0]!.event_id)
      // A request after the resume still works, and nothing more arrives for the first one.
      await client.sendEvent("m.room.message", { msgtype: "m.text", body: "after" })
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(lossy.answersHeard.length, 2, "one answer per request")
      assert.equal(new Set(lossy.answersHeard).size, 2)
      assert.equal(timeline().length, 1)
      assert.deepEqual(transport.stats().repeats, fault === "answer lost" ? { dropped: 0, answeredAgain: 1, answerLost: 0 } : { dropped: 0, answeredAgain: 0, answerLost: 0 })
      assert.equal(transport.stats().sessionsResumed, 1)
    })
})
