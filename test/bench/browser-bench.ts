/**
 * Scenario 11, the transport our users run in: headless Chromium (Debian's, never a downloaded
 * one), the host page on `127.0.0.1` and the widgets on `localhost` (another site, so real
 * cross-origin, out-of-process iframes), real `postMessage` both ways. Each contestant gets its
 * own host frame in one page (browser/host-page.ts) and the rounds go in turns, as in the Node
 * bench: fan-out at N = 1, 10, 100 against both reference builds and the bare-postMessage floor,
 * and `send_event` round trips (1 and 100 in flight) against both builds and the widget side
 * alone. The pages are bundled at start by esbuild, minified, as a client's bundler would.
 *
 *   node --import ./test/bench/loader.mjs test/bench/browser-bench.ts [--quick] [--sizes 1,10] [--in-flight 1]
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { parseArgs } from "node:util"
import { build } from "esbuild"
import { chromium } from "playwright-core"
import { interleave, median, progress, renderTable, type Row, type Settings, settingsFor, warmupOf } from "./harness.ts"

export const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--site-per-process", "--host-resolver-rules=MAP localhost 127.0.0.1", "--disable-renderer-backgrounding", "--disable-background-timer-throttling"]

const bundle = async (entry: string): Promise<string> => {
  const result = await build({
    entryPoints: [new URL(entry, import.meta.url).pathname],
    bundle: true,
    minify: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "chrome120",
    conditions: ["@widgethost/source", "module"],
    alias: { "matrix-widget-api-src": new URL("../../node_modules/matrix-widget-api/src/index.ts", import.meta.url).pathname },
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "silent"
  })
  return result.outputFiles[0]!.text
}

const page = (script: string) => `<!doctype html><meta charset="utf-8"><body><script src="${script}"></script></body>`

/** One origin's files, served from memory on 127.0.0.1. */
const serve = (files: Record<string, { readonly type: string; readonly body: string }>): Promise<Server> =>
  new Promise((resolve) => {
    const server = createServer((request, response) => {
      const file = files[new URL(request.url ?? "/", "http://x").pathname]
      if (file === undefined) return void response.writeHead(404).end()
      response.writeHead(200, { "content-type": file.type, "cache-control": "max-age=600" }).end(file.body)
    })
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const portOf = (server: Server) => (server.address() as AddressInfo).port

export interface BrowserBenchOptions {
  readonly sizes?: ReadonlyArray<number>
  readonly inFlight?: ReadonlyArray<number>
  /** Seconds per round (the counts adapt to it). */
  readonly seconds?: number
}

type Bench = { readonly bench: { open(n: number): Promise<void>; fanOut(events: number, inFlight: number): Promise<number>; roundTrips(count: number, inFlight: number): Promise<number>; stop(): void } }

export const browserBench = async (settings: Settings, options: BrowserBenchOptions = {}): Promise<Row[]> => {
  const seconds = options.seconds ?? (settings.quick ? 0.2 : 0.4)
  const [hostJs, widgetJs] = await Promise.all([bundle("./browser/host-page.ts"), bundle("./browser/widget-page.ts")])
  const hostServer = await serve({
    "/": { type: "text/html", body: "<!doctype html><meta charset=utf-8><body></body>" },
    "/host.html": { type: "text/html", body: page("/host.js") },
    "/host.js": { type: "text/javascript", body: hostJs }
  })
  const widgetServer = await serve({ "/widget.html": { type: "text/html", body: page("/widget.js") }, "/widget.js": { type: "text/javascript", body: widgetJs } })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  const rows: Row[] = []
  try {
    const tab = await browser.newPage()
    const errors: string[] = []
    tab.on("pageerror", (error) => errors.push(error.message))
    await tab.goto(`http://127.0.0.1:${portOf(hostServer)}/`)
    const widgets = `http://localhost:${portOf(widgetServer)}`

    /** A host frame for `engine`, its widgets open and ready. */
    const hostFrame = async (engine: string, n: number) => {
      const name = engine.replace(/[^a-z]/g, "-")
      await tab.evaluate(
        ({ engine, name, widgets }) =>
          new Promise<void>((resolve, reject) => {
            const frame = document.createElement("iframe")
            frame.name = name
            frame.width = "400"
            frame.height = "300"
            frame.onload = () => resolve()
            frame.onerror = () => reject(new Error(`${engine}: host frame did not load`))
            frame.src = `/host.html?engine=${encodeURIComponent(engine)}&widgets=${encodeURIComponent(widgets)}`
            document.body.appendChild(frame)
          }),
        { engine, name, widgets }
      )
      const frame = tab.frame({ name })
      if (frame === null) throw new Error(`${engine}: no host frame`)
      await frame.evaluate((n) => (window as unknown as Bench).bench.open(n), n)
      return {
        name: engine,
        fanOut: (events: number, inFlight: number) => frame.evaluate(([e, f]) => (window as unknown as Bench).bench.fanOut(e!, f!), [events, inFlight]),
        roundTrips: (count: number, inFlight: number) => frame.evaluate(([c, f]) => (window as unknown as Bench).bench.roundTrips(c!, f!), [count, inFlight]),
        close: async () => {
          await frame.evaluate(() => (window as unknown as Bench).bench.stop())
          await tab.evaluate((name) => document.querySelector(`iframe[name="${name}"]`)?.remove(), name)
        }
      }
    }

    for (const n of options.sizes ?? [1, 10, 100]) {
      progress(`chromium fan-out: ${n} widgets`)
      const frames = []
      for (const engine of ["widgethost", "matrix-widget-api", "matrix-widget-api (src)", "transport floor"]) frames.push(await hostFrame(engine, n))
      const samples = await interleave(
        settings,
        frames.map((frame) => {
          let events = Math.max(1, Math.round(500 / n))
          return {
            name: frame.name,
            round: async () => {
              const rate = await frame.fanOut(events, 16)
              events = Math.max(1, Math.round((rate * seconds) / n))
              return rate
            }
          }
        })
      )
      for (const frame of frames) await frame.close()
      const ours = median(samples.get("widgethost")!)
      const detail = { widgets: n, secondsPerRound: seconds, inFlight: 16, rounds: Object.fromEntries(samples), warmups: Object.fromEntries(samples.warmups) }
      for (const against of ["matrix-widget-api", "matrix-widget-api (src)", "transport floor"])
        rows.push({ scenario: `11 Chromium fan-out, N=${n}`, metric: "deliveries/s", unit: "1/s", ours, against: { name: against, value: median(samples.get(against)!) }, better: "higher", warmup: warmupOf(samples, "widgethost", against), detail })
    }

    for (const inFlight of options.inFlight ?? [1, 100]) {
      progress(`chromium round trips: ${inFlight} in flight`)
      const frames = []
      for (const engine of ["widgethost", "matrix-widget-api", "matrix-widget-api (src)", "widget side alone"]) frames.push(await hostFrame(engine, 1))
      const samples = await interleave(
        settings,
        frames.map((frame) => {
          let count = Math.max(inFlight, 300)
          return {
            name: frame.name,
            round: async () => {
              const rate = await frame.roundTrips(count, inFlight)
              count = Math.max(inFlight, Math.round(rate * seconds))
              return rate
            }
          }
        })
      )
      for (const frame of frames) await frame.close()
      const ours = median(samples.get("widgethost")!)
      const scenario = `11 Chromium send_event round trips, ${inFlight === 1 ? "sequential" : `${inFlight} in flight`}`
      const detail = { inFlight, secondsPerRound: seconds, rounds: Object.fromEntries(samples), warmups: Object.fromEntries(samples.warmups) }
      for (const against of ["matrix-widget-api", "matrix-widget-api (src)", "widget side alone"])
        rows.push({ scenario, metric: "round trips/s", unit: "1/s", ours, against: { name: against, value: median(samples.get(against)!) }, better: "higher", warmup: warmupOf(samples, "widgethost", against), detail })
    }
    if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`)
  } finally {
    await browser.close()
    hostServer.close()
    widgetServer.close()
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, sizes: { type: "string" }, "in-flight": { type: "string" } } })
  const rows = await browserBench(settingsFor(values.quick), {
    ...(values.sizes === undefined ? {} : { sizes: values.sizes.split(",").map(Number) }),
    ...(values["in-flight"] === undefined ? {} : { inFlight: values["in-flight"].split(",").map(Number) })
  })
  console.log(renderTable(rows))
}
