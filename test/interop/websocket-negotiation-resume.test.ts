/**
 * Negotiation across a dropped websocket: our engine behind our websocket transport (real
 * sockets on 127.0.0.1), the widget-side client as the widget. The link drops while the
 * `capabilities` request is unanswered: either before the widget reads it (the request is lost)
 * or after it answered (the answer is lost). The widget stays away while the engine's manual
 * clock runs well past the 10 s capabilities timeout, then resumes. Want: the request is
 * delivered again, the widget's answer is the one weighed, and the session is ready with what it
 * asked for, without a timeout.
 */
import { afterEach, assert, describe, it } from "vitest"
import { SimulatedClock } from "xstate"
import { WebSocket } from "ws"
import type { WidgetDefinition } from "@widgethost/core"
import { createEngine, type EngineSession } from "@widgethost/engine"
import { makeInMemoryHomeserver, simulatedClock } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { websocketTransport, type WebSocketConstructor, WidgetClient } from "@widgethost/widget-client"
import { fromEffectPort } from "@widgethost/core/effect"
import { waitUntil } from "../src/engine-fixture.ts"
import { resumeOver } from "../src/widget-resume.ts"

const ROOM = "!room:localhost"
const CAPABILITIES = ["m.receive.event:m.room.message", "m.send.event:m.room.message"]
const widget: WidgetDefinition = { id: "w", kind: "room", roomId: ROOM, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

type Fault = "request lost" | "answer lost"

/** A socket that cuts itself (no close frame: 1006, resumable) instead of reading the host's `capabilities` request, or instead of sending its answer. */
const lossySocket = (fault: Fault) => {
  let armed = true
  const isCapabilities = (text: string, answer: boolean) => text.includes(`"action":"capabilities"`) && text.includes(`"response"`) === answer
  class LossySocket extends WebSocket {
    override emit(event: string | symbol, ...args: Array<unknown>): boolean {
      if (armed && fault === "request lost" && event === "message" && isCapabilities(String(args[0]), false)) {
        armed = false
        this.terminate()
        return true
      }
      return super.emit(event, ...args)
    }
    override send(data: unknown, ...rest: Array<never>): void {
      if (armed && fault === "answer lost" && typeof data === "string" && isCapabilities(data, true)) {
        armed = false
        this.terminate()
        return
      }
      super.send(data as string, ...rest)
    }
  }
  return { Socket: LossySocket as unknown as WebSocketConstructor, fired: () => !armed }
}

describe("websocket: negotiation across a dropped link", () => {
  for (const fault of ["request lost", "answer lost"] as const)
    it(`${fault}, away for 30 s of engine time: the capabilities request waits, and the widget gets what it asked for`, async () => {
      // Engine time moves only when the test says.
      const clock = new SimulatedClock()
      const reports: Array<string> = []
      const engine = createEngine({
        homeserver: fromEffectPort(makeInMemoryHomeserver({ rooms: [ROOM] })),
        approver: async ({ requested }) => requested,
        clock: simulatedClock(clock),
        onReport: (_s, _w, report) => void reports.push(report._tag)
      })
      const transport = await startWebsocketTransport({ resumeGraceMs: 60_000 })
      cleanups.push(() => engine.stop(), () => transport.close())
      let session: EngineSession | undefined
      const { uri } = transport.register(widget.id, (send) => (session = engine.openSession({ widget, waitForIframeLoad: false, send })))
      const lossy = lossySocket(fault)
      const client = new WidgetClient({ transport: await websocketTransport(uri, { WebSocket: lossy.Socket }), widgetId: widget.id, capabilities: CAPABILITIES })
      cleanups.push(() => client.close())
      void client.contentLoaded().catch(() => undefined) // its answer may be lost with the link
      await waitUntil("the link to drop", () => lossy.fired() && transport.stats().connections === 0, 5000)
      await waitUntil("the session to hear of it", () => session?.info().phase === "negotiating", 5000)
      // Away for three capabilities timeouts, in steps (the manual clock fires what falls due in each).
      for (let i = 0; i < 120; i++) clock.increment(250)
      await new Promise((resolve) => setTimeout(resolve, 20))
      assert.equal(session!.info().phase, "negotiating", "still waiting for the widget")
      assert.equal(session!.info().counters.timedOut, 0)
      await resumeOver(client, uri, lossy.Socket)
      const approval = await client.ready
      assert.deepEqual([...approval.approved].sort(), [...CAPABILITIES].sort())
      assert.equal(session!.info().phase, "ready")
      assert.deepEqual([...session!.info().approved].sort(), [...CAPABILITIES].sort())
      assert.notInclude(reports, "RequestTimedOut")
      assert.isAtLeast(transport.stats().redelivered, 1)
      assert.equal(transport.stats().sessionsResumed, 1)
    })
})
