/**
 * The `widgethost simulate` command: flags in, a progress bar on a terminal, the report out
 * (a table, or one JSON line with `--json`).
 */
import { performance } from "node:perf_hooks"
import { UsageError } from "./cli-flags.ts"
import { type Progress, type Report, parseSimulateArgs, simulateUsage } from "./simulate-options.ts"
import { simulate } from "./simulate.ts"
import { runScenarioCommand } from "./scenario-command.ts"
import type { ScenarioReport } from "./scenario-verdict.ts"
import { formatScaling, formatWorkerRows, runScaling, type ScalingRow } from "./scaling.ts"
import { simulateOnWorkers } from "./simulate-workers.ts"
import { pageOfRun, writeReportPage } from "./report-page.ts"


/**
 * The report as a readable table.
 *
 * @example process.stdout.write(formatReport(await simulate()))
 */
export const formatReport = (r: Report): string => {
  const ms = (n: number | null) => (n === null ? "-" : n.toFixed(2))
  const rows: Array<[string, string]> = [
    ["accounts × widgets", `${r.accounts} × ${r.widgetsPerAccount} = ${r.widgets}`],
    ["room", r.encrypted ? "encrypted" : "clear"],
    ["rate, seed", `${r.rate} msg/s, seed ${r.seed}`],
    ["setup", `${r.setupSeconds.toFixed(2)} s`],
    ["duration", `${r.durationSeconds.toFixed(2)} s`],
    ["messages sent", `${r.messagesSent} of ${r.messagesPlanned}`],
    ["state changes", `${r.stateChanges.sent} (${r.stateChanges.deliveries} deliveries)`],
    ["to-device sent / received", `${r.toDevice.sent} / ${r.toDevice.received} (${r.toDevice.deliveries} deliveries)`],
    ["TURN watchers / updates", `${r.turn.watchers} / ${r.turn.updates}`],
    ["events routed", String(r.eventsRouted)],
    ["deliveries", `${r.deliveries} of ${r.expectedDeliveries}`],
    ["deliveries per second", r.deliveriesPerSecond.toFixed(1)],
    ["latency p50 / p99 / max", `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} ms`],
    ["memory rss / heapUsed", `${r.memoryMB.rss} / ${r.memoryMB.heapUsed} MB (peak rss ${r.memoryMB.peakRss} MB)`],
    ["event loop busy", `${Math.round(r.eventLoopUtilization * 100)} %`],
    ["errors", String(r.errors.total)],
    ...Object.entries(r.errors.byKind).map(([kind, n]): [string, string] => [`  ${kind}`, String(n)])
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const samples = r.errors.samples.map((s) => `  ! ${s}\n`).join("")
  return `widgethost simulate\n${rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}\n`).join("")}${samples}`
}

/** A one-line progress bar on a terminal, redrawn at most ten times a second. */
const progressBar = (stream: NodeJS.WriteStream) => {
  let last = 0
  const line = (p: Progress) => {
    const seconds = (p.elapsedMs / 1000).toFixed(1)
    if (p.phase === "setup") return `setting up: ${p.widgetsReady}/${p.widgets} widgets ready (${seconds} s)`
    const fraction = p.planned === 0 ? 1 : p.sent / p.planned
    const width = 24
    const filled = Math.round(fraction * width)
    const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
    const tail = `${p.sent}/${p.planned} sent, ${p.deliveries}/${p.expectedDeliveries} delivered, ${seconds} s`
    return p.phase === "running" ? `${bar} ${Math.floor(fraction * 100)}% ${tail}` : `draining: ${tail}`
  }
  return {
    update: (p: Progress) => {
      const now = performance.now()
      if (now - last < 100) return
      last = now
      const text = line(p)
      const columns = stream.columns > 0 ? stream.columns : 80
      stream.write(`\r${text.slice(0, Math.max(20, columns - 1))}\x1b[K`)
    },
    done: () => void stream.write("\r\x1b[K")
  }
}

/**
 * `widgethost simulate …`: parses the flags (a {@link UsageError} on bad ones), runs, prints the
 * report on stdout (JSON with `--json`) and sets exit code 1 when errors were counted.
 *
 * @example await runSimulate(["--accounts", "2", "--widgets", "2", "--events", "20", "--json"])
 */
export const runSimulate = async (args: ReadonlyArray<string>): Promise<Report | ScenarioReport | ReadonlyArray<ScalingRow> | undefined> => {
  // A scenario file describes the whole run: only --workers and --json may go with it (parseFlags refuses the rest).
  if (args.some((a) => a === "--scenario" || a.startsWith("--scenario="))) return runScenarioCommand(args)
  const parsed = parseSimulateArgs(args)
  if (parsed === "help") {
    process.stdout.write(simulateUsage)
    return undefined
  }
  const bar = process.stderr.isTTY ? progressBar(process.stderr) : undefined
  const abort = new AbortController()
  // First Ctrl-C: stop sending, drain, report. A second one is Node's default (exit at once).
  const onSigint = () => {
    process.off("SIGINT", onSigint)
    abort.abort()
  }
  process.on("SIGINT", onSigint)
  let report: Report
  try {
    if (parsed.workers !== undefined && parsed.workers.length > 1) {
      // The scaling table: one run per worker count (no progress bar: the runs are in threads).
      const rows = await runScaling({ ...parsed.options, signal: abort.signal }, parsed.workers)
      process.stdout.write(parsed.json ? `${JSON.stringify({ scaling: rows })}\n` : formatScaling(rows))
      if (rows.some((r) => r.report.errors.total > 0)) process.exitCode = 1
      return rows
    }
    if (parsed.workers !== undefined) {
      const merged = await simulateOnWorkers({ ...parsed.options, signal: abort.signal }, parsed.workers[0]!)
      process.stdout.write(parsed.json ? `${JSON.stringify(merged)}\n` : formatReport(merged) + formatWorkerRows(merged))
      writePage(parsed.report, merged, args)
      if (merged.errors.total > 0) process.exitCode = 1
      return merged
    }
    report = await simulate({ ...parsed.options, signal: abort.signal, ...(bar === undefined ? {} : { onProgress: bar.update }) })
  } catch (error) {
    if (error instanceof UsageError) throw error
    // Setup failures (a port that cannot sign in, widgets that never get ready): one line, exit 1.
    bar?.done()
    process.stderr.write(`widgethost: simulation failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
    return undefined
  } finally {
    process.off("SIGINT", onSigint)
  }
  bar?.done()
  process.stdout.write(parsed.json ? `${JSON.stringify(report)}\n` : formatReport(report))
  writePage(parsed.report, report, args)
  if (report.errors.total > 0) process.exitCode = 1
  return report
}

/** `--report FILE`: the same report as an HTML page. */
const writePage = (file: string | undefined, report: Report, args: ReadonlyArray<string>) => {
  if (file === undefined) return
  writeReportPage(file, pageOfRun(report, args))
  process.stderr.write(`widgethost: report written to ${file}\n`)
}
