/**
 * `widgethost simulate --scenario FILE [--workers N] [--json] [--report FILE]`: loads and checks the scenario (a
 * bad file is one `UsageError`), runs it in one process or on N worker threads, prints the
 * report, and sets exit code 1 when its verdict fails.
 */
import { parseFlags, UsageError } from "./cli-flags.ts"
import { loadScenario } from "./scenario-file.ts"
import { pageOfScenario, writeReportPage } from "./report-page.ts"
import { reportFlag } from "./simulate-options.ts"
import { runScenario } from "./scenario-run.ts"
import { runScenarioOnWorkers, type ScenarioWorkersReport } from "./scenario-workers.ts"
import type { ScenarioReport } from "./scenario-verdict.ts"

/** The report as a readable table: totals, then one line per widget. */
export const formatScenarioReport = (r: ScenarioReport): string => {
  const ms = (n: number | null) => (n === null ? "-" : n.toFixed(1))
  const lines = [
    `verdict            ${r.verdict.ok ? "ok" : `FAILED: ${r.verdict.problems.join("; ")}`}`,
    `duration           ${r.durationSeconds} s`,
    `deliveries         ${r.deliveries.delivered}/${r.deliveries.expected} (missing ${r.deliveries.missing}, duplicates ${r.deliveries.duplicates}, lost ${r.verdict.losses}, silently ${r.verdict.silentLosses})`,
    `to-device          ${r.toDevice.delivered}/${r.toDevice.expected} (missing ${r.toDevice.missing}, duplicates ${r.toDevice.duplicates})`,
    `latency ms         p50 ${ms(r.latencyMs.p50)}  p90 ${ms(r.latencyMs.p90)}  p99 ${ms(r.latencyMs.p99)}  max ${ms(r.latencyMs.max)}`,
    `misbehaving        junk ${r.misbehaving.junkAnsweredWithError}/${r.misbehaving.junkSent} answered with errors, floods cut ${r.misbehaving.floodsRateLimited}, came back ${r.misbehaving.recovered}`,
    ...r.outages.map((o) => `outage ${o.mode.padEnd(11)} ${o.seconds} s: ${o.refused} refused, ${o.stalled} stalled, recovered after ${ms(o.recoveredAfterMs)} ms`),
    `reconnects         ${r.reconnects} (requests redelivered ${r.redelivered}); read_events pages ${r.readPages}; TURN updates ${r.turnUpdates}`,
    `errors             ${r.errors.total} ${JSON.stringify(r.errors.byKind)}`,
    `outliers           ${r.outliers.length === 0 ? "none" : r.outliers.join(", ")}`,
    "",
    "widget             behaviour    account  delivered  missing  timed out  dups  p50 ms  p99 ms",
    ...Object.entries(r.widgets).map(
      ([name, w]) =>
        `${name.padEnd(18)} ${w.behaviour.padEnd(12)} ${w.account.padEnd(8)} ${`${w.delivered}/${w.expected}`.padStart(9)}  ${String(w.missing).padStart(7)}  ${String(w.timedOut).padStart(9)}  ${String(w.duplicates).padStart(4)}  ${ms(w.latencyMs.p50).padStart(6)}  ${ms(w.latencyMs.p99).padStart(6)}`
    )
  ]
  return `${lines.join("\n")}\n`
}

/** The per-worker rows of a scenario run on workers. */
export const formatScenarioWorkers = (r: ScenarioWorkersReport): string =>
  `workers\n${r.workers.map((w) => `  #${w.worker}  accounts ${w.accounts.join(",")}  widgets ${w.widgets.length}  delivered ${w.delivered}/${w.expected}\n`).join("")}`

export const runScenarioCommand = async (args: ReadonlyArray<string>): Promise<ScenarioReport> => {
  const flags = parseFlags(args, { scenario: "value", workers: "value", json: "switch", report: "value" })
  const file = flags.scenario
  if (typeof file !== "string") throw new UsageError("--scenario needs a file")
  const scenario = loadScenario(file)
  const page = reportFlag(flags.report)
  const workers = flags.workers === undefined ? undefined : String(flags.workers)
  if (workers !== undefined && !/^\d+$/.test(workers)) throw new UsageError(`--workers with --scenario must be one count, not ${workers}`)
  const merged = workers === undefined ? undefined : await runScenarioOnWorkers(scenario, Number(workers))
  const report = merged ?? (await runScenario(scenario))
  const text = formatScenarioReport(report) + (merged === undefined ? "" : formatScenarioWorkers(merged))
  process.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : text)
  if (page !== undefined) {
    writeReportPage(page, pageOfScenario(report, scenario, file))
    process.stderr.write(`widgethost: report written to ${page}\n`)
  }
  if (!report.verdict.ok) process.exitCode = 1
  return report
}
