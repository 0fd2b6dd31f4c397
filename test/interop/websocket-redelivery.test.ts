/**
 * Exactly once across a dropped websocket: our engine behind our websocket transport (real
 * sockets on 127.0.0.1), the widget-side client as the widget. A room event pushed to the widget
 * (`send_event`, a toWidget request) is written, then the link drops: either before the widget
 * reads it (the request is lost) or after it answered (the answer is lost). The widget resumes
 * within the window, while the engine's clock runs past the request timeout. Want: the widget
 * handles the event exactly once, the engine gets exactly one answer and reports no timeout.
 */
import { afterEach, assert, describe, it } from "vitest"
import { SimulatedClock } from "xstate"
import { WebSocket } from "ws"
import type { WidgetDefinition } from "@widgethost/core"
import { createEngine, delegateSession, type EngineSession } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { websocketTransport, type WebSocketConstructor, WidgetClient } from "@widgethost/widget-client"
import { fromEffectPort } from "@widgethost/core/effect"
import { waitUntil } from "../src/engine-fixture.ts"
import { resumeOver } from "../src/widget-resume.ts"

const ROOM = "!room:localhost"
const widget: WidgetDefinition = { id: "w", kind: "room", roomId: ROOM, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Where the link drops: the next `send_event` request never reaches the widget, or its answer never leaves. */
type Fault = "request lost" | "answer lost"

/**
 * A socket that loses one frame as a dropped network does: the frame goes nowhere and the socket
 * is cut (no close frame: 1006, resumable). Armed by `arm`, it fires once.
 */
const lossySocket = () => {
  let armed: Fault | undefined
  const isSendEvent = (text: string, answer: boolean) => text.includes(`"action":"send_event"`) && text.includes(`"api":"toWidget"`) && text.includes(`"response"`) === answer
  class LossySocket extends WebSocket {
    override emit(event: string | symbol, ...args: Array<unknown>): boolean {
      if (event === "message" && armed === "request lost" && isSendEvent(String(args[0]), false)) {
        armed = undefined
        this.terminate()
        return true
      }
      return super.emit(event, ...args)
    }
    override send(data: unknown, ...rest: Array<never>): void {
      if (armed === "answer lost" && typeof data === "string" && isSendEvent(data, true)) {
        armed = undefined
        this.terminate()
        return
      }
      super.send(data as string, ...rest)
    }
  }
  return { Socket: LossySocket as unknown as WebSocketConstructor, arm: (fault: Fault) => void (armed = fault), armed: () => armed }
}

const setup = async () => {
  const homeserver = makeInMemoryHomeserver({ rooms: [ROOM] })
  // Engine time moves only when the test says: the widget can be away for longer than the timeout.
  const clock = new SimulatedClock()
  const reports: Array<string> = []
  const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested, clock, onReport: (_s, _w, report) => void reports.push(report._tag) })
  const transport = await startWebsocketTransport({ resumeGraceMs: 60_000 })
  cleanups.push(() => engine.stop(), () => transport.close())
  let session: EngineSession | undefined
  // What crosses the session's edge: the ids of the send_event requests it sent, and each answer to them it received.
  const pushed: Array<string> = []
  const answers: Array<string> = []
  const { uri } = transport.register(widget.id, (send) => {
    session = engine.openSession({
      widget,
      waitForIframeLoad: false,
      send: (message) => {
        if (message.api === "toWidget" && message.action === "send_event" && !("response" in message)) pushed.push(message.requestId)
        send(message)
      }
    })
    const inner = session
    return delegateSession(inner, {
      receive: (raw) => {
        const m = raw as { requestId?: string; response?: unknown }
        if (typeof m.requestId === "string" && "response" in m && pushed.includes(m.requestId)) answers.push(m.requestId)
        inner.receive(raw)
      }
    })
  })
  const lossy = lossySocket()
  const heard: Array<unknown> = []
  const client = new WidgetClient({ transport: await websocketTransport(uri, { WebSocket: lossy.Socket }), widgetId: widget.id, capabilities: ["m.receive.event:m.room.message"] })
  cleanups.push(() => client.close())
  client.on("send_event", (event) => void heard.push((event["content"] as { body?: unknown }).body))
  await client.contentLoaded()
  await client.ready
  const resume = () => resumeOver(client, uri, lossy.Socket)
  return { homeserver, clock, transport, session: () => session!, lossy, heard, resume, pushed, answers, reports }
}

describe("websocket: a toWidget request across a dropped link", () => {
  for (const fault of ["request lost", "answer lost"] as const)
    it(`${fault}: the widget handles it once, the engine gets one answer, no timeout`, async () => {
      const { homeserver, clock, transport, session, lossy, heard, resume, pushed, answers, reports } = await setup()
      lossy.arm(fault)
      homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "once" } })
      await waitUntil("the link to drop", () => lossy.armed() === undefined && transport.stats().connections === 0, 5000)
      assert.deepEqual(heard, fault === "request lost" ? [] : ["once"])
      // Away for three request timeouts of engine time: the request must still be pending.
      for (let i = 0; i < 12; i++) clock.increment(2_500)
      assert.equal(session().info().counters.timedOut, 0)
      await resume()
      await waitUntil("the engine to have its answer", () => answers.length === 1, 5000, () => ({ pushed, answers, stats: transport.stats() }))
      assert.equal(transport.stats().redelivered, 1)
      // A live event after the resume still arrives, after the redelivered one.
      homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "after" } })
      await waitUntil("the next event", () => heard.length === 2, 5000, () => heard)
      await new Promise((resolve) => setTimeout(resolve, 50))
      for (let i = 0; i < 8; i++) clock.increment(2_500)
      assert.deepEqual(heard, ["once", "after"], "each event handled exactly once")
      assert.equal(pushed.length, 2, "the engine sent each event once (the transport delivered the first again)")
      assert.deepEqual(answers, pushed, "one answer per request")
      assert.notInclude(reports, "RequestTimedOut")
      assert.deepInclude(session().info().counters, { timedOut: 0, unmatched: 0, duplicates: 0 })
      assert.equal(transport.stats().sessionsResumed, 1)
    })
})
