/**
 * The browser app of the packaging test: the engine from the installed tarballs, in a page,
 * hosting one scripted widget over the testing kit's in-memory homeserver. It sets
 * `window.__result` to the event the widget sent and whether it came back to the widget.
 */
import type { WidgetDefinition, WidgetMessage } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"

const roomId = "!room:localhost"
const homeserver = makeInMemoryHomeserver({ rooms: [roomId] })
const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested })
const widget: WidgetDefinition = { id: "hello", kind: "room", roomId, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }

const result = { sent: undefined as string | undefined, echoed: false }
const widgetReceives = (message: WidgetMessage) => {
  if (message.api === "fromWidget" && "response" in message) {
    result.sent = (message.response as { event_id?: string }).event_id
    return
  }
  if (message.api !== "toWidget" || "response" in message) return
  const reply = (response: object) => setTimeout(() => session.receive({ ...message, response }))
  reply(message.action === "capabilities" ? { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] } : {})
  if (message.action === "notify_capabilities") {
    setTimeout(() => session.receive({ api: "fromWidget", widgetId: widget.id, requestId: "send-1", action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } } }))
  }
  if (message.action === "send_event") result.echoed = true
}
const session = engine.openSession({ widget, send: widgetReceives })
session.frameLoaded()
;(globalThis as { __result?: typeof result }).__result = result
