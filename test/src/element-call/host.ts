/**
 * The Node side of hosting Element Call in Chromium: Element Call's published `dist/` on its own
 * origin, the host page (`host-page.ts`, bundled from our sources) on another, and Chromium
 * driven by playwright-core. Each `open` is a fresh page: a new engine and a new Element Call.
 */
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { type Browser, chromium, type FrameLocator, type Page } from "playwright-core"
import { type StaticFiles, serveStaticFiles } from "../static-files.ts"
import type { HostLogEntry } from "./host-page.ts"
import { WIDGET_FRAME } from "./widget-frame.ts"

export const CHROMIUM = "/usr/bin/chromium"
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // A camera and a microphone for the lobby's preview, without a permission prompt.
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
  "--autoplay-policy=no-user-gesture-required"
]

const DIST = join(dirname(createRequire(import.meta.url).resolve("@element-hq/element-call-embedded/package.json")), "dist")

/** What the host page exposes as `window.__host` (see `host-page.ts`). */
export interface HostApi {
  readonly widgetUrl: string
  readonly log: ReadonlyArray<HostLogEntry>
  readonly prompts: ReadonlyArray<ReadonlyArray<string>>
  readonly openIdPrompts: ReadonlyArray<string | undefined>
  readonly clientCalls: ReadonlyArray<{ readonly hook: string; readonly data: unknown }>
  readonly info: () => { phase: string; requested: ReadonlyArray<string>; approved: ReadonlyArray<string>; denied: ReadonlyArray<string> }
  readonly closeWidget: () => void
}

export interface HostPage {
  readonly page: Page
  /** The widget's document. */
  readonly frame: FrameLocator
  /** Runs `fn` on the page's `window.__host`; `fn` is sent as source, so it sees nothing else. */
  readonly host: <A>(fn: (host: HostApi) => A) => Promise<A>
  /** The page's console, Element Call's included (it is printed when a wait fails). */
  readonly console: ReadonlyArray<string>
}

export interface ElementCallHost {
  /** A fresh host page (its own engine) with the widget in `roomId`. */
  open(roomId: string): Promise<HostPage>
  close(): Promise<void>
}

const bundleHostPage = async () => {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("./host-page.ts", import.meta.url))],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    // Our packages' TypeScript sources.
    conditions: ["@widgethost/source", "module"],
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "silent"
  })
  const script = result.outputFiles[0]?.text ?? ""
  return `<!doctype html><meta charset="utf-8"><title>host</title><body><script type="module">${script.replaceAll("</script", "<\\/script")}</script></body>`
}

/**
 * A host page (`host-page.ts`) framing the widget at `widgetPage` of the static files `widget`
 * (served on their own origin; closed with the host). `bridge`, `homeserver`: what the page is
 * told (see `host-page.ts`).
 */
export const startWidgetHost = async (options: {
  readonly bridge: string
  readonly homeserver: string
  readonly widget: StaticFiles
  readonly widgetPage: string
}): Promise<ElementCallHost> => {
  const html = await bundleHostPage()
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const hostUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  let browser: Browser | undefined
  return {
    open: async (roomId) => {
      browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
      const page = await browser.newPage({ viewport: { width: 1100, height: 800 } })
      const lines: Array<string> = []
      page.on("console", (m) => lines.push(`[${m.type()}] ${m.text()}`))
      page.on("pageerror", (e) => lines.push(`[pageerror] ${e.message}`))
      const query = new URLSearchParams({ bridge: options.bridge, widget: `${options.widget.url}${options.widgetPage}`, room: roomId, homeserver: options.homeserver })
      await page.goto(`${hostUrl}/?${query}`)
      await page.waitForFunction(() => "__host" in window)
      return {
        page,
        frame: page.frameLocator(`iframe[name=${WIDGET_FRAME}]`),
        host: <A>(fn: (host: HostApi) => A) => page.evaluate<A>(`(${fn.toString()})(window.__host)`),
        console: lines
      }
    },
    close: async () => {
      await browser?.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await options.widget.close()
    }
  }
}

/** Element Call's `dist/` as the widget; `config` is merged over its own `config.json`, as a deployment configures it. */
export const startElementCallHost = async (options: {
  readonly bridge: string
  readonly homeserver: string
  readonly config?: Readonly<Record<string, unknown>>
}): Promise<ElementCallHost> => {
  const shipped = JSON.parse(readFileSync(join(DIST, "config.json"), "utf8")) as Record<string, unknown>
  const widget = await serveStaticFiles(DIST, { "/config.json": JSON.stringify(mergeDeep(shipped, options.config ?? {})) })
  return startWidgetHost({ bridge: options.bridge, homeserver: options.homeserver, widget, widgetPage: "/index.html" })
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

const mergeDeep = (base: Readonly<Record<string, unknown>>, over: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const current = out[key]
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeDeep(current, value) : value
  }
  return out
}
