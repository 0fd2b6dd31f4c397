/**
 * What the HTML report (report-html.ts) shows of each kind of run: a flag run (one thread or
 * workers) or a scenario run (one process or workers), and its parameters, and writing the page.
 */
import { writeFileSync } from "node:fs"
import { renderReportPage, type ReportPage, type Rows } from "./report-html.ts"
import type { Scenario } from "./scenario-file.ts"
import type { ScenarioReport } from "./scenario-verdict.ts"
import type { ScenarioWorkersReport } from "./scenario-workers.ts"
import type { Report } from "./simulate-options.ts"
import type { WorkersReport } from "./simulate-workers.ts"

const ms = (n: number | null) => (n === null ? "-" : `${n.toFixed(2)} ms`)

/**
 * The page of a flag run.
 *
 * @example pageOfRun(await simulate(options), ["--events", "20"])
 */
export const pageOfRun = (r: Report | WorkersReport, args: ReadonlyArray<string>): ReportPage => {
  const workers = "workers" in r ? r.workers : undefined
  const parameters: Rows = [
    ["command", `widgethost simulate ${args.join(" ")}`.trim()],
    ["accounts × widgets", `${r.accounts} × ${r.widgetsPerAccount} = ${r.widgets}`],
    ["room", r.encrypted ? "encrypted" : "clear"],
    ["rate", `${r.rate} msg/s`],
    ["messages planned", String(r.messagesPlanned)],
    ["seed", String(r.seed)],
    ["threads", workers === undefined ? "one" : `${workers.length} workers`],
    ["TURN watchers", String(r.turn.watchers)]
  ]
  const summary: Rows = [
    ["setup / duration", `${r.setupSeconds.toFixed(2)} s / ${r.durationSeconds.toFixed(2)} s`],
    ["messages sent", `${r.messagesSent} of ${r.messagesPlanned}`],
    ["deliveries", `${r.deliveries} of ${r.expectedDeliveries}`],
    ["deliveries per second", r.deliveriesPerSecond.toFixed(1)],
    ["latency p50 / p99 / max", `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)}`],
    ["state changes", `${r.stateChanges.sent} (${r.stateChanges.deliveries} deliveries)`],
    ["to-device sent / received", `${r.toDevice.sent} / ${r.toDevice.received} (${r.toDevice.deliveries} deliveries)`],
    ["TURN updates", String(r.turn.updates)],
    ["events routed", String(r.eventsRouted)],
    ["memory rss / heap", `${r.memoryMB.rss} / ${r.memoryMB.heapUsed} MB (peak rss ${r.memoryMB.peakRss} MB)`],
    ["event loop busy", `${Math.round(r.eventLoopUtilization * 100)} %`],
    ["errors", String(r.errors.total)]
  ]
  return {
    title: "widgethost simulate",
    ok: r.errors.total === 0,
    verdict: r.errors.total === 0 ? `ok: ${r.deliveries}/${r.expectedDeliveries} delivered` : `${r.errors.total} errors`,
    parameters,
    summary,
    timeline: r.timeline,
    errors: r.errors.byKind,
    errorSamples: r.errors.samples,
    outliers: { columns: ["widget", "delivered", "p50", "p99"], rows: r.outliers.map((o) => [o.widget, `${o.deliveries}/${o.expected}`, ms(o.p50), ms(o.p99)]) },
    ...(workers === undefined
      ? {}
      : { workers: { columns: ["worker", "accounts", "widgets", "sent", "deliveries", "loop busy"], rows: workers.map((w) => [`#${w.worker}`, w.accounts.join(", "), String(w.widgets), String(w.messagesSent), String(w.deliveries), `${Math.round(w.eventLoopUtilization * 100)} %`]) } })
  }
}

const stepText = (step: NonNullable<Scenario["timeline"]>[number]): string =>
  "join" in step ? `${step.at} s: ${step.join.account} joins ${step.join.room}`
  : "leave" in step ? `${step.at} s: ${step.leave.account} leaves ${step.leave.room}`
  : "reconnect" in step ? `${step.at} s: reconnect ${step.reconnect.join(", ")}`
  : `${step.at} s: outage (${step.outage.mode}, ${step.outage.seconds} s)`

/**
 * The page of a scenario run.
 *
 * @example pageOfScenario(await runScenario(scenario), scenario, "smoke.yaml")
 */
export const pageOfScenario = (r: ScenarioReport | ScenarioWorkersReport, scenario: Scenario, file: string): ReportPage => {
  const workers = "workers" in r ? r.workers : undefined
  const parameters: Rows = [
    ["scenario", file],
    ["duration", `${scenario.durationSeconds} s`],
    ["accounts", scenario.accounts.join(", ")],
    ["rooms", scenario.rooms.map((room) => `${room.name}${room.encrypted === true ? " (encrypted)" : ""}: ${room.members.join(", ")}`).join("; ")],
    ["widgets", scenario.widgets.map((w) => `${w.name} (${w.behaviour})`).join(", ")],
    ["timeline", (scenario.timeline ?? []).map(stepText).join("; ") || "none"],
    ["rate limit", `${scenario.rateLimit ?? 200} msg/s per socket`],
    ["threads", workers === undefined ? "one" : `${workers.length} workers`]
  ]
  const summary: Rows = [
    ["duration", `${r.durationSeconds} s`],
    ["deliveries", `${r.deliveries.delivered}/${r.deliveries.expected} (missing ${r.deliveries.missing}, duplicates ${r.deliveries.duplicates})`],
    ["to-device", `${r.toDevice.delivered}/${r.toDevice.expected} (missing ${r.toDevice.missing}, duplicates ${r.toDevice.duplicates})`],
    ["latency p50 / p90 / p99 / max", `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p90)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)}`],
    ["misbehaving", `junk ${r.misbehaving.junkAnsweredWithError}/${r.misbehaving.junkSent} answered with errors, floods cut ${r.misbehaving.floodsRateLimited}, came back ${r.misbehaving.recovered}`],
    ...r.outages.map((o): readonly [string, string] => [`outage (${o.mode}, ${o.seconds} s)`, `${o.refused} refused, ${o.stalled} stalled, recovered after ${ms(o.recoveredAfterMs)}`]),
    ["reconnects", `${r.reconnects} (requests redelivered ${r.redelivered})`],
    ["read_events pages / TURN updates", `${r.readPages} / ${r.turnUpdates}`],
    ["errors", String(r.errors.total)]
  ]
  const outliers = r.outliers.map((name) => [name, r.widgets[name]!] as const)
  return {
    title: `widgethost simulate --scenario ${file}`,
    ok: r.verdict.ok,
    verdict: r.verdict.ok ? "ok" : `FAILED: ${r.verdict.problems.join("; ")}`,
    parameters,
    summary,
    timeline: r.timeline,
    errors: r.errors.byKind,
    errorSamples: r.errors.samples,
    outliers: {
      columns: ["widget", "behaviour", "delivered", "missing", "duplicates", "p50", "p99"],
      rows: outliers.map(([name, w]) => [name, w.behaviour, `${w.delivered}/${w.expected}`, String(w.missing), String(w.duplicates), ms(w.latencyMs.p50), ms(w.latencyMs.p99)])
    },
    ...(workers === undefined
      ? {}
      : { workers: { columns: ["worker", "accounts", "widgets", "delivered"], rows: workers.map((w) => [`#${w.worker}`, w.accounts.join(", "), w.widgets.join(", "), `${w.delivered}/${w.expected}`]) } })
  }
}

/** Writes the page to `file` (a UsageError-free path: the caller checked the flag). */
export const writeReportPage = (file: string, page: ReportPage): void => writeFileSync(file, renderReportPage(page))
