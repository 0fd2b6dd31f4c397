/**
 * Scenario 3, fromWidget `send_event` round trips per second: one ready widget sends room
 * messages with `WidgetApi.sendRoomEvent` and waits for each answer (the host asked its
 * homeserver port or driver, which answers at once), one at a time and with 100 in flight.
 *
 *   npx tsx test/bench/round-trips.ts [--quick] [--in-flight 1,100] [--engines widgethost]
 */
import { parseArgs } from "node:util"
import { interleave, median, pick, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole } from "./harness.ts"
import { type BenchWidget, type Host, MESSAGE_CAPABILITIES, openReady, referenceHost, ROOM, widgethostHost, widgetSideAloneHost } from "./hosts.ts"
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
    const took = await sendMany(widget.api, count, inFlight)
    const rate = count / took
    count = Math.max(inFlight, Math.round(rate * seconds))
    return rate
  }
}

export const roundTrips = async (settings: Settings, options: RoundTripOptions = {}): Promise<Row[]> => {
  const seconds = options.seconds ?? (settings.quick ? 0.2 : 0.5)
  const rows: Row[] = []
  for (const inFlight of options.inFlight ?? [1, 100]) {
    progress(`round trips: ${inFlight} in flight`)
    const hosts: Host[] = pick([widgethostHost(), referenceHost(), referenceHost("matrix-widget-api (src)"), widgetSideAloneHost()], options.engines)
    const contestants = []
    for (const host of hosts) {
      const [widget] = await openReady(host, [{ id: "sender", roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }])
      if (widget === undefined) throw new Error(`${host.name}: no widget opened`)
      contestants.push({ name: host.name, round: roundOf(widget, inFlight, seconds) })
    }
    const samples = await interleave(settings, contestants)
    for (const host of hosts) host.stop()
    const scenario = `3 send_event round trips, ${inFlight === 1 ? "sequential" : `${inFlight} in flight`}`
    const ours = median(samples.get("widgethost") ?? [])
    const detail = { inFlight, secondsPerRound: seconds, rounds: Object.fromEntries(samples) }
    rows.push({
      scenario,
      metric: "round trips/s",
      unit: "1/s",
      ours,
      against: { name: "matrix-widget-api", value: median(samples.get("matrix-widget-api") ?? []) },
      better: "higher",
      target: { text: ">= 2x", minRatio: 2 },
      detail
    })
    rows.push({ scenario, metric: "round trips/s", unit: "1/s", ours, against: { name: REFERENCE_TWIN_NAME, value: median(samples.get("matrix-widget-api (src)") ?? []) }, better: "higher", detail })
    // The ceiling: the widget side and the transport with no engine at all.
    rows.push({ scenario, metric: "round trips/s", unit: "1/s", ours, against: { name: "widget side alone", value: median(samples.get("widget side alone") ?? []) }, better: "higher", detail })
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, "in-flight": { type: "string" }, engines: { type: "string" } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await roundTrips(settingsFor(values.quick), {
    ...(values["in-flight"] === undefined ? {} : { inFlight: values["in-flight"].split(",").map(Number) }),
    ...(values.engines === undefined ? {} : { engines: values.engines.split(",") })
  })
  restore()
  console.log(renderTable(rows))
}
