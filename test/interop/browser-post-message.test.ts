/**
 * Interop: matrix-widget-api's `WidgetApi` in a real cross-origin iframe in Chromium, talking to
 * our engine through the postMessage transport in the host page. The whole host path is real:
 * the widget's room state event is parsed, the transport chosen, the URL templated, the engine
 * negotiates capabilities (an approver in the page approves), and the event the widget sends lands
 * in the in-memory homeserver and is echoed back to the widget.
 */
import { existsSync } from "node:fs"
import { createServer, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it, vi } from "vitest"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

const HOST_SCRIPT = `
import { createEngine } from "@widgethost/engine"
import { browserHost, chooseTransport, parseWidgetDefinition, renderWidgetUrl, Result } from "@widgethost/core"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"
import { attachPostMessageTransport } from "@widgethost/post-message"

const ROOM = "!room:localhost"
const params = new URLSearchParams(location.search)
const homeserver = makeInMemoryHomeserver({ rooms: [ROOM] })
const approvals = []
// While held, prompts wait for release(): a test can look at a document that is not yet approved.
let held = undefined
const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => {
  approvals.push(requested)
  if (held !== undefined) await held.promise
  return requested
} })

const parsed = parseWidgetDefinition({ source: "room-state", event: {
  type: "im.vector.modular.widgets", state_key: "interop", room_id: ROOM, sender: homeserver.userId,
  content: {
    type: "m.custom", name: "Interop",
    url: params.get("widget") + "#?widgetId=$matrix_widget_id&room=$matrix_room_id&transport=$matrix_widget_transport&host=$host",
    data: { host: location.origin },
    "org.matrix.msc3009.transports": ["org.matrix.msc3009.postmessage", "org.matrix.msc3009.websockets"]
  }
} })
if (!Result.isSuccess(parsed)) throw new Error("widget definition rejected")
const widget = parsed.success
const choice = Result.getOrThrow(chooseTransport(widget, browserHost))
const widgetUrl = renderWidgetUrl(widget.url, { widgetId: widget.id, userId: homeserver.userId, roomId: ROOM, transport: choice.transport, data: widget.data })

const iframe = document.createElement("iframe")
iframe.name = "widget"
const transport = attachPostMessageTransport({
  iframe, widgetUrl,
  open: (send) => engine.openSession({ widget, send, origin: new URL(widgetUrl).origin, waitForIframeLoad: choice.waitForIframeLoad })
})
iframe.src = widgetUrl
document.body.append(iframe)
window.__host = {
  choice, widgetUrl, approvals,
  calls: () => homeserver.calls.map((c) => ({ method: c.method, args: c.args })),
  info: () => transport.session.info(),
  stats: () => transport.stats(),
  hold: () => { let release; const promise = new Promise((resolve) => (release = resolve)); held = { promise, release } },
  release: () => { held?.release(); held = undefined },
  inject: (body) => homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body } })
}
`

const WIDGET_SCRIPT = `
import { WidgetApi } from "matrix-widget-api"
const params = new URLSearchParams(location.hash.slice(2))
const log = []
const api = new WidgetApi(params.get("widgetId"), params.get("host"))
api.requestCapabilityToSendEvent("m.room.message")
api.requestCapabilityToReceiveEvent("m.room.message")
api.on("ready", async () => {
  log.push({ ready: true })
  try {
    const sent = await api.sendRoomEvent("m.room.message", { msgtype: "m.text", body: "hello from the widget" })
    log.push({ sent })
  } catch (error) {
    log.push({ error: String(error) })
  }
})
api.on("action:send_event", (event) => {
  event.preventDefault()
  log.push({ received: event.detail.data })
  api.transport.reply(event.detail, {})
})
api.start()
// Answers the host sends to requests made by hand (not through WidgetApi), by request id.
const answers = {}
window.addEventListener("message", (event) => {
  if (event.data?.api === "fromWidget" && String(event.data.requestId).startsWith("raw-")) answers[event.data.requestId] = event.data.response
})
const raw = (requestId, action, data) => window.parent.postMessage({ api: "fromWidget", widgetId: params.get("widgetId"), requestId, action, data }, params.get("host"))
window.__widget = { log, answers, raw, params: Object.fromEntries(params) }
`

const bundle = async (contents: string) => {
  const result = await build({
    stdin: { contents, resolveDir: fileURLToPath(new URL(".", import.meta.url)), loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    // Our packages' TypeScript sources (their default export is the built JavaScript).
    conditions: ["@widgethost/source"],
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "silent"
  })
  return result.outputFiles[0]?.text ?? ""
}

const html = (script: string) => `<!doctype html><meta charset="utf-8"><body><script type="module">${script.replaceAll("</script", "<\\/script")}</script></body>`

interface HostApi {
  readonly choice: { transport: string; waitForIframeLoad: boolean }
  readonly widgetUrl: string
  readonly approvals: Array<ReadonlyArray<string>>
  readonly calls: () => Array<{ method: string; args: { type?: string; content?: { body?: string } } }>
  readonly info: () => { phase: string; approved: ReadonlyArray<string>; counters: { documents: number } }
  readonly hold: () => void
  readonly release: () => void
  readonly stats: () => { received: number; sent: number; ignored: Record<string, number> }
  readonly inject: (body: string) => void
}
type WidgetLog = Array<{ ready?: boolean; sent?: { event_id?: string; room_id?: string }; error?: string; received?: { sender?: string; content?: { body?: string } } }>

describe.skipIf(!existsSync(CHROMIUM))("matrix-widget-api WidgetApi ↔ engine over postMessage, in Chromium", () => {
  let browser: Browser
  const servers: Array<Server> = []
  let page: Page
  let hostOrigin: string
  let widgetOrigin: string

  const listen = async (body: string) => {
    const server = createServer((_req, res: ServerResponse) => res.writeHead(200, { "Content-Type": "text/html" }).end(body))
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  beforeAll(async () => {
    const [host, widget] = await Promise.all([bundle(HOST_SCRIPT), bundle(WIDGET_SCRIPT)])
    hostOrigin = await listen(html(host))
    widgetOrigin = await listen(html(widget))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    page = await browser.newPage()
    page.on("pageerror", (error) => console.error("page error:", error))
    await page.goto(`${hostOrigin}/?widget=${encodeURIComponent(`${widgetOrigin}/widget.html`)}`)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  })

  const hostEval = <A>(fn: (host: HostApi) => A) => page.evaluate<A>(`(${fn.toString()})(window.__host)`)
  const widgetLog = () => {
    const frame = page.frame({ name: "widget" })
    if (frame === null) throw new Error("no widget frame")
    return frame.evaluate(() => (window as unknown as { __widget?: { log: WidgetLog } }).__widget?.log ?? [])
  }

  it("the definition is parsed, postMessage chosen, the URL templated for the widget", async () => {
    await page.waitForFunction(() => "__host" in window)
    const { choice, widgetUrl } = await hostEval((h) => ({ choice: h.choice, widgetUrl: h.widgetUrl }))
    assert.deepEqual(choice, { transport: "m.postmessage", waitForIframeLoad: true })
    const fragment = new URLSearchParams(new URL(widgetUrl).hash.slice(2))
    assert.deepEqual(Object.fromEntries(fragment), { widgetId: "interop", room: "!room:localhost", transport: "m.postmessage", host: hostOrigin })
  })

  it("WidgetApi negotiates: capabilities approved, the session is ready", async () => {
    await vi.waitFor(async () => assert.isTrue((await widgetLog()).some((entry) => entry.ready === true)), { timeout: 10_000 })
    const info = await hostEval((h) => h.info())
    assert.equal(info.phase, "ready")
    assert.includeMembers([...info.approved], ["org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc2762.receive.event:m.room.message"])
    const approvals = await hostEval((h) => h.approvals)
    assert.lengthOf(approvals, 1)
  })

  it("the widget sends an event: it reaches the homeserver, the widget gets its id and the echo", async () => {
    await vi.waitFor(async () => assert.isTrue((await widgetLog()).some((entry) => entry.sent !== undefined || entry.error !== undefined)), { timeout: 10_000 })
    const log = await widgetLog()
    const sent = log.find((entry) => entry.sent !== undefined)?.sent
    assert.isDefined(sent, JSON.stringify(log))
    assert.equal(sent?.room_id, "!room:localhost")
    const calls = await hostEval((h) => h.calls())
    const send = calls.find((c) => c.method === "sendEvent")
    assert.equal(send?.args.type, "m.room.message")
    assert.equal(send?.args.content?.body, "hello from the widget")
    await vi.waitFor(async () => assert.isTrue((await widgetLog()).some((entry) => entry.received?.content?.body === "hello from the widget")))
  })

  it("an event from another user in the room reaches the widget", async () => {
    await hostEval((h) => h.inject("hi widget"))
    await vi.waitFor(async () => {
      const received = (await widgetLog()).find((entry) => entry.received?.content?.body === "hi widget")
      assert.equal(received?.received?.sender, "@bob:localhost")
    })
    const stats = await hostEval((h) => h.stats())
    assert.deepEqual(stats.ignored, { source: 0, origin: 0, shape: 0 })
    assert.isAbove(stats.received, 3)
  })

  it("a reloaded widget document renegotiates: nothing the old document was granted serves it until approved again", async () => {
    const frame = page.frame({ name: "widget" })!
    await hostEval((h) => h.hold())
    await frame.evaluate(() => location.reload())
    // The new document's WidgetApi asked for its capabilities; the prompt is held.
    await vi.waitFor(async () => assert.lengthOf(await hostEval((h) => h.approvals), 2), { timeout: 10_000 })
    const info = await hostEval((h) => h.info())
    assert.equal(info.phase, "negotiating")
    assert.deepEqual(info.approved, [])
    assert.equal(info.counters.documents, 1)
    // The new document tries to send with the old document's grant.
    const widgetFrame = page.frame({ name: "widget" })!
    await widgetFrame.evaluate(() =>
      (window as unknown as { __widget: { raw: (id: string, action: string, data: unknown) => void } }).__widget.raw("raw-early", "send_event", { type: "m.room.message", content: { msgtype: "m.text", body: "early" } })
    )
    const early = await vi.waitFor(async () => {
      const answer = await widgetFrame.evaluate(() => (window as unknown as { __widget: { answers: Record<string, unknown> } }).__widget.answers["raw-early"])
      assert.isDefined(answer)
      return answer as { error?: { code?: string } }
    })
    assert.equal(early.error?.code, "WrongPhase")
    assert.isFalse((await hostEval((h) => h.calls())).some((c) => c.args.content?.body === "early"))
    // Approved again: the new document is served.
    await hostEval((h) => h.release())
    await vi.waitFor(async () => assert.isTrue((await widgetLog()).some((entry) => entry.sent !== undefined)), { timeout: 10_000 })
    assert.equal((await hostEval((h) => h.info())).phase, "ready")
    assert.lengthOf((await hostEval((h) => h.calls())).filter((c) => c.args.content?.body === "hello from the widget"), 2)
  })
})
