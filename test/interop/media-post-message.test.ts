/**
 * MSC4039 end to end over postMessage, in Chromium: matrix-widget-api's `WidgetApi` in a
 * cross-origin iframe uploads a Blob, an ArrayBuffer and a string and downloads files back as
 * Blobs, through our postMessage transport and engine in the host page, whose homeserver port is
 * the HTTP port in Node (over the port bridge, the page cannot run it) on the embedded
 * homeserver. Files cross postMessage as structured clone carries them (`media-file.ts`); the
 * websocket side (base64) is `media-websocket.test.ts`.
 */
import { existsSync } from "node:fs"
import { createServer, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { type PortBridge, startPortBridge } from "../src/port-bridge/server.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const LIMIT = 64

const HOST_SCRIPT = `
import { createEngine } from "@widgethost/engine"
import { fromEffectPort } from "@widgethost/core/effect"
import { attachPostMessageTransport } from "@widgethost/post-message"
import { connectPortBridge } from ${JSON.stringify(fileURLToPath(new URL("../src/port-bridge/client.ts", import.meta.url)))}

const params = new URLSearchParams(location.search)
const homeserver = await connectPortBridge(params.get("bridge"))
const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested })
const widgetUrl = params.get("widget") + "#?widgetId=media&host=" + encodeURIComponent(location.origin)
const widget = { id: "media", kind: "room", roomId: "!nowhere:localhost", type: "m.custom", url: widgetUrl, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] }
const iframe = document.createElement("iframe")
iframe.name = "widget"
attachPostMessageTransport({ iframe, widgetUrl, open: (send) => engine.openSession({ widget, send, origin: new URL(widgetUrl).origin }) })
iframe.src = widgetUrl
document.body.append(iframe)
`

const WIDGET_SCRIPT = `
import { WidgetApi } from "matrix-widget-api"
const params = new URLSearchParams(location.hash.slice(2))
const api = new WidgetApi(params.get("widgetId"), params.get("host"))
api.requestCapability("org.matrix.msc4039.upload_file")
api.requestCapability("org.matrix.msc4039.download_file")
const bytes = (blob) => blob.arrayBuffer().then((buffer) => [...new Uint8Array(buffer)])
const outcome = async (run) => { try { return { ok: await run() } } catch (error) { return { error: String(error.message ?? error) } } }
api.on("ready", async () => {
  const result = {}
  result.config = await outcome(() => api.getMediaConfig())
  const blob = new Blob([new Uint8Array([1, 2, 3, 250])], { type: "image/png" })
  result.blob = await outcome(async () => {
    const { content_uri } = await api.uploadFile(blob)
    const { file } = await api.downloadFile(content_uri)
    return { content_uri, isBlob: file instanceof Blob, type: file.type, bytes: await bytes(file) }
  })
  result.buffer = await outcome(async () => (await api.uploadFile(new Uint8Array([9, 8, 7]).buffer)).content_uri)
  result.text = await outcome(async () => (await api.uploadFile("hello")).content_uri)
  result.tooLarge = await outcome(() => api.uploadFile(new Blob([new Uint8Array(${LIMIT + 1})])))
  result.other = await outcome(async () => {
    const { file } = await api.downloadFile(new URLSearchParams(location.search).get("other") ?? "")
    return { type: file.type, bytes: await bytes(file) }
  })
  window.__result = result
})
api.start()
`

const bundle = async (contents: string) => {
  const result = await build({
    stdin: { contents, resolveDir: fileURLToPath(new URL(".", import.meta.url)), loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    conditions: ["@widgethost/source"],
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "silent"
  })
  return result.outputFiles[0]?.text ?? ""
}

const html = (script: string) => `<!doctype html><meta charset="utf-8"><body><script type="module">${script.replaceAll("</script", "<\\/script")}</script></body>`

interface Outcome<A> {
  readonly ok?: A
  readonly error?: string
}
interface WidgetResult {
  readonly config: Outcome<Record<string, unknown>>
  readonly blob: Outcome<{ content_uri: string; isBlob: boolean; type: string; bytes: Array<number> }>
  readonly buffer: Outcome<string>
  readonly text: Outcome<string>
  readonly tooLarge: Outcome<unknown>
  readonly other: Outcome<{ type: string; bytes: Array<number> }>
}

describe.skipIf(!existsSync(CHROMIUM))("MSC4039 over postMessage: WidgetApi in Chromium, the HTTP port on the embedded homeserver", () => {
  let browser: Browser
  let hs: EmbeddedHomeserver
  let port: MatrixHomeserver
  let bridge: PortBridge
  const servers: Array<Server> = []
  let result: WidgetResult
  /** bob's authenticated download of an mxc URI of this server: [content type, bytes]. */
  let serverCopy: (uri: string) => Promise<[string | null, Array<number>]>

  const listen = async (body: string) => {
    const server = createServer((_req, res: ServerResponse) => res.writeHead(200, { "Content-Type": "text/html" }).end(body))
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  beforeAll(async () => {
    hs = await startEmbeddedHomeserver({ maxUploadBytes: LIMIT })
    const alice = await hs.ensureUser("alice", "alice-password")
    const bob = await hs.ensureUser("bob", "bob-password")
    port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { accessToken: alice.accessToken, deviceId: alice.deviceId, userId: alice.userId } })
    bridge = await startPortBridge(port)
    const authed = { authorization: `Bearer ${bob.accessToken}` }
    serverCopy = async (uri) => {
      const res = await fetch(`${hs.baseUrl}/_matrix/client/v1/media/download/${uri.replace("mxc://", "")}`, { headers: authed })
      return [res.headers.get("content-type"), [...new Uint8Array(await res.arrayBuffer())]]
    }
    const up = await fetch(`${hs.baseUrl}/_matrix/media/v3/upload`, { method: "POST", body: new Uint8Array([5, 6]), headers: { ...authed, "content-type": "application/x-bob" } })
    const other = ((await up.json()) as { content_uri: string }).content_uri
    const [host, widget] = await Promise.all([bundle(HOST_SCRIPT), bundle(WIDGET_SCRIPT)])
    const hostOrigin = await listen(html(host))
    const widgetOrigin = await listen(html(widget))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    const page = await browser.newPage()
    page.on("pageerror", (error) => console.error("page error:", error))
    await page.goto(`${hostOrigin}/?bridge=${encodeURIComponent(bridge.url)}&widget=${encodeURIComponent(`${widgetOrigin}/widget.html?other=${encodeURIComponent(other)}`)}`)
    const frame = await (await page.waitForSelector("iframe")).contentFrame()
    await frame!.waitForFunction(() => "__result" in window, undefined, { timeout: 30_000 })
    result = (await frame!.evaluate(() => (window as unknown as { __result: unknown }).__result)) as WidgetResult
  }, 90_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
    await bridge?.close()
    await port?.stop()
    await hs?.close()
  })

  it("get_media_config: the server's limit", () => {
    expect(result.config).toEqual({ ok: { "m.upload.size": LIMIT } })
  })

  it("a Blob goes up with its type, and comes down as a Blob of the same type and bytes", async () => {
    const blob = result.blob.ok
    expect(blob, result.blob.error).toMatchObject({ isBlob: true, type: "image/png", bytes: [1, 2, 3, 250] })
    expect(await serverCopy(blob!.content_uri)).toEqual(["image/png", [1, 2, 3, 250]])
  })

  it("an ArrayBuffer goes up as its bytes, a string as UTF-8 text", async () => {
    expect(await serverCopy(result.buffer.ok ?? "")).toEqual(["application/octet-stream", [9, 8, 7]])
    expect(await serverCopy(result.text.ok ?? "")).toEqual(["text/plain;charset=UTF-8", [104, 101, 108, 108, 111]])
  })

  it("a Blob over the server's limit is refused with the reason", () => {
    expect(result.tooLarge.error).toContain(`at most ${LIMIT} (m.upload.size)`)
  })

  it("another user's file downloads as a Blob typed as the server serves it", () => {
    expect(result.other).toEqual({ ok: { type: "application/x-bob", bytes: [5, 6] } })
  })
})
