/**
 * Scenario 5, heap bytes per ready idle session at 1000 sessions. Each engine is measured in its
 * own fresh child process (`node --expose-gc`), so neither sees the other's garbage or code:
 *
 *   1. build a host and negotiate a few widgets (compiles the code paths), forced GC, heap used;
 *   2. negotiate 1000 widgets until ready, then cut the widget sides loose (their listeners and
 *      `WidgetApi` objects go: what remains is what the host keeps per session, plus the fake
 *      iframe and window objects, the same for both engines); forced GC, heap used;
 *   3. bytes per session = the difference / 1000. Repeated `rounds` times in the child (a new
 *      host each time, the earlier ones kept alive so none is freed during a later round),
 *      median reported.
 *
 * The host-only rows do the same with the scripted widget side (`--side scripted`): no
 * `WidgetApi` ever talks to the host. Logging is not measured here (its buffer is not per session).
 *
 *   npx tsx test/bench/heap.ts [--quick]          (spawns the children)
 *   node --expose-gc --import tsx test/bench/heap.ts --child --engine widgethost --sessions 1000
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

/** Children run through the same production-like loader as this process (see loader.mjs). */
const loader = new URL("./loader.mjs", import.meta.url).href
import { parseArgs } from "node:util"
import { median, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole } from "./harness.ts"
import { FakeFrame, FakeWindow } from "./fake-window.ts"
import { type EngineName, HOST_ORIGIN, hostFor, MESSAGE_CAPABILITIES, openReady, ROOM, WIDGET_ORIGIN, type WidgetSideKind } from "./hosts.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"

export interface HeapOptions {
  readonly sessions?: number
}

interface ChildResult {
  readonly engine: EngineName
  readonly sessions: number
  readonly bytesPerSession: ReadonlyArray<number>
  readonly withWidgetSide: ReadonlyArray<number>
  /**
   * What the fake DOM alone costs per session, measured the same way: a widget's window and its
   * iframe element with one `load` listener, which each engine keeps (both hold the iframe and
   * listen for its loads). In a browser these live outside the JS heap; included in both
   * engines' bytes alike, reported so a reader can take it off both.
   */
  readonly fakeDomPerSession: number
}

const collect = async (): Promise<number> => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("heap: run with node --expose-gc")
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

/** Bytes per session of the fake DOM alone: a widget window and its iframe with one load listener (see `fakeDomPerSession`). */
const fakeDomBytes = async (sessions: number): Promise<number> => {
  const host = new FakeWindow(HOST_ORIGIN)
  // One listener for all: an engine's own listener is the engine's cost, not the DOM's.
  const listener = { handleEvent: () => {} }
  const before = await collect()
  const frames = Array.from({ length: sessions }, () => {
    const frame = new FakeFrame(new FakeWindow(WIDGET_ORIGIN, host))
    frame.addEventListener("load", listener)
    return frame
  })
  const bytes = ((await collect()) - before) / sessions
  frames.length = 0
  return bytes
}

/** In the child: what one engine keeps per ready, idle session. */
const measureHere = async (engine: EngineName, sessions: number, rounds: number, side: WidgetSideKind): Promise<ChildResult> => {
  const warm = hostFor(engine, side)
  await openReady(warm, Array.from({ length: 50 }, (_, i) => ({ id: `warm-${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES })))
  warm.stop()
  const bytesPerSession: number[] = []
  const withWidgetSide: number[] = []
  // Hosts stay alive until the end: a stopped host's memory may be released only later (timers,
  // deferred actor stops), which would fall inside the next round's measurement.
  const hosts = []
  for (let r = 0; r < rounds; r++) {
    const host = hostFor(engine, side)
    hosts.push(host)
    const before = await collect()
    let widgets = await openReady(host, Array.from({ length: sessions }, (_, i) => ({ id: `idle-${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES })))
    // Let the last acknowledgements land and per-request timers be cleared.
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
    withWidgetSide.push(((await collect()) - before) / sessions)
    for (const widget of widgets) widget.detach()
    widgets = []
    bytesPerSession.push(((await collect()) - before) / sessions)
  }
  for (const host of hosts) host.stop()
  return { engine, sessions, bytesPerSession, withWidgetSide, fakeDomPerSession: await fakeDomBytes(sessions) }
}

const child = (engine: EngineName, sessions: number, rounds: number, side: WidgetSideKind = "widget-api"): Promise<ChildResult> =>
  new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ["--expose-gc", "--import", loader, fileURLToPath(import.meta.url), "--child", "--engine", engine, "--sessions", String(sessions), "--rounds", String(rounds), "--side", side],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    let out = ""
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
    proc.on("error", reject)
    proc.on("close", (code) => {
      if (code !== 0) return reject(new Error(`heap child for ${engine} exited with ${code}`))
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as ChildResult)
      } catch (error) {
        reject(new Error(`heap child for ${engine} printed no result: ${String(error)}`))
      }
    })
  })

export const heap = async (settings: Settings, options: HeapOptions = {}): Promise<Row[]> => {
  const sessions = options.sessions ?? 1000
  const rounds = settings.quick ? 1 : 3
  progress(`heap: ${sessions} idle ready sessions, each engine in its own process`)
  const ours = await child("widgethost", sessions, rounds)
  const reference = await child("matrix-widget-api", sessions, rounds)
  const twin = await child("matrix-widget-api (src)", sessions, rounds)
  // Host only: the same sessions negotiated by the scripted widget side, so no WidgetApi ever
  // talked to the host (whatever its requests leave behind in the host is not counted).
  progress(`heap: the same with the scripted widget side (host only)`)
  const oursHostOnly = await child("widgethost", sessions, rounds, "scripted")
  const referenceHostOnly = await child("matrix-widget-api", sessions, rounds, "scripted")
  const twinHostOnly = await child("matrix-widget-api (src)", sessions, rounds, "scripted")
  const scenario = `5 heap per idle ready session, ${sessions} sessions`
  const row = { scenario, metric: "heap per session", unit: "bytes", better: "lower", target: { text: "<= 0.5x bytes", minRatio: 2 } } as const
  const hostOnly = { ...row, scenario: `${scenario}, host only` }
  return [
    {
      ...row,
      ours: median(ours.bytesPerSession),
      against: { name: "matrix-widget-api", value: median(reference.bytesPerSession) },
      detail: {
        sessions,
        rounds,
        note: `host side only (widget sides cut loose); fake iframe/window objects included for both (about ${Math.round(median([ours.fakeDomPerSession, twin.fakeDomPerSession]))} B a session: fakeDomPerSession)`,
        widgethost: ours,
        "matrix-widget-api": reference,
        "matrix-widget-api (src)": twin
      }
    },
    { ...row, ours: median(ours.bytesPerSession), against: { name: REFERENCE_TWIN_NAME, value: median(twin.bytesPerSession) } },
    {
      ...hostOnly,
      ours: median(oursHostOnly.bytesPerSession),
      against: { name: "matrix-widget-api", value: median(referenceHostOnly.bytesPerSession) },
      detail: { sessions, rounds, note: "negotiated by the scripted widget side; then as above", widgethost: oursHostOnly, "matrix-widget-api": referenceHostOnly, "matrix-widget-api (src)": twinHostOnly }
    },
    { ...hostOnly, ours: median(oursHostOnly.bytesPerSession), against: { name: REFERENCE_TWIN_NAME, value: median(twinHostOnly.bytesPerSession) } }
  ]
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      child: { type: "boolean", default: false },
      engine: { type: "string", default: "widgethost" },
      sessions: { type: "string", default: "1000" },
      rounds: { type: "string", default: "3" },
      side: { type: "string", default: "widget-api" }
    }
  })
  polyfill()
  const restore = silenceConsole()
  if (values.child) {
    const result = await measureHere(values.engine as EngineName, Number(values.sessions), Number(values.rounds), values.side as WidgetSideKind)
    process.stdout.write(`${JSON.stringify(result)}\n`)
  } else {
    const rows = await heap(settingsFor(values.quick), { sessions: Number(values.sessions) })
    restore()
    console.log(renderTable(rows))
  }
}
