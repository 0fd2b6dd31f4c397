/**
 * Scenario 3, fromWidget `send_event` round trips per second: one ready widget sends room
 * messages with `WidgetApi.sendRoomEvent` and waits for each answer (the host asked its
 * homeserver port or driver, which answers at once), one at a time and with 100 in flight. The
 * host-only rows send the same requests from the scripted widget side, and take off the floor
 * measured with that widget and a host that answers by hand ("transport alone").
 *
 *   npx tsx test/bench/round-trips.ts [--quick] [--in-flight 1,100] [--engines widgethost]
 */
import { parseArgs } from "node:util"
import { type Contestant, interleave, median, pick, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole, warmupOf } from "./harness.ts"
import { type BenchWidget, type Host, MESSAGE_CAPABILITIES, openReady, referenceHost, ROOM, sideName, widgethostHost, widgetSideAloneHost } from "./hosts.ts"
import { bothLoggings, hostOnlyRows, loggingRows, onCpuClock, REFERENCE_BUILDS, referenceLogger } from "./reference-rows.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"
import { sendMany } from "./bench-doubles.ts"

export interface RoundTripOptions {
  readonly inFlight?: ReadonlyArray<number>
  readonly seconds?: number
  /** Only these contestants (by name); all by default. */
  readonly engines?: ReadonlyArray<string>
}

const roundOf = (widget: BenchWidget, inFlight: number, seconds: number) => {
  let count = Math.max(inFlight, 500)
  return async () => {
    const took = await sendMany(widget, count, inFlight)
    const rate = count / took
    count = Math.max(inFlight, Math.round(rate * seconds))
    return rate
  }
}

export const roundTrips = async (settings: Settings, options: RoundTripOptions = {}): Promise<Row[]> => {
  const seconds = options.seconds ?? (settings.quick ? 0.2 : 0.3)
  const rows: Row[] = []
  for (const inFlight of options.inFlight ?? [1, 100]) {
    progress(`round trips: ${inFlight} in flight`)
    const logger = referenceLogger()
    // End to end (WidgetApi sends), host only (the scripted widget sends), and each one's floor.
    const hosts: Host[] = pick(
      [
        widgethostHost(),
        ...REFERENCE_BUILDS.map((build) => referenceHost(build)),
        widgetSideAloneHost(),
        widgethostHost("scripted"),
        ...REFERENCE_BUILDS.map((build) => referenceHost(build, "scripted")),
        widgetSideAloneHost("scripted")
      ],
      options.engines
    )
    const contestants: Contestant[] = []
    for (const host of hosts) {
      const [widget] = await openReady(host, [{ id: "sender", roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }])
      if (widget === undefined) throw new Error(`${host.name}: no widget opened`)
      // Host-only rounds and their floor run on the CPU clock (see reference-rows.ts).
      const makeRound = host.name.endsWith(", host only") || host.name === "transport alone" ? () => onCpuClock(roundOf(widget, inFlight, seconds), "rate") : () => roundOf(widget, inFlight, seconds)
      const isReference = REFERENCE_BUILDS.some((build) => host.name === build || host.name === sideName(build, "scripted"))
      contestants.push(...(isReference ? bothLoggings(host.name, makeRound, logger) : [{ name: host.name, round: makeRound() }]))
    }
    const samples = await interleave(settings, contestants)
    for (const host of hosts) host.stop()
    const scenario = `3 send_event round trips, ${inFlight === 1 ? "sequential" : `${inFlight} in flight`}`
    const value = (name: string) => median(samples.get(name) ?? [])
    const ours = value("widgethost")
    const detail = { inFlight, secondsPerRound: seconds, rounds: Object.fromEntries(samples), warmups: Object.fromEntries(samples.warmups), logLines: logger.lines() }
    const row = { scenario, metric: "round trips/s", unit: "1/s", ours, better: "higher", detail } as const
    rows.push(
      { ...row, against: { name: "matrix-widget-api", value: value("matrix-widget-api") }, target: { text: ">= 2x", minRatio: 2 }, warmup: warmupOf(samples, "widgethost", "matrix-widget-api") },
      { ...row, against: { name: REFERENCE_TWIN_NAME, value: value("matrix-widget-api (src)") }, warmup: warmupOf(samples, "widgethost", "matrix-widget-api (src)") },
      // The ceiling: the widget side and the transport with no engine at all.
      { ...row, against: { name: "widget side alone", value: value("widget side alone") }, warmup: warmupOf(samples, "widgethost", "widget side alone") },
      ...loggingRows(samples, row, value),
      ...hostOnlyRows(samples, {
        scenario: `${scenario}, host only`,
        metric: "host CPU µs per round trip",
        floor: "transport alone",
        microsPerOp: (rate) => 1e6 / rate,
        twinTarget: { text: ">= 2x", minRatio: 2 },
        detail: { inFlight }
      })
    )
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "in-flight": { type: "string" }, engines: { type: "string" } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await roundTrips(settingsFor(values.quick), {
    ...(values["in-flight"] === undefined ? {} : { inFlight: values["in-flight"].split(",").map(Number) }),
    ...(values.engines === undefined ? {} : { engines: values.engines.split(/,(?! )/) })
  })
  restore()
  console.log(renderTable(rows))
}
