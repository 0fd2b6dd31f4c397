/**
 * Scenario 4, capability negotiation: the time from first contact to ready, for one widget and
 * for 1000 at once. Each round builds a fresh host and its widgets (not timed), then starts the
 * clock, runs every widget's script (`WidgetApi.start()`, which asks the client's versions), fires
 * every iframe's `load` (the host starts negotiating) and stops the clock when every widget has
 * been told its capabilities (`WidgetApi` emits `ready` on `notify_capabilities`).
 *
 *   npx tsx test/bench/negotiation.ts [--quick]
 */
import { parseArgs } from "node:util"
import { interleave, median, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole, within } from "./harness.ts"
import { type EngineName, hostFor, MESSAGE_CAPABILITIES, ROOM } from "./hosts.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"

export interface NegotiationOptions {
  readonly sizes?: ReadonlyArray<number>
}

/** One round: fresh host, `n` widgets, milliseconds from first contact until all are ready. */
export const negotiate = async (engine: EngineName, n: number): Promise<number> => {
  const host = hostFor(engine)
  const widgets = Array.from({ length: n }, (_, i) => host.open({ id: `neg-${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }))
  const all = Promise.all(widgets.map((w) => w.ready))
  const started = performance.now()
  for (const widget of widgets) widget.start()
  for (const widget of widgets) widget.load()
  await within(all, 120_000, `${engine}: ${n} widgets ready`)
  const ms = performance.now() - started
  host.stop()
  return ms
}

export const negotiation = async (settings: Settings, options: NegotiationOptions = {}): Promise<Row[]> => {
  const rows: Row[] = []
  for (const n of options.sizes ?? [1, 1000]) {
    progress(`negotiation: ${n} widget${n === 1 ? "" : "s"}`)
    // One widget is quick and noisy: many short rounds. A thousand: the usual rounds.
    const repeat = n === 1 ? (settings.quick ? 20 : 100) : 1
    const round = (engine: EngineName) => async () => {
      const samples: number[] = []
      for (let i = 0; i < repeat; i++) samples.push(await negotiate(engine, n))
      return median(samples)
    }
    // A thousand at once takes seconds per round, and the single-widget rounds before it have
    // warmed both engines up: no warm-up round, fewer rounds.
    const plan = n === 1 ? settings : { ...settings, warmup: 0, rounds: settings.quick ? 1 : 3 }
    const samples = await interleave(plan, [
      { name: "widgethost", round: round("widgethost") },
      { name: "matrix-widget-api", round: round("matrix-widget-api") },
      { name: "matrix-widget-api (src)", round: round("matrix-widget-api (src)") },
      { name: "widget side alone", round: round("widget side alone") }
    ])
    const scenario = `4 negotiation, ${n} widget${n === 1 ? "" : "s"}`
    const ours = median(samples.get("widgethost")!)
    const detail = { widgets: n, negotiationsPerRound: repeat, warmup: plan.warmup, rounds: Object.fromEntries(samples) }
    rows.push({
      scenario,
      metric: "first contact to ready",
      unit: "ms",
      ours,
      against: { name: "matrix-widget-api", value: median(samples.get("matrix-widget-api")!) },
      better: "lower",
      target: { text: "<= 0.5x time", minRatio: 2 },
      detail
    })
    rows.push({ scenario, metric: "first contact to ready", unit: "ms", ours, against: { name: REFERENCE_TWIN_NAME, value: median(samples.get("matrix-widget-api (src)")!) }, better: "lower", detail })
    // The floor: the widget's own start-up and the capability exchange with no engine at all.
    rows.push({ scenario, metric: "first contact to ready", unit: "ms", ours, against: { name: "widget side alone", value: median(samples.get("widget side alone")!) }, better: "lower", detail })
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await negotiation(settingsFor(values.quick))
  restore()
  console.log(renderTable(rows))
}
