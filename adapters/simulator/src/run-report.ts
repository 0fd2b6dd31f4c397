/**
 * The final {@link Report} of a flag run, built in one place from what the run counted: the
 * one-thread run (simulate.ts) passes its tally, the worker run (simulate-workers.ts) the sums
 * of its workers' shares. The verdict errors (undelivered, unanswered) are derived here from the
 * totals, so both runs judge alike.
 */
import { secondBuckets } from "./run-timeline.ts"
import type { SimWidget } from "./sim-widget.ts"
import type { Report, SimulateOptions, WidgetOutlier } from "./simulate-options.ts"

/** One widget's receipts, summed up where it lived (a worker posts these, not its raw samples). */
export interface WidgetStat {
  readonly id: string
  readonly deliveries: number
  readonly p50: number | null
  readonly p99: number | null
}

/** What a finished run counted, summed over its threads. */
export interface RunTotals {
  readonly options: Pick<SimulateOptions, "accounts" | "widgets" | "encrypted" | "rate" | "seed">
  readonly messagesPlanned: number
  readonly turnWatchers: number
  readonly setupSeconds: number
  /** Start of the workload and its end (the later of the last send and the last delivery), in ms on one clock. */
  readonly t0: number
  readonly end: number
  readonly messagesSent: number
  readonly stateSent: number
  readonly toDeviceSent: number
  readonly deliveries: number
  readonly stateDeliveries: number
  readonly toDeviceDeliveries: number
  readonly toDeviceReceived: number
  readonly turnUpdates: number
  readonly eventsRouted: number
  readonly unanswered: number
  /** Raw latency samples (ms), and when each arrived (the clock of `t0`), index for index. */
  readonly latencies: Float64Array
  readonly receivedAt: Float64Array
  readonly widgetStats: ReadonlyArray<WidgetStat>
  /** Errors counted during the run, by kind, and the first few samples. */
  readonly errors: ReadonlyMap<string, number>
  readonly samples: ReadonlyArray<string>
  readonly memory: { readonly rssBytes: number; readonly heapUsedBytes: number; readonly peakRssBytes: number }
  readonly eventLoopUtilization: number
}

const MAX_SAMPLES = 10
export const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits
const mb = (bytes: number) => round(bytes / (1024 * 1024), 1)

/** Nearest-rank percentile of an ascending array, rounded to 0.01 ms. */
export const percentile = (sorted: ArrayLike<number>, p: number): number | null =>
  sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!)

/**
 * The widgets' samples, gathered: all latencies and arrivals (for the run's percentiles and its
 * timeline) and each widget's own summary (for its outliers).
 */
export const samplesOf = (widgets: Iterable<SimWidget>): { readonly latencies: Float64Array<ArrayBuffer>; readonly receivedAt: Float64Array<ArrayBuffer>; readonly widgetStats: ReadonlyArray<WidgetStat> } => {
  const latencies: Array<number> = []
  const receivedAt: Array<number> = []
  const widgetStats: Array<WidgetStat> = []
  for (const w of widgets) {
    for (let i = 0; i < w.latencies.length; i++) {
      latencies.push(w.latencies[i]!)
      receivedAt.push(w.receivedAt[i]!)
    }
    const sorted = Float64Array.from(w.latencies).sort()
    widgetStats.push({ id: w.id, deliveries: w.deliveries, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) })
  }
  return { latencies: Float64Array.from(latencies), receivedAt: Float64Array.from(receivedAt), widgetStats }
}

const MAX_OUTLIERS = 20

/** Widgets short of deliveries, or with a median latency over twice the run's: the worst first. */
const outliersOf = (stats: ReadonlyArray<WidgetStat>, expected: number, runP50: number | null): ReadonlyArray<WidgetOutlier> =>
  stats
    .filter((w) => w.deliveries < expected || (runP50 !== null && w.p50 !== null && w.p50 > 2 * runP50))
    .map((w) => ({ widget: w.id, deliveries: w.deliveries, expected, p50: w.p50, p99: w.p99 }))
    .sort((a, b) => a.deliveries - b.deliveries || (b.p50 ?? 0) - (a.p50 ?? 0))
    .slice(0, MAX_OUTLIERS)

/**
 * The report of a finished run, with the verdict errors computed from its totals.
 *
 * @example reportOf(totals).errors.byKind.undelivered // missing deliveries, if any
 */
export const reportOf = (t: RunTotals): Report => {
  const errors = new Map(t.errors)
  const samples = [...t.samples]
  const add = (kind: string, count: number, detail: string) => {
    if (count <= 0) return
    errors.set(kind, (errors.get(kind) ?? 0) + count)
    if (samples.length < MAX_SAMPLES) samples.push(`${kind}: ${detail}`)
  }
  const totalWidgets = t.options.accounts * t.options.widgets
  // Expected: every message sent reaches every widget (one that could not be sent is already
  // counted as the transport close that kept it from being sent).
  const expectedDeliveries = t.messagesSent * totalWidgets
  add("undelivered", expectedDeliveries - t.deliveries, `${expectedDeliveries - t.deliveries} of ${expectedDeliveries} message deliveries missing`)
  const expectedState = t.stateSent * totalWidgets
  add("stateUndelivered", expectedState - t.stateDeliveries, `${expectedState - t.stateDeliveries} of ${expectedState} state deliveries missing`)
  add("toDeviceUndelivered", t.toDeviceSent - t.toDeviceReceived, `${t.toDeviceSent - t.toDeviceReceived} of ${t.toDeviceSent} to-device messages never arrived`)
  add("unanswered", t.unanswered, `${t.unanswered} widget requests never answered`)
  const sorted = Float64Array.from(t.latencies).sort()
  const p50 = percentile(sorted, 0.5)
  const durationSeconds = Math.max(1e-3, (t.end - t.t0) / 1000)
  return {
    accounts: t.options.accounts,
    widgetsPerAccount: t.options.widgets,
    widgets: totalWidgets,
    encrypted: t.options.encrypted,
    rate: t.options.rate,
    seed: t.options.seed,
    setupSeconds: round(t.setupSeconds),
    durationSeconds: round(durationSeconds),
    messagesPlanned: t.messagesPlanned,
    messagesSent: t.messagesSent,
    stateChanges: { sent: t.stateSent, deliveries: t.stateDeliveries },
    toDevice: { sent: t.toDeviceSent, received: t.toDeviceReceived, deliveries: t.toDeviceDeliveries },
    turn: { watchers: t.turnWatchers, updates: t.turnUpdates },
    eventsRouted: t.eventsRouted,
    deliveries: t.deliveries,
    expectedDeliveries,
    deliveriesPerSecond: round(t.deliveries / durationSeconds, 1),
    latencyMs: { p50, p99: percentile(sorted, 0.99), max: percentile(sorted, 1) },
    memoryMB: { rss: mb(t.memory.rssBytes), heapUsed: mb(t.memory.heapUsedBytes), peakRss: mb(t.memory.peakRssBytes) },
    eventLoopUtilization: round(t.eventLoopUtilization),
    errors: { total: [...errors.values()].reduce((a, b) => a + b, 0), byKind: Object.fromEntries([...errors].sort(([a], [b]) => a.localeCompare(b))), samples },
    timeline: secondBuckets(t.t0, t.receivedAt, t.latencies),
    outliers: outliersOf(t.widgetStats, t.messagesSent, p50)
  }
}
