/**
 * The service's widget host over the real websocket transport: MSC3009 says a websocket widget
 * behaves as a postMessage widget with `waitForIframeLoad: false`, so the host waits for its
 * `content_loaded`, whatever the widget says before it.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { WebSocket } from "ws"
import { createEngine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { ROOM } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { WidgetHost } from "./widget-host.ts"
import { WidgetBlocklist } from "./widget-blocklist.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

type Message = Record<string, unknown>

const WIDGET = { id: "ws-widget", roomId: ROOM, type: "m.custom", url: "https://widget.example/#ws=$matrix_websocket_uri", transports: ["m.websockets"] }

const hostOneWidget = async (blocklist?: WidgetBlocklist) => {
  const homeserver = makeInMemoryHomeserver()
  const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested })
  const transport = await startWebsocketTransport()
  const host = new WidgetHost({
    engine,
    transport,
    homeserver,
    host: { supported: ["m.websockets"], prefer: ["m.websockets"] },
    baseUrl: "http://127.0.0.1:1",
    client: { id: "test", theme: "light", language: "en" },
    ...(blocklist === undefined ? {} : { blocklist })
  })
  cleanups.push(() => engine.stop(), () => transport.close())
  await host.start([ROOM], [WIDGET])
  const [widget] = host.list()
  const uri = decodeURIComponent(/#ws=(.*)$/.exec(widget!.url)![1]!)
  const socket = new WebSocket(uri)
  cleanups.push(() => socket.close())
  const received: Message[] = []
  socket.on("message", (data) => received.push(JSON.parse((data as Buffer).toString()) as Message))
  await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)))
  const say = (requestId: string, action: string) => socket.send(JSON.stringify({ api: "fromWidget", widgetId: "ws-widget", requestId, action, data: {} }))
  const settle = async (predicate: () => boolean) => {
    for (let i = 0; i < 100 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return { received, say, settle, socket, host }
}

describe("websocket widgets negotiate on content_loaded (MSC3009)", () => {
  it("supported_api_versions first is answered and starts nothing; content_loaded starts the capabilities exchange", async () => {
    const { received, say, settle } = await hostOneWidget()
    say("v", "supported_api_versions")
    await settle(() => received.some((m) => m["requestId"] === "v"))
    // Time for a capabilities request to be sent, if the host (wrongly) started on first contact.
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(received.map((m) => m["action"])).toEqual(["supported_api_versions"])
    say("loaded", "content_loaded")
    await settle(() => received.some((m) => m["action"] === "capabilities"))
    expect(received.map((m) => [m["api"], m["action"], "response" in m])).toEqual([
      ["fromWidget", "supported_api_versions", true],
      ["fromWidget", "content_loaded", true],
      ["toWidget", "capabilities", false]
    ])
  })

  it("a frame nested 20,000 levels deep (under the frame limit) gets its error answer, and the connection stays open", async () => {
    const { received, say, settle, socket } = await hostOneWidget()
    const deep = `${"{\"a\":".repeat(20_000)}{}${"}".repeat(20_000)}`
    socket.send(`{"api":"fromWidget","widgetId":"ws-widget","requestId":"deep","action":"send_event","data":{"type":"m.room.message","content":${deep}}}`)
    await settle(() => received.some((m) => m["requestId"] === "deep"))
    expect(received.find((m) => m["requestId"] === "deep")).toEqual({
      api: "fromWidget",
      widgetId: "ws-widget",
      requestId: "deep",
      action: "send_event",
      response: { error: { message: "Malformed request: the request is nested deeper than 100 levels", code: "Malformed" } }
    })
    say("after", "supported_api_versions")
    await settle(() => received.some((m) => m["requestId"] === "after"))
    expect(socket.readyState).toBe(WebSocket.OPEN)
    expect(received.find((m) => m["requestId"] === "after")).toMatchObject({ response: { supported_versions: expect.any(Array) as unknown } })
  })
})

/** The HTTP status that refused an upgrade; rejects when the connection is accepted. */
const refusedStatus = (uri: string, origin: string | undefined) =>
  new Promise<number>((resolve, reject) => {
    const socket = new WebSocket(uri, origin === undefined ? {} : { origin })
    cleanups.push(() => socket.terminate())
    socket.once("open", () => reject(new Error(`accepted from ${origin ?? "no origin"}`)))
    socket.once("unexpected-response", (req, res) => {
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    socket.once("error", () => undefined)
  })

describe("who may connect to a hosted widget's URI", () => {
  it("its own page's origin connects; any other browser origin is refused (403); a wrong token is refused whatever the origin (401)", async () => {
    const { socket } = await hostOneWidget()
    const uri = socket.url
    socket.close()
    await new Promise((resolve) => socket.once("close", resolve))
    expect(await refusedStatus(uri, "https://evil.example")).toBe(403)
    expect(await refusedStatus(uri, "https://widget.example.evil.example")).toBe(403)
    expect(await refusedStatus(uri, "null")).toBe(403)
    const wrongToken = uri.replace(/\/widget\/.*$/, `/widget/${"A".repeat(43)}`)
    expect(await refusedStatus(wrongToken, "https://widget.example")).toBe(401)
    const own = new WebSocket(uri, { origin: "https://widget.example" })
    cleanups.push(() => own.terminate())
    await new Promise((resolve, reject) => (own.once("open", resolve), own.once("error", reject)))
    expect(own.readyState).toBe(WebSocket.OPEN)
  })
})

describe("blocking a widget", () => {
  it("closes its connection (4410), forgets its URI, and does not host it again, with the same definition or another URL; the block is kept on disk", async () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-block-"))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, "blocked-widgets.json")
    const { socket, host } = await hostOneWidget(new WidgetBlocklist(file))
    const uri = socket.url
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)))
    expect(host.block({ id: "nope", roomId: ROOM })).toBe(false)
    expect(host.block({ id: WIDGET.id, roomId: ROOM })).toBe(true)
    expect(await closed).toBe(4410)
    expect(await refusedStatus(uri, undefined)).toBe(401)
    expect(host.list()).toEqual([{ id: WIDGET.id, roomId: ROOM, transport: "none", url: "", blocked: true }])
    await host.start([ROOM], [WIDGET])
    await host.start([ROOM], [{ ...WIDGET, url: "https://elsewhere.example/#ws=$matrix_websocket_uri" }])
    expect(host.list()).toEqual([{ id: WIDGET.id, roomId: ROOM, transport: "none", url: "", blocked: true }])
    expect(await refusedStatus(uri, undefined)).toBe(401)
    expect(new WidgetBlocklist(file).has({ id: WIDGET.id, roomId: ROOM }), "a new run reads the block").toBe(true)
    expect(new WidgetBlocklist(file).has({ id: WIDGET.id }), "another slot is not blocked").toBe(false)
  })
})
