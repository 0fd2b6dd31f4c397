/**
 * The websocket transport with the real engine: negotiation, a widget's send, and delivery on resume.
 */
import { assert, describe, it, vi } from "vitest"
import { chooseTransport, headlessHost, Result } from "@widgethost/core"
import { parseWidgetDefinition } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"
import { type Client, connect, start, useTransportCleanup } from "./websocket.test-kit.ts"

useTransportCleanup()

describe("websocket transport with the real engine", () => {
  /** A scripted widget: answers every toWidget request the way matrix-widget-api would. */
  const scriptedWidget = (client: Client, capabilities: ReadonlyArray<string>) => {
    const answered = new Set<unknown>()
    return () => {
      for (const message of client.inbox) {
        if (message["api"] !== "toWidget" || "response" in message || answered.has(message)) continue
        answered.add(message)
        const response =
          message["action"] === "capabilities" ? { capabilities } : message["action"] === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
        client.ws.send(JSON.stringify({ ...message, response }))
      }
    }
  }

  it("first contact negotiates, the widget sends an event, and an event that arrives while it is away is delivered on resume", async () => {
    const room = "!room:localhost"
    const homeserver = makeInMemoryHomeserver({ rooms: [room] })
    const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested })
    try {
      const widget = Result.getOrThrow(
        parseWidgetDefinition({
          source: "room-state",
          event: { type: "m.widget", state_key: "ws-widget", room_id: room, sender: homeserver.userId, content: { type: "m.custom", url: "https://w.example/", transports: ["m.websockets"] } }
        })
      )
      const choice = Result.getOrThrow(chooseTransport(widget, headlessHost))
      assert.deepEqual(choice, { transport: "m.websockets", waitForIframeLoad: false })
      const { transport } = await start()
      let opened = 0
      const { uri } = transport.register(widget.id, (send) => {
        opened++
        return engine.openSession({ widget, send, waitForIframeLoad: choice.waitForIframeLoad })
      })
      const capabilities = ["org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc2762.receive.event:m.room.message"]

      const first = await connect(uri)
      const answerFirst = scriptedWidget(first, capabilities)
      first.ws.send(JSON.stringify({ api: "fromWidget", widgetId: widget.id, requestId: "r0", action: "content_loaded", data: {} }))
      await vi.waitFor(() => {
        answerFirst()
        assert.isTrue(first.inbox.some((m) => m["action"] === "notify_capabilities"))
      })
      first.ws.send(JSON.stringify({ api: "fromWidget", widgetId: widget.id, requestId: "r1", action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } } }))
      await vi.waitFor(() => assert.isTrue(first.inbox.some((m) => m["requestId"] === "r1" && "response" in m)))
      const sent = first.inbox.find((m) => m["requestId"] === "r1")?.["response"] as { event_id?: string } | undefined
      assert.isString(sent?.event_id)
      await vi.waitFor(() => {
        answerFirst()
        assert.isTrue(first.inbox.some((m) => m["action"] === "send_event" && (m["data"] as { event_id?: string }).event_id === sent?.event_id))
      })

      first.ws.terminate()
      await vi.waitFor(() => assert.equal(transport.stats().closed[1006], 1))
      homeserver.inject({ type: "m.room.message", room_id: room, sender: "@bob:localhost", content: { msgtype: "m.text", body: "while you were away" } })

      const second = await connect(uri)
      await vi.waitFor(() => assert.isAbove(second.inbox.length, 0))
      const [missed] = second.inbox
      assert.equal(missed?.["action"], "send_event")
      assert.equal((missed?.["data"] as { content?: { body?: string } }).content?.body, "while you were away")
      assert.equal(opened, 1, "the same session resumed")
      assert.equal(engine.sessions()[0]?.phase, "ready")
    } finally {
      engine.stop()
    }
  })
})
