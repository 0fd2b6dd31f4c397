/**
 * Hosting a widget with widgethost's published packages, start to finish, in plain Node: an
 * embedded homeserver with one account and room, the homeserver client on that account, the
 * engine, and one widget. The widget here is scripted in-process so the example runs anywhere; a
 * browser client hands `send` and `receive` to `@widgethost/post-message` with an iframe instead.
 *
 * The test suite packs every package, installs the tarballs in an empty app, compiles this file
 * there with plain `tsc` and runs it with plain `node` (test/packaging/packages.test.ts).
 * It prints one JSON line: the event the widget sent and whether it came back to the widget.
 */
import type { WidgetDefinition, WidgetMessage } from "@widgethost/core"
import { startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { fromEffectPort } from "@widgethost/core/effect"

const homeserver = await startEmbeddedHomeserver({ registration: "open" })
const alice = await homeserver.ensureUser("alice", "correct horse battery staple")
const created = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/createRoom`, {
  method: "POST",
  headers: { authorization: `Bearer ${alice.accessToken}`, "content-type": "application/json" },
  body: JSON.stringify({ name: "Widgets" })
})
const { room_id: roomId } = (await created.json()) as { room_id: string }

// The account the engine acts as, with end-to-end encryption; widgets never see ciphertext.
const port = await connectHomeserver({ baseUrl: homeserver.baseUrl, auth: { accessToken: alice.accessToken, deviceId: alice.deviceId, userId: alice.userId } })
// Approve whatever the widget asks; a real client asks its user (the request names the widget).
const engine = createEngine({ homeserver: fromEffectPort(port), approver: async ({ requested }) => requested })
port.start()

const widget: WidgetDefinition = {
  id: "hello",
  kind: "room",
  roomId,
  type: "m.custom",
  url: "https://widget.example/hello",
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"]
}
const capabilities = ["m.send.event:m.room.message", "m.receive.event:m.room.message"]

const result = await new Promise<{ eventId: string; echoed: boolean }>((resolve, reject) => {
  const timeout = setTimeout(() => reject(new Error("the widget did not finish in 20 s")), 20_000)
  let eventId: string | undefined
  // The widget's half of the Widget API: answer the engine's requests, send one message, wait for it to come back.
  const widgetReceives = (message: WidgetMessage) => {
    const reply = (response: object) => setImmediate(() => session.receive({ ...message, response }))
    if (message.api === "toWidget" && !("response" in message)) {
      if (message.action === "capabilities") reply({ capabilities })
      else if (message.action === "supported_api_versions") reply({ supported_versions: ["0.0.2"] })
      else reply({})
      if (message.action === "notify_capabilities") {
        const request = { api: "fromWidget", widgetId: widget.id, requestId: "send-1", action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: "hello from a widget" } } }
        setImmediate(() => session.receive(request))
      }
      if (message.action === "send_event" && (message.data as { event_id?: string }).event_id === eventId) {
        clearTimeout(timeout)
        resolve({ eventId: eventId!, echoed: true })
      }
    } else if (message.api === "fromWidget" && message.requestId === "send-1" && "response" in message) {
      eventId = (message.response as { event_id?: string }).event_id
      if (eventId === undefined) reject(new Error(`send_event failed: ${JSON.stringify(message.response)}`))
    }
  }
  const session = engine.openSession({ widget, send: widgetReceives })
  session.frameLoaded()
})

console.log(JSON.stringify({ roomId, ...result }))
engine.stop()
await port.stop()
await homeserver.close()
