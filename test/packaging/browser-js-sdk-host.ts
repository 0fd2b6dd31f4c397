/**
 * The browser app of the packaging test that hosts a widget on a real homeserver: a matrix-js-sdk
 * `MatrixClient` in the page with its Rust crypto (WebAssembly), logged in as the user, and the
 * engine from the installed tarballs on `fromMatrixClient(client)`, so the widget acts with the
 * client's own session, sync and crypto: in an encrypted room its message goes out encrypted by
 * the client and comes back to it decrypted. The test serves this page (and the crypto's `.wasm`)
 * from 127.0.0.1 and gives it the account on `window.__config`; the page sets `window.__result`
 * to the event the widget sent and what came back to the widget.
 */
import type { WidgetDefinition, WidgetMessage } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { fromMatrixClient } from "@widgethost/matrix-js-sdk"
import { ClientEvent, createClient, SyncState } from "matrix-js-sdk"

interface Config {
  readonly baseUrl: string
  readonly userId: string
  readonly accessToken: string
  readonly deviceId: string
  readonly roomId: string
}
const config = (globalThis as { __config?: Config }).__config!
const result = { sent: undefined as string | undefined, echoed: false, echoedBody: undefined as string | undefined, error: undefined as string | undefined }
// The room events the widget was sent; its own may come back before or after send_event's answer.
const heard = new Map<string, string>()
;(globalThis as { __result?: typeof result }).__result = result

const client = createClient({ baseUrl: config.baseUrl, userId: config.userId, accessToken: config.accessToken, deviceId: config.deviceId })
await client.initRustCrypto({ useIndexedDB: false })
const port = fromMatrixClient(client)
const engine = createEngine({ homeserver: port, approver: async ({ requested }) => requested })
const synced = new Promise<void>((resolve) => client.on(ClientEvent.Sync, (state) => state === SyncState.Prepared && resolve()))
await client.startClient()
await synced

const echo = () => {
  if (result.sent === undefined || !heard.has(result.sent)) return
  result.echoedBody = heard.get(result.sent)
  result.echoed = true
}

const widget: WidgetDefinition = { id: "hello", kind: "room", roomId: config.roomId, type: "m.custom", url: "https://widget.example/hello", data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
const capabilities = ["m.send.event:m.room.message", "m.receive.event:m.room.message"]

// The widget's half of the Widget API: answer the engine, send one message, wait for it to come back.
const widgetReceives = (message: WidgetMessage) => {
  if (message.api === "fromWidget" && "response" in message) {
    const response = message.response as { event_id?: string; error?: { message: string } }
    result.sent = response.event_id
    if (response.error !== undefined) result.error = response.error.message
    echo()
    return
  }
  if (message.api !== "toWidget" || "response" in message) return
  const reply = (response: object) => setTimeout(() => session.receive({ ...message, response }))
  if (message.action === "capabilities") reply({ capabilities })
  else if (message.action === "supported_api_versions") reply({ supported_versions: ["0.0.2"] })
  else reply({})
  if (message.action === "notify_capabilities") {
    const request = { api: "fromWidget", widgetId: widget.id, requestId: "send-1", action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: "hello from a browser" } } } as const
    setTimeout(() => session.receive(request))
  }
  if (message.action === "send_event") {
    const event = message.data as { event_id: string; content: { body?: string } }
    heard.set(event.event_id, event.content.body ?? "")
    echo()
  }
}
const session = engine.openSession({ widget, send: widgetReceives })
session.frameLoaded()
