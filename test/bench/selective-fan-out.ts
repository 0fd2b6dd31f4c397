/**
 * Scenario 2, selective fan-out: 1000 ready widgets of which 10 may receive the event. Of the
 * other 990, half receive another event type in the same room, half receive `m.room.message` in
 * other rooms. Deliveries per second (to the 10), for both engines, and for our engine hosting
 * the 10 alone (the work it should not exceed by more than 1.5x).
 *
 *   npx tsx test/bench/selective-fan-out.ts [--quick] [--engines widgethost]
 */
import { parseArgs } from "node:util"
import { deliveryRound } from "./fan-out.ts"
import { interleave, median, pick, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole } from "./harness.ts"
import { MESSAGE_CAPABILITIES, openReady, receiveEvent, referenceHost, ROOM, roomMessage, sendEvent, widgethostHost, type WidgetPlan } from "./hosts.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"

export interface SelectiveOptions {
  readonly widgets?: number
  readonly matching?: number
  readonly seconds?: number
  readonly window?: number
  /** Only these contestants (by name); all by default. */
  readonly engines?: ReadonlyArray<string>
}

/** `matching` widgets that take the event, then the rest split between another type and other rooms. */
export const selectivePlans = (widgets: number, matching: number): WidgetPlan[] =>
  Array.from({ length: widgets }, (_, i): WidgetPlan => {
    const id = `sel-${i}`
    if (i < matching) return { id, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }
    if (i % 2 === 0) return { id, roomId: ROOM, capabilities: [sendEvent("m.room.message"), receiveEvent("org.example.poll")] }
    return { id, roomId: `!other-${i % 50}:example.org`, capabilities: MESSAGE_CAPABILITIES }
  })

export const selectiveFanOut = async (settings: Settings, options: SelectiveOptions = {}): Promise<Row[]> => {
  const widgets = options.widgets ?? 1000
  const matching = options.matching ?? 10
  const seconds = options.seconds ?? (settings.quick ? 0.2 : 0.5)
  const window = options.window ?? 16
  progress(`selective fan-out: ${matching} of ${widgets} widgets`)

  const plans = selectivePlans(widgets, matching)
  const round = { perEvent: matching, window, seconds, make: () => roomMessage() }
  const alone = `widgethost, ${matching} alone`
  const entries = pick(
    [
      { name: "widgethost", host: widgethostHost(), plans },
      { name: "matrix-widget-api", host: referenceHost(), plans },
      { name: "matrix-widget-api (src)", host: referenceHost("matrix-widget-api (src)"), plans },
      { name: alone, host: widgethostHost(), plans: plans.slice(0, matching) }
    ],
    options.engines
  )
  const contestants = []
  for (const entry of entries) contestants.push({ name: entry.name, round: deliveryRound(entry.host, await openReady(entry.host, entry.plans), round) })
  const samples = await interleave(settings, contestants)
  for (const entry of entries) entry.host.stop()

  const value = median(samples.get("widgethost") ?? [])
  const detail = { widgets, matching, secondsPerRound: seconds, inFlight: window, rounds: Object.fromEntries(samples) }
  return [
    {
      scenario: `2 selective fan-out, ${matching} of ${widgets}`,
      metric: "deliveries/s",
      unit: "1/s",
      ours: value,
      against: { name: "matrix-widget-api", value: median(samples.get("matrix-widget-api") ?? []) },
      better: "higher",
      target: { text: ">= 20x", minRatio: 20 },
      detail
    },
    { scenario: `2 selective fan-out, ${matching} of ${widgets}`, metric: "deliveries/s", unit: "1/s", ours: value, against: { name: REFERENCE_TWIN_NAME, value: median(samples.get("matrix-widget-api (src)") ?? []) }, better: "higher", detail },
    {
      scenario: `2 selective fan-out, ${matching} of ${widgets}`,
      metric: "deliveries/s",
      unit: "1/s",
      ours: value,
      against: { name: alone, value: median(samples.get(alone) ?? []) },
      better: "higher",
      target: { text: "cost <= 1.5x", minRatio: 1 / 1.5 },
      detail
    }
  ]
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, engines: { type: "string" } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await selectiveFanOut(settingsFor(values.quick), values.engines === undefined ? {} : { engines: values.engines.split(",") })
  restore()
  console.log(renderTable(rows))
}
