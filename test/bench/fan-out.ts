/**
 * Scenario 1, fan-out: room events delivered per second to N ready widgets that all receive
 * `m.room.message` (N = 1, 10, 100, 1000), for both engines (the reference's two builds, each
 * with its logging off and on) and the bare transport floor; and the same with the scripted
 * widget side, whose rows give each host's own µs per delivery (the round minus the floor).
 *
 * A round publishes enough events to last about `seconds`, at most `window` events in
 * flight (published, not yet acknowledged by every widget), and stops the clock when the host
 * window has dispatched the last widget's acknowledgement. Every widget must have received every
 * event, or the round throws (a wrong count, never a time).
 *
 *   npx tsx test/bench/fan-out.ts [--quick] [--sizes 1,10,100,1000] [--engines widgethost]
 *   (names are split at a comma not followed by a space: "widgethost, host only,transport floor")
 */
import { parseArgs } from "node:util"
import { type Contestant, interleave, median, pick, type Row, type Settings, renderTable, settingsFor, polyfill, silenceConsole, progress, warmupOf } from "./harness.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"
import { deliver, floorHost, type Host, MESSAGE_CAPABILITIES, openReady, referenceHost, ROOM, roomMessage, sideName, widgethostHost, type BenchWidget } from "./hosts.ts"
import { bothLoggings, cpuClocked, hostOnlyRows, loggingRows, onCpuClock, REFERENCE_BUILDS, referenceLogger } from "./reference-rows.ts"

export interface FanOutOptions {
  readonly sizes?: ReadonlyArray<number>
  /** Seconds per round (the event count adapts to it). */
  readonly seconds?: number
  /** Events in flight. */
  readonly window?: number
  /** Only these contestants (by name); all by default. */
  readonly engines?: ReadonlyArray<string>
}

const total = (widgets: ReadonlyArray<BenchWidget>) => widgets.reduce((sum, w) => sum + w.received(), 0)

/**
 * One contestant's round: publish, wait for every acknowledgement, check every widget got every
 * event. The number of events adapts so that a round lasts about `seconds` (warm-up rounds
 * calibrate it), because the contestants' rates differ by orders of magnitude.
 */
export const deliveryRound = (
  host: Host,
  widgets: ReadonlyArray<BenchWidget>,
  options: { readonly perEvent: number; readonly window: number; readonly seconds: number; readonly make: () => Parameters<Host["publish"]>[0] }
) => {
  const { perEvent, window, seconds, make } = options
  let events = Math.max(1, Math.round(2_000 / perEvent))
  return async () => {
    const before = total(widgets)
    const took = await deliver(host, { events, perEvent, window, make })
    const got = total(widgets) - before
    if (got !== events * perEvent) throw new Error(`${host.name}: ${got} deliveries, expected ${events * perEvent}`)
    if (host.window.errors > 0 || host.window.droppedOrigin > 0) throw new Error(`${host.name}: listener errors or dropped messages on the host window`)
    const rate = (events * perEvent) / took
    events = Math.max(1, Math.min(1_000_000, Math.round((rate * seconds) / perEvent)))
    return rate
  }
}

export const fanOut = async (settings: Settings, options: FanOutOptions = {}): Promise<Row[]> => {
  const sizes = options.sizes ?? [1, 10, 100, 1000]
  const seconds = options.seconds ?? (settings.quick ? 0.2 : 0.3)
  const window = options.window ?? 16
  const rows: Row[] = []
  for (const n of sizes) {
    progress(`fan-out: ${n} widgets`)
    const plans = Array.from({ length: n }, (_, i) => ({ id: `fan-${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }))
    const logger = referenceLogger()
    // End to end (WidgetApi on the widget side), host only (the scripted widget), and the floor,
    // whose bare echo is the scripted widget's answer to send_event: it serves both.
    const hosts = pick(
      [
        widgethostHost(),
        ...REFERENCE_BUILDS.map((build) => referenceHost(build)),
        widgethostHost("scripted"),
        ...REFERENCE_BUILDS.map((build) => referenceHost(build, "scripted")),
        floorHost()
      ],
      options.engines
    )
    const contestants: Contestant[] = []
    for (const host of hosts) {
      const widgets = await openReady(host, plans)
      const wallRound = () => deliveryRound(host, widgets, { perEvent: n, window, seconds, make: () => roomMessage() })
      const hostOnly = host.name.endsWith(", host only")
      const makeRound = hostOnly ? () => onCpuClock(wallRound(), "rate") : wallRound
      const isReference = REFERENCE_BUILDS.some((build) => host.name === build || host.name === sideName(build, "scripted"))
      contestants.push(...(isReference ? bothLoggings(host.name, makeRound, logger) : [{ name: host.name, round: makeRound() }]))
      if (host.name === "transport floor") contestants.push({ name: cpuClocked(host.name), round: onCpuClock(wallRound(), "rate") })
    }
    const samples = await interleave(settings, contestants)
    for (const host of hosts) host.stop()
    const value = (name: string) => median(samples.get(name) ?? [])
    const ours = value("widgethost")
    const scenario = `1 fan-out, N=${n}`
    const detail = { widgets: n, secondsPerRound: seconds, inFlight: window, rounds: Object.fromEntries(samples), warmups: Object.fromEntries(samples.warmups), logLines: logger.lines() }
    const row = { scenario, metric: "deliveries/s", unit: "1/s", ours, better: "higher", detail } as const
    rows.push(
      { ...row, against: { name: "matrix-widget-api", value: value("matrix-widget-api") }, ...(n === 100 ? { target: { text: ">= 8x", minRatio: 8 } } : {}), warmup: warmupOf(samples, "widgethost", "matrix-widget-api") },
      { ...row, against: { name: REFERENCE_TWIN_NAME, value: value("matrix-widget-api (src)") }, warmup: warmupOf(samples, "widgethost", "matrix-widget-api (src)") },
      { ...row, against: { name: "transport floor", value: value("transport floor") }, ...(n === 100 ? { target: { text: ">= 0.6x", minRatio: 0.6 } } : {}), warmup: warmupOf(samples, "widgethost", "transport floor") },
      ...loggingRows(samples, row, value),
      ...hostOnlyRows(samples, {
        scenario: `${scenario}, host only`,
        metric: "host CPU µs per delivery",
        floor: cpuClocked("transport floor"),
        microsPerOp: (rate) => 1e6 / rate,
        ...(n === 100 ? { twinTarget: { text: ">= 20x", minRatio: 20 } } : {}),
        detail: { widgets: n }
      })
    )
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, sizes: { type: "string" }, engines: { type: "string" } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await fanOut(settingsFor(values.quick), {
    ...(values.sizes === undefined ? {} : { sizes: values.sizes.split(",").map(Number) }),
    ...(values.engines === undefined ? {} : { engines: values.engines.split(/,(?! )/) })
  })
  restore()
  console.log(renderTable(rows))
}
