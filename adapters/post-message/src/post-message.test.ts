import { existsSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { type Browser, chromium, type Frame, type Page } from "playwright-core"
import { afterAll, afterEach, assert, beforeAll, describe, it, vi } from "vitest"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import { attachPostMessageTransport, type PostMessageTransport } from "./post-message.ts"

// ---- in Node, with fake windows: every rule, one by one ----------------------------------------

/** Just enough of a Window: message listeners and a recording postMessage. */
/** A DOM listener: a function, or an object with `handleEvent` (what the transport registers). */
type Listener<E> = ((event: E) => void) | { handleEvent(event: E): void }
const call = <E>(listener: Listener<E>, event: E) => (typeof listener === "function" ? listener(event) : listener.handleEvent(event))

class FakeWindow {
  readonly listeners = new Set<Listener<MessageEvent>>()
  readonly posted: Array<{ readonly message: unknown; readonly targetOrigin: string }> = []
  addEventListener(_type: "message", listener: Listener<MessageEvent>) {
    this.listeners.add(listener)
  }
  removeEventListener(_type: "message", listener: Listener<MessageEvent>) {
    this.listeners.delete(listener)
  }
  postMessage(message: unknown, targetOrigin: string) {
    this.posted.push({ message, targetOrigin })
  }
  dispatch(data: unknown, origin: string, source: FakeWindow | null) {
    for (const listener of [...this.listeners]) call(listener, { data, origin, source } as unknown as MessageEvent)
  }
}

class FakeFrame {
  readonly loadListeners = new Set<Listener<Event>>()
  constructor(public contentWindow: FakeWindow | null) {}
  addEventListener(_type: "load", listener: Listener<Event>) {
    this.loadListeners.add(listener)
  }
  removeEventListener(_type: "load", listener: Listener<Event>) {
    this.loadListeners.delete(listener)
  }
  load() {
    for (const listener of [...this.loadListeners]) call(listener, new Event("load"))
  }
}

class RecordingSession implements WidgetSession {
  readonly widgetId = "w"
  readonly received: Array<unknown> = []
  readonly events: Array<string> = []
  private readonly listeners = new Set<(reason: string) => void>()
  constructor(readonly send: (message: WidgetMessage) => void) {}
  readonly receive = (raw: unknown) => void this.received.push(raw)
  readonly frameLoaded = () => void this.events.push("frameLoaded")
  readonly transportDown = () => void this.events.push("transportDown")
  readonly transportUp = () => void this.events.push("transportUp")
  readonly close = (reason?: string) => {
    this.events.push(`close:${reason ?? ""}`)
    for (const listener of [...this.listeners]) listener(reason ?? "")
  }
  readonly onClose = (listener: (reason: string) => void) => {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }
}

const WIDGET_ORIGIN = "https://widget.example"
const request = { api: "fromWidget", widgetId: "w", requestId: "r1", action: "content_loaded", data: {} }
const answer = { api: "toWidget", widgetId: "w", requestId: "h1", action: "capabilities", data: {}, response: { capabilities: [] } }

const setup = (widgetUrl = `${WIDGET_ORIGIN}/index.html?room=$x#frag`) => {
  const host = new FakeWindow()
  const widget = new FakeWindow()
  const frame = new FakeFrame(widget)
  let session!: RecordingSession
  const transport: PostMessageTransport = attachPostMessageTransport({
    iframe: frame as unknown as HTMLIFrameElement,
    widgetUrl,
    open: (send) => (session = new RecordingSession(send)),
    window: host as unknown as Window
  })
  return { host, widget, frame, session, transport }
}

describe("postMessage transport: inbound checks", () => {
  interface Case {
    readonly name: string
    readonly data: unknown
    readonly origin?: string
    readonly source?: "widget" | "other" | "null"
    readonly want: "received" | "source" | "origin" | "shape"
  }
  const cases: ReadonlyArray<Case> = [
    { name: "a fromWidget request from the widget", data: request, want: "received" },
    { name: "the widget's response to our toWidget request", data: answer, want: "received" },
    { name: "another window with the widget's origin", data: request, source: "other", want: "source" },
    { name: "no source (e.g. a MessagePort)", data: request, source: "null", want: "source" },
    { name: "the widget window with another origin (navigated away)", data: request, origin: "https://evil.example", want: "origin" },
    { name: "same host, other port", data: request, origin: "https://widget.example:8443", want: "origin" },
    { name: "same host, other scheme", data: request, origin: "http://widget.example", want: "origin" },
    { name: "an origin that only starts like the widget's", data: request, origin: "https://widget.example.evil", want: "origin" },
    { name: "the opaque origin", data: request, origin: "null", want: "origin" },
    { name: "a string", data: JSON.stringify(request), want: "shape" },
    { name: "null", data: null, want: "shape" },
    { name: "an array", data: [request], want: "shape" },
    { name: "another api", data: { ...request, api: "somethingElse" }, want: "shape" },
    { name: "no api", data: { action: "x" }, want: "shape" }
  ]
  it.each(cases)("$name → $want", ({ data, origin, source, want }) => {
    const { host, widget, session, transport } = setup()
    const from = source === "other" ? new FakeWindow() : source === "null" ? null : widget
    host.dispatch(data, origin ?? WIDGET_ORIGIN, from)
    const stats = transport.stats()
    if (want === "received") {
      assert.deepEqual(session.received, [data])
      assert.equal(stats.received, 1)
    } else {
      assert.deepEqual(session.received, [])
      assert.equal(stats.ignored[want], 1)
    }
  })

  it("a toWidget object without a response is ignored", () => {
    const { host, widget, session, transport } = setup()
    host.dispatch({ api: "toWidget", widgetId: "w", requestId: "x", action: "capabilities", data: {} }, WIDGET_ORIGIN, widget)
    assert.deepEqual(session.received, [])
    assert.equal(transport.stats().ignored.shape, 1)
  })
})

describe("postMessage transport: outbound and lifecycle", () => {
  it("posts to the widget window with the widget's exact origin, never *", () => {
    const { widget, session, transport } = setup()
    const message: WidgetMessage = { api: "toWidget", widgetId: "w", requestId: "h1", action: "capabilities", data: {} }
    session.send(message)
    assert.deepEqual(widget.posted, [{ message, targetOrigin: WIDGET_ORIGIN }])
    assert.equal(transport.origin, WIDGET_ORIGIN)
    assert.equal(transport.stats().sent, 1)
  })

  it("a default port is normalised away from the origin", () => {
    const { transport } = setup("https://widget.example:443/x")
    assert.equal(transport.origin, "https://widget.example")
  })

  it("widgets of many origins on one window each keep their own origin (past the shared copies' bound too)", () => {
    const host = new FakeWindow()
    const attach = (url: string) => {
      const widget = new FakeWindow()
      let session!: RecordingSession
      const transport = attachPostMessageTransport({
        iframe: new FakeFrame(widget) as unknown as HTMLIFrameElement,
        widgetUrl: url,
        open: (send) => (session = new RecordingSession(send)),
        window: host as unknown as Window
      })
      return { widget, session, transport }
    }
    const urls = [...Array.from({ length: 300 }, (_, i) => `https://w${i}.example/x`), "https://w0.example/again", "https://w299.example:443/y"]
    const attached = urls.map(attach)
    attached.forEach(({ widget, session, transport }, i) => {
      const origin = new URL(urls[i]!).origin
      assert.equal(transport.origin, origin)
      session.send({ api: "toWidget", widgetId: "w", requestId: "h", action: "x", data: {} })
      assert.equal(widget.posted[0]?.targetOrigin, origin)
      host.dispatch(request, origin, widget)
      assert.equal(session.received.length, 1, urls[i])
    })
  })

  it("every iframe load is frameLoaded", () => {
    const { frame, session } = setup()
    frame.load()
    frame.load()
    assert.deepEqual(session.events, ["frameLoaded", "frameLoaded"])
  })

  it("detach removes the listeners, closes the session, and drops later sends", () => {
    const { host, widget, frame, session, transport } = setup()
    transport.detach()
    transport.detach()
    assert.deepEqual(session.events, ["close:transport detached"])
    assert.equal(host.listeners.size, 0)
    assert.equal(frame.loadListeners.size, 0)
    host.dispatch(request, WIDGET_ORIGIN, widget)
    session.send({ api: "toWidget", widgetId: "w", requestId: "h", action: "x", data: {} })
    assert.deepEqual(session.received, [])
    assert.deepEqual(widget.posted, [])
    assert.equal(transport.stats().dropped, 1)
  })

  it("a session closed by the engine detaches the transport", () => {
    const { host, frame, session, transport } = setup()
    session.close("engine stopped")
    assert.equal(host.listeners.size, 0)
    assert.equal(frame.loadListeners.size, 0)
    transport.detach()
    assert.deepEqual(session.events, ["close:engine stopped"], "not closed twice")
  })

  it("a frame without a window drops sends", () => {
    const { frame, session, transport } = setup()
    frame.contentWindow = null
    session.send({ api: "toWidget", widgetId: "w", requestId: "h", action: "x", data: {} })
    assert.equal(transport.stats().dropped, 1)
  })

  it("refuses a widget URL that is not http(s)", () => {
    assert.throws(() => setup("javascript:alert(1)"), /http\(s\)/)
    assert.throws(() => setup("data:text/html,hi"), /http\(s\)/)
  })
})

// ---- in Chromium: real frames, real origins -----------------------------------------------------

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

/** The host page's script: a recording session behind the real transport. */
const HOST_SCRIPT = `
import { attachPostMessageTransport } from ${JSON.stringify(fileURLToPath(new URL("./post-message.ts", import.meta.url)))}
const params = new URLSearchParams(location.search)
const widgetUrl = params.get("widget")
const received = [], events = []
let send
const session = {
  widgetId: "w",
  receive: (m) => received.push(m),
  frameLoaded: () => events.push("frameLoaded"),
  transportDown: () => {}, transportUp: () => {},
  close: (r) => events.push("close:" + r),
  onClose: () => () => {}
}
const iframe = document.createElement("iframe")
iframe.name = "widget"
const transport = attachPostMessageTransport({ iframe, widgetUrl, open: (s) => { send = s; return session } })
iframe.src = widgetUrl
document.body.append(iframe)
for (const [i, src] of params.getAll("impostor").entries()) {
  const other = document.createElement("iframe")
  other.name = "impostor" + i
  other.src = src
  document.body.append(other)
}
window.__host = { received, events, send: (m) => send(m), stats: () => transport.stats(), navigate: (url) => { iframe.src = url } }
`

/** Every widget-side page records what it receives, with the sender's origin. */
const FRAME_PAGE = `<!doctype html><meta charset="utf-8"><script>
window.__inbox = []
addEventListener("message", (e) => window.__inbox.push({ origin: e.origin, data: e.data }))
</script><p>frame</p>`

interface Origins {
  readonly host: string
  readonly widget: string
  readonly evil: string
}

describe.skipIf(!existsSync(CHROMIUM))("postMessage transport in Chromium", () => {
  let browser: Browser
  let servers: Array<Server> = []
  let origins: Origins
  let page: Page
  const consoleMessages: Array<string> = []

  const listen = async (handler: Parameters<typeof createServer>[1]) => {
    const server = createServer(handler)
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  beforeAll(async () => {
    const bundle = await build({
      stdin: { contents: HOST_SCRIPT, resolveDir: process.cwd(), loader: "ts", sourcefile: "host.ts" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      logLevel: "silent"
    })
    const hostScript = bundle.outputFiles[0]?.text ?? ""
    const hostPage = `<!doctype html><meta charset="utf-8"><body><script type="module">${hostScript}</script></body>`
    const page = (body: string) => (_req: unknown, res: import("node:http").ServerResponse) => res.writeHead(200, { "Content-Type": "text/html" }).end(body)
    origins = {
      host: await listen(page(hostPage)),
      widget: await listen(page(FRAME_PAGE)),
      evil: await listen(page(FRAME_PAGE))
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  })

  afterAll(async () => {
    await browser?.close()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
    servers = []
  })

  afterEach(async () => {
    await page?.close()
    consoleMessages.length = 0
  })

  const open = async () => {
    page = await browser.newPage()
    page.on("console", (message) => consoleMessages.push(message.text()))
    const query = new URLSearchParams({ widget: `${origins.widget}/widget.html` })
    query.append("impostor", `${origins.evil}/evil.html`)
    query.append("impostor", `${origins.widget}/twin.html`)
    await page.goto(`${origins.host}/?${query.toString()}`)
    await page.waitForFunction(() => (window as unknown as { __host?: { events: string[] } }).__host?.events.includes("frameLoaded"))
    const frame = (name: string): Frame => {
      const found = page.frame({ name })
      if (found === null) throw new Error(`no frame ${name}`)
      return found
    }
    for (const name of ["impostor0", "impostor1"]) await frame(name).waitForFunction(() => "__inbox" in window)
    return { widget: frame("widget"), evil: frame("impostor0"), twin: frame("impostor1") }
  }

  type HostState = { received: Array<{ requestId: string }>; stats: () => { received: number; ignored: Record<string, number>; sent: number } }
  const received = () => page.evaluate(() => (window as unknown as { __host: HostState }).__host.received.map((m) => m.requestId))
  const stats = () => page.evaluate(() => (window as unknown as { __host: HostState }).__host.stats())
  const post = (frame: Frame, requestId: string) =>
    frame.evaluate((id) => parent.postMessage({ api: "fromWidget", widgetId: "w", requestId: id, action: "content_loaded", data: {} }, "*"), requestId)
  /** The widget posts a marker; once the host has it, earlier posts have been handled. */
  const sync = async (widget: Frame, marker: string) => {
    await post(widget, marker)
    await vi.waitFor(async () => assert.include(await received(), marker))
  }

  it("messages from the widget frame reach the session; the iframe load is frameLoaded", async () => {
    const { widget } = await open()
    await post(widget, "r1")
    await widget.evaluate(() => parent.postMessage({ api: "toWidget", widgetId: "w", requestId: "h1", action: "capabilities", data: {}, response: { capabilities: [] } }, "*"))
    await vi.waitFor(async () => assert.deepEqual(await received(), ["r1", "h1"]))
    const events = await page.evaluate(() => (window as unknown as { __host: { events: string[] } }).__host.events)
    assert.deepEqual(events, ["frameLoaded"])
  })

  it("messages from another origin's frame, a same-origin twin frame, or the host itself are ignored", async () => {
    const { widget, evil, twin } = await open()
    await post(evil, "from-evil")
    await post(twin, "from-twin")
    await page.evaluate(() => window.postMessage({ api: "fromWidget", widgetId: "w", requestId: "from-host", action: "x", data: {} }, "*"))
    await widget.evaluate(() => parent.postMessage("not an object", "*"))
    await sync(widget, "marker")
    assert.deepEqual(await received(), ["marker"])
    const { ignored } = await stats()
    assert.equal(ignored["source"], 3)
    assert.equal(ignored["shape"], 1)
  })

  it("outbound messages carry the widget's origin as targetOrigin: they reach the widget, and nobody after it navigates away", async () => {
    const { widget } = await open()
    await page.evaluate(() => (window as unknown as { __host: { send: (m: unknown) => void } }).__host.send({ api: "toWidget", widgetId: "w", requestId: "h1", action: "capabilities", data: {} }))
    await vi.waitFor(async () => assert.lengthOf(await widget.evaluate(() => (window as unknown as { __inbox: unknown[] }).__inbox), 1))
    const [delivered] = await widget.evaluate(() => (window as unknown as { __inbox: Array<{ origin: string; data: { requestId: string } }> }).__inbox)
    assert.equal(delivered?.origin, origins.host)
    assert.equal(delivered?.data.requestId, "h1")

    // The same iframe now shows another origin: what we send is dropped by the browser (targetOrigin
    // mismatch), and what that page sends is refused by our origin check (same source, wrong origin).
    await page.evaluate((url) => (window as unknown as { __host: { navigate: (u: string) => void } }).__host.navigate(url), `${origins.evil}/navigated.html`)
    await vi.waitFor(() => assert.isTrue(page.frames().some((f) => f.url() === `${origins.evil}/navigated.html`)))
    const navigated = page.frames().find((f) => f.url() === `${origins.evil}/navigated.html`)!
    await navigated.waitForFunction(() => "__inbox" in window)
    await page.evaluate(() => (window as unknown as { __host: { send: (m: unknown) => void } }).__host.send({ api: "toWidget", widgetId: "w", requestId: "h2", action: "secret", data: {} }))
    await vi.waitFor(() => assert.isTrue(consoleMessages.some((m) => m.includes("does not match the recipient window's origin"))))
    assert.deepEqual(await navigated.evaluate(() => (window as unknown as { __inbox: unknown[] }).__inbox), [])
    await post(navigated, "from-navigated")
    await vi.waitFor(async () => assert.equal((await stats()).ignored["origin"], 1))
    assert.notInclude(await received(), "from-navigated")
  })
})
