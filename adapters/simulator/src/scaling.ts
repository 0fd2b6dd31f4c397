/**
 * `widgethost simulate --workers …` output: the per-worker rows under a merged report, and the
 * scaling table (`--workers 1,2` or `1..N`): the same run once per worker count, its throughput
 * and p99 side by side. Runs are sequential so that each count has the machine to itself.
 */
import { type SimulateOptions } from "./simulate-options.ts"
import { simulateOnWorkers, type WorkersReport } from "./simulate-workers.ts"

/**
 * The per-worker rows of a merged report (what each thread owned, sent and received).
 *
 * @example process.stdout.write(formatWorkerRows(report))
 */
export const formatWorkerRows = (r: WorkersReport): string =>
  `  workers\n${r.workers
    .map((w) => `    #${w.worker}  accounts ${w.accounts.join(",")}  widgets ${w.widgets}  sent ${w.messagesSent}  deliveries ${w.deliveries}  loop busy ${Math.round(w.eventLoopUtilization * 100)} %\n`)
    .join("")}`

export interface ScalingRow {
  readonly workers: number
  readonly report: WorkersReport
}

/**
 * Runs the same simulation once per worker count, one after the other.
 *
 * @example await runScaling({ accounts: 2, widgets: 2, until: { events: 200 } }, [1, 2])
 */
export const runScaling = async (options: Partial<SimulateOptions>, counts: ReadonlyArray<number>): Promise<ReadonlyArray<ScalingRow>> => {
  const rows: Array<ScalingRow> = []
  for (const workers of counts) {
    if (options.signal?.aborted === true) break
    rows.push({ workers, report: await simulateOnWorkers(options, workers) })
  }
  return rows
}

/**
 * The scaling table: one line per worker count; speedup is deliveries per second relative to the
 * first row.
 *
 * @example process.stdout.write(formatScaling(await runScaling(options, [1, 2])))
 */
export const formatScaling = (rows: ReadonlyArray<ScalingRow>): string => {
  const base = rows[0]?.report.deliveriesPerSecond ?? 0
  const ms = (n: number | null) => (n === null ? "-" : n.toFixed(2))
  const header = ["workers", "deliveries/s", "speedup", "p50 ms", "p99 ms", "busiest loop", "verdict"]
  const lines = rows.map(({ workers, report: r }) => [
    String(workers),
    r.deliveriesPerSecond.toFixed(1),
    base > 0 ? `${(r.deliveriesPerSecond / base).toFixed(2)}×` : "-",
    ms(r.latencyMs.p50),
    ms(r.latencyMs.p99),
    `${Math.round(r.eventLoopUtilization * 100)} %`,
    r.errors.total === 0 ? `ok (${r.deliveries}/${r.expectedDeliveries})` : `${r.errors.total} errors`
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const row = (cells: ReadonlyArray<string>) => `  ${cells.map((c, i) => c.padStart(widths[i]!)).join("  ")}\n`
  const first = rows[0]?.report
  const title = first === undefined ? "" : `widgethost simulate scaling: ${first.accounts} × ${first.widgetsPerAccount} widgets, ${first.messagesPlanned} messages at ${first.rate} msg/s${first.encrypted ? ", encrypted" : ""}\n`
  return `${title}${row(header)}${lines.map(row).join("")}`
}
