/**
 * Hosting a widget on a matrix-js-sdk client's own session, with widgethost's published packages
 * and nothing of Effect: the same program as host-a-widget.ts, but the engine's homeserver is
 * `fromMatrixClient(client)`, a `PromiseHomeserverPort` over a js-sdk client with its Rust crypto.
 *
 * The test suite compiles this file in the app of installed tarballs with plain `tsc` and runs
 * it with plain `node` (test/packaging/packages.test.ts); with `skipLibCheck`, which
 * matrix-js-sdk 36's own declarations need under NodeNext resolution (one of them imports
 * `matrix-events-sdk/lib/types`, which has no declaration there). It prints one JSON line: the event the
 * widget sent and whether it came back to the widget.
 */
import type { WidgetDefinition, WidgetMessage } from "@widgethost/core"
import { startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { createEngine } from "@widgethost/engine"
import { fromMatrixClient } from "@widgethost/matrix-js-sdk"
import { ClientEvent, createClient, SyncState } from "matrix-js-sdk"
import { logger } from "matrix-js-sdk/lib/logger.js"

const homeserver = await startEmbeddedHomeserver({ registration: "open" })
const alice = await homeserver.ensureUser("alice", "correct horse battery staple")
const created = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/createRoom`, {
  method: "POST",
  headers: { authorization: `Bearer ${alice.accessToken}`, "content-type": "application/json" },
  body: JSON.stringify({ name: "Widgets" })
})
const { room_id: roomId } = (await created.json()) as { room_id: string }

// The client the user runs, with its own crypto; widgets act as it. (Its logger is quiet here.)
logger.setLevel("silent")
const client = createClient({ baseUrl: homeserver.baseUrl, userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId, logger })
await client.initRustCrypto({ useIndexedDB: false })
const port = fromMatrixClient(client)
// Approve whatever the widget asks; a real client asks its user (the request names the widget).
const engine = createEngine({ homeserver: port, approver: async ({ requested }) => requested })
const synced = new Promise<void>((resolve) => client.on(ClientEvent.Sync, (state) => state === SyncState.Prepared && resolve()))
await client.startClient()
await synced

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
port.stop()
client.stopClient()
await homeserver.close()
// matrix-js-sdk 36 leaves timers running after stopClient (request timeouts, a capabilities refresh).
process.exit(0)
