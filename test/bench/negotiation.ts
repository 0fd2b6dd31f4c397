/**
 * Scenario 4, capability negotiation: the time from first contact to ready, for one widget and
 * for 1000 at once. Each round builds a fresh host and its widgets (not timed), then starts the
 * clock, runs every widget's script (`WidgetApi.start()`, which asks the client's versions), fires
 * every iframe's `load` (the host starts negotiating) and stops the clock when every widget has
 * been told its capabilities (`WidgetApi` emits `ready` on `notify_capabilities`). The host-only
 * rows run the same with the scripted widget side, minus the same widget with a host that
 * answers by hand ("transport alone"), per widget.
 *
 *   npx tsx test/bench/negotiation.ts [--quick] [--sizes 1,1000]
 */
import { parseArgs } from "node:util"
import { type Contestant, interleave, median, polyfill, progress, renderTable, type Row, type Settings, settingsFor, silenceConsole, warmupOf, within } from "./harness.ts"
import { type EngineName, hostFor, MESSAGE_CAPABILITIES, ROOM, sideName, type WidgetSideKind } from "./hosts.ts"
import { bothLoggings, hostOnlyRows, loggingRows, onCpuClock, REFERENCE_BUILDS, referenceLogger } from "./reference-rows.ts"
import { REFERENCE_TWIN_NAME } from "./reference-twin.ts"

export interface NegotiationOptions {
  readonly sizes?: ReadonlyArray<number>
}

/** One round: fresh host, `n` widgets, milliseconds from first contact until all are ready. */
export const negotiate = async (engine: EngineName, n: number, side: WidgetSideKind = "widget-api"): Promise<number> => {
  const host = hostFor(engine, side)
  const widgets = Array.from({ length: n }, (_, i) => host.open({ id: `neg-${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }))
  const all = Promise.all(widgets.map((w) => w.ready))
  const started = performance.now()
  for (const widget of widgets) widget.start()
  for (const widget of widgets) widget.load()
  // Generous: the reference's negotiation is quadratic in the widgets on one window.
  await within(all, Math.max(120_000, n * 400), `${host.name}: ${n} widgets ready`)
  const ms = performance.now() - started
  host.stop()
  return ms
}

/** Negotiations of one widget every contestant runs before its samples can count (see below). */
const WARM_NEGOTIATIONS = 1_000

const ENGINES: ReadonlyArray<EngineName> = ["widgethost", ...REFERENCE_BUILDS, "widget side alone"]

export const negotiation = async (settings: Settings, options: NegotiationOptions = {}): Promise<Row[]> => {
  const rows: Row[] = []
  for (const n of options.sizes ?? [1, 1000]) {
    progress(`negotiation: ${n} widget${n === 1 ? "" : "s"}`)
    // One widget is quick and noisy: many short rounds. A thousand: the usual rounds.
    const repeat = n === 1 ? (settings.quick ? 20 : 100) : 1
    const wallRound = (engine: EngineName, side: WidgetSideKind) => async () => {
      const samples: number[] = []
      for (let i = 0; i < repeat; i++) samples.push(await negotiate(engine, n, side))
      return median(samples)
    }
    // Host-only rounds and their floor run on the CPU clock (see reference-rows.ts).
    const round = (engine: EngineName, side: WidgetSideKind) => () => (side === "scripted" ? onCpuClock(wallRound(engine, side), "duration") : wallRound(engine, side))
    // A thousand at once takes seconds per round (tens for the reference), and the
    // single-widget rounds before it have warmed every engine up: no warm-up, fewer rounds.
    // One widget: every contestant first runs at least WARM_NEGOTIATIONS negotiations (the same
    // count for all), because a fresh process's first several hundred are cold code for an engine
    // that V8 has not optimised yet (ours fell from ~200 to ~80 µs over the first ~1,000); then
    // the usual adaptive warm-up (see harness.ts) on top.
    const coldRounds = Math.ceil(WARM_NEGOTIATIONS / repeat)
    const plan = n === 1 ? { ...settings, warmup: Math.max(settings.warmup, coldRounds), warmupCap: settings.warmupCap + coldRounds } : { ...settings, warmup: 0, warmupCap: 0, rounds: settings.quick ? 1 : 3 }
    const logger = referenceLogger()
    // End to end (WidgetApi on the widget side) and host only (the scripted widget); the
    // floor of each is the same widget side with a host that answers by hand.
    const contestants: Contestant[] = (["widget-api", "scripted"] as const).flatMap((side) =>
      ENGINES.flatMap((engine) => {
        const name = engine === "widget side alone" ? hostFor(engine, side).name : sideName(engine, side)
        return (REFERENCE_BUILDS as ReadonlyArray<string>).includes(engine) ? bothLoggings(name, round(engine, side), logger) : [{ name, round: round(engine, side)() }]
      })
    )
    const samples = await interleave(plan, contestants)
    const scenario = `4 negotiation, ${n} widget${n === 1 ? "" : "s"}`
    const value = (name: string) => median(samples.get(name) ?? [])
    const ours = value("widgethost")
    const detail = { widgets: n, negotiationsPerRound: repeat, rounds: Object.fromEntries(samples), warmups: Object.fromEntries(samples.warmups), logLines: logger.lines() }
    const row = { scenario, metric: "first contact to ready", unit: "ms", ours, better: "lower", detail } as const
    rows.push(
      { ...row, against: { name: "matrix-widget-api", value: value("matrix-widget-api") }, target: { text: "<= 0.5x time", minRatio: 2 }, warmup: warmupOf(samples, "widgethost", "matrix-widget-api") },
      { ...row, against: { name: REFERENCE_TWIN_NAME, value: value("matrix-widget-api (src)") }, warmup: warmupOf(samples, "widgethost", "matrix-widget-api (src)") },
      // The floor: the widget's own start-up and the capability exchange with no engine at all.
      { ...row, against: { name: "widget side alone", value: value("widget side alone") }, warmup: warmupOf(samples, "widgethost", "widget side alone") },
      ...loggingRows(samples, row, value),
      ...hostOnlyRows(samples, {
        scenario: `${scenario}, host only`,
        metric: "host CPU µs per widget negotiated",
        floor: "transport alone",
        microsPerOp: (ms) => (ms * 1000) / n,
        ...(n === 1 ? { twinTarget: { text: ">= 2x", minRatio: 2 } } : {}),
        detail: { widgets: n }
      })
    )
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, sizes: { type: "string" } } })
  polyfill()
  const restore = silenceConsole()
  const rows = await negotiation(settingsFor(values.quick), values.sizes === undefined ? {} : { sizes: values.sizes.split(",").map(Number) })
  restore()
  console.log(renderTable(rows))
}
