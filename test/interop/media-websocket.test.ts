/**
 * MSC4039 end to end over the websocket transport: matrix-widget-api's `WidgetApi` (unchanged,
 * through the widget-client's window shim) on our websocket transport, the real engine, the HTTP
 * homeserver port and the embedded homeserver. Over JSON the file is base64 both ways
 * (`media-file.ts`); what the widget uploads is the server's file, byte for byte, and what
 * another user uploaded reaches the widget the same way. The browser's side (Blobs over
 * postMessage) is `media-post-message.test.ts`.
 */
import { WidgetApi } from "matrix-widget-api"
import { WebSocket } from "ws"
import { afterEach, describe, expect, it } from "vitest"
import type { WidgetDefinition } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { fromEffectPort } from "@widgethost/core/effect"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { approveAll } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { installWidgetWindow, type WebSocketConstructor, websocketTransport } from "@widgethost/widget-client"

const LIMIT = 64
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await (async () => cleanup())().catch(() => undefined)
})

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const bytesOf = (length: number, seed: number) => Uint8Array.from({ length }, (_, i) => (i * 7 + seed) % 256)

const setUp = async () => {
  const hs: EmbeddedHomeserver = await startEmbeddedHomeserver({ maxUploadBytes: LIMIT })
  cleanups.push(() => hs.close())
  const alice = await hs.ensureUser("alice", "alice-password")
  const bob = await hs.ensureUser("bob", "bob-password")
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { accessToken: alice.accessToken, deviceId: alice.deviceId, userId: alice.userId } })
  const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
  const transport = await startWebsocketTransport()
  cleanups.push(() => port.stop(), () => engine.stop(), () => transport.close())
  const widget: WidgetDefinition = { id: "media", kind: "room", roomId: "!nowhere:localhost", type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }
  const { uri } = transport.register(widget.id, (send) => engine.openSession({ widget, send, waitForIframeLoad: false, transport: "m.websockets" }))
  const socket = await websocketTransport(uri, { WebSocket: WebSocket as unknown as WebSocketConstructor })
  cleanups.push(installWidgetWindow(socket), () => socket.close())
  const api = new WidgetApi(widget.id)
  api.requestCapability("org.matrix.msc4039.upload_file")
  api.requestCapability("org.matrix.msc4039.download_file")
  const ready = new Promise<void>((resolve) => api.once("ready", () => resolve()))
  api.start()
  // MSC3009: on websockets the widget speaks first.
  await api.sendContentLoaded()
  await ready
  const media = (path: string, init: RequestInit = {}) => fetch(`${hs.baseUrl}${path}`, { ...init, headers: { authorization: `Bearer ${bob.accessToken}`, ...init.headers } })
  return { api, media }
}

describe("MSC4039 over the websocket transport, against the embedded homeserver", () => {
  it("the server's config; an upload in base64 is the server's file, byte for byte", async () => {
    const { api, media } = await setUp()
    expect(await api.getMediaConfig()).toEqual({ "m.upload.size": LIMIT })
    const file = bytesOf(LIMIT, 3)
    const { content_uri } = await api.uploadFile(base64(file))
    const mediaId = /^mxc:\/\/localhost\/([A-Za-z0-9_-]+)$/.exec(content_uri)?.[1]
    expect(mediaId, content_uri).toBeDefined()
    const res = await media(`/_matrix/client/v1/media/download/localhost/${mediaId}`)
    expect(res.status).toBe(200)
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(file)
  })

  it("another user's file downloads as base64", async () => {
    const { api, media } = await setUp()
    const file = bytesOf(33, 11)
    const up = await media("/_matrix/media/v3/upload", { method: "POST", body: file, headers: { "content-type": "application/octet-stream" } })
    const { content_uri } = (await up.json()) as { content_uri: string }
    const { file: answer } = await api.downloadFile(content_uri)
    expect(answer).toBe(base64(file))
  })

  it("a file over m.upload.size, and text that is not base64, are refused with the reason", async () => {
    const { api } = await setUp()
    await expect(api.uploadFile(base64(bytesOf(LIMIT + 1, 0)))).rejects.toThrow(`The file is ${LIMIT + 1} bytes; the homeserver accepts at most ${LIMIT} (m.upload.size)`)
    await expect(api.uploadFile("plain text")).rejects.toThrow("base64")
    await expect(api.downloadFile("mxc://localhost/nothing-here")).rejects.toThrow()
  })
})
