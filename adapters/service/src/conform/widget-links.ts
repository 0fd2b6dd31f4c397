/**
 * Where `conform widget` meets the widget under test, one fresh widget per path:
 * - `websocketWidgets`: MSC3009. The tool listens and each path takes the next connection;
 *   first contact is the widget's first message (MSC3009: the widget speaks first), so a widget
 *   is never sent a request before it is listening. With `exec`, the tool starts the widget for each path
 *   itself (a shell command; `{ws}` in it, and `WIDGETHOST_CONFORM_WS` in its environment, is
 *   the URI to connect to) and stops it after; without, the widget must connect once per path.
 * - `browserWidgets`: a widget page in Chromium, framed by a host page the tool serves on
 *   127.0.0.1, over real postMessage: first contact is the frame's load; each path a new tab.
 *   It needs `playwright-core` (an optional peer dependency) and a Chromium binary.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import type { Harness } from "./harness.ts"
import type { ConnectWidget, WidgetLink } from "./widget-run.ts"

export interface WidgetSource {
  /** What the report calls the widget. */
  readonly target: string
  readonly connect: ConnectWidget
  close(): Promise<void>
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(what)), ms)
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error instanceof Error ? error : new Error(String(error))))
    )
  })

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text // kept as text: the checks report it
  }
}

const quoted = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`

export const websocketWidgets = async (options: { readonly host: string; readonly port: number; readonly exec?: string; readonly contactTimeoutMs: number }): Promise<WidgetSource> => {
  const server = new WebSocketServer({ host: options.host, port: options.port })
  await new Promise<void>((resolve, reject) => server.once("listening", resolve).once("error", reject))
  const uri = `ws://${options.host}:${(server.address() as AddressInfo).port}/`
  const waiting: Array<(socket: WebSocket) => void> = []
  const early: WebSocket[] = []
  server.on("connection", (socket) => {
    const next = waiting.shift()
    if (next === undefined) early.push(socket)
    else next(socket)
  })
  const children = new Set<ChildProcess>()
  const stop = (child: ChildProcess | undefined) => {
    if (child === undefined || child.exitCode !== null) return Promise.resolve()
    return new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGTERM")
      setTimeout(() => child.kill("SIGKILL"), 2_000).unref()
    })
  }

  const connect: ConnectWidget = async () => {
    const child = options.exec === undefined ? undefined : spawn(options.exec.replaceAll("{ws}", quoted(uri)), { shell: true, stdio: "ignore", env: { ...process.env, WIDGETHOST_CONFORM_WS: uri } })
    if (child !== undefined) children.add(child)
    const socket = await withTimeout(
      new Promise<WebSocket>((resolve) => (early.length > 0 ? resolve(early.shift()!) : waiting.push(resolve))),
      options.contactTimeoutMs,
      `no widget connected to ${uri} within ${options.contactTimeoutMs} ms`
    ).catch(async (error: unknown) => {
      waiting.length = 0
      await stop(child)
      throw error
    })
    const gone: Array<(reason: string) => void> = []
    let closing = false
    let listener: ((message: unknown) => void) | undefined
    const before: unknown[] = []
    const spoke = new Promise<void>((resolve) => {
      socket.on("message", (data) => {
        const message = parseJson((data as Buffer).toString())
        if (listener === undefined) before.push(message)
        else listener(message)
        resolve()
      })
    })
    socket.on("close", (code, reason) => {
      if (!closing) for (const listener of gone) listener(`the widget closed the connection (${code}${String(reason) ? ` ${String(reason)}` : ""})`)
    })
    socket.on("error", () => undefined)
    const link: WidgetLink = {
      send: (message) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify(message)),
      onMessage: (next) => {
        listener = next
        for (const message of before.splice(0)) next(message)
      },
      onGone: (listener) => void gone.push(listener),
      close: async () => {
        closing = true
        if (socket.readyState === WebSocket.OPEN) socket.close(1000, "conform: path done")
        await stop(child)
        if (child !== undefined) children.delete(child)
        socket.terminate()
      }
    }
    await withTimeout(spoke, options.contactTimeoutMs, `the widget connected to ${uri} but sent nothing within ${options.contactTimeoutMs} ms (MSC3009: the widget speaks first)`).catch(async (error: unknown) => {
      await link.close()
      throw error
    })
    return link
  }
  return {
    target: options.exec === undefined ? uri : `${options.exec} (on ${uri})`,
    connect,
    close: async () => {
      await Promise.all([...children].map(stop))
      for (const client of server.clients) client.terminate()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

/** The widget URL with the usual template variables filled in, and `widgetId`/`parentUrl` added when absent. */
export const widgetPageUrl = (url: string, harness: Harness, parentUrl: string): string => {
  const filled = url
    .replaceAll("$matrix_widget_id", encodeURIComponent(harness.widgetId))
    .replaceAll("$matrix_room_id", encodeURIComponent(harness.roomId))
    .replaceAll("$org.matrix.msc2873.client_origin", encodeURIComponent(new URL(parentUrl).origin))
    // Not a spec variable, but the one Element Web's widget URLs (Element Call's) use.
    .replaceAll("$parentUrl", encodeURIComponent(parentUrl))
  const parsed = new URL(filled)
  if (!parsed.searchParams.has("widgetId")) parsed.searchParams.set("widgetId", harness.widgetId)
  if (!parsed.searchParams.has("parentUrl")) parsed.searchParams.set("parentUrl", parentUrl)
  return parsed.href
}

/** The host page: frames the widget and passes messages between it and the tool, nothing else. */
const HOST_PAGE = `<!doctype html><meta charset="utf-8"><title>conform widget</title>
<body style="margin:0"><iframe id="widget" style="border:0;width:100vw;height:100vh" allow="camera; microphone; display-capture; clipboard-write"></iframe>
<script>
const frame = document.getElementById("widget")
window.addEventListener("message", (event) => { if (event.source === frame.contentWindow) window.__fromWidget(event.data) })
window.__toWidget = (message) => frame.contentWindow.postMessage(message, new URL(frame.src).origin)
frame.addEventListener("load", () => window.__loaded(), { once: true })
frame.src = new URLSearchParams(location.search).get("widget")
</script>`

export const browserWidgets = async (options: { readonly url: string; readonly harness: Harness; readonly chromium: string; readonly contactTimeoutMs: number }): Promise<WidgetSource> => {
  let playwright: typeof import("playwright-core")
  try {
    playwright = await import("playwright-core")
  } catch {
    throw new Error("conform widget URL drives the widget in Chromium and needs playwright-core: npm install playwright-core")
  }
  const server = createServer((_request, response) => response.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(HOST_PAGE))
  await new Promise<void>((resolve, reject) => server.listen(0, "127.0.0.1", resolve).once("error", reject))
  const hostUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  const browser = await playwright.chromium.launch({ executablePath: options.chromium, args: ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"] })

  const connect: ConnectWidget = async () => {
    const page = await browser.newPage()
    const listeners: Array<(message: unknown) => void> = []
    const gone: Array<(reason: string) => void> = []
    let closing = false
    const loaded = new Promise<void>((resolve) => void page.exposeFunction("__loaded", resolve))
    await page.exposeFunction("__fromWidget", (message: unknown) => listeners.forEach((listener) => listener(message)))
    page.on("crash", () => gone.forEach((listener) => listener("the widget's page crashed")))
    page.on("close", () => closing || gone.forEach((listener) => listener("the widget's page closed")))
    const pageUrl = `${hostUrl}?widget=${encodeURIComponent(widgetPageUrl(options.url, options.harness, hostUrl))}`
    try {
      await page.goto(pageUrl)
      await withTimeout(loaded, options.contactTimeoutMs, `the widget page ${options.url} did not load within ${options.contactTimeoutMs} ms`)
    } catch (error) {
      closing = true
      await page.close()
      throw error
    }
    return {
      send: (message) => void page.evaluate((m) => (globalThis as unknown as { __toWidget(m: unknown): void }).__toWidget(m), message).catch(() => undefined),
      onMessage: (listener) => void listeners.push(listener),
      onGone: (listener) => void gone.push(listener),
      close: async () => {
        closing = true
        await page.close()
      }
    }
  }
  return {
    target: options.url,
    connect,
    close: async () => {
      await browser.close()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
