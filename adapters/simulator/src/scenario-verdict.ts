/**
 * The report of a scenario run and its verdict, from plain data: the ledger of what was sent and
 * what every widget received. The one-process run (scenario-run.ts) and the worker run
 * (scenario-workers.ts, the ledgers and widgets of all workers merged) judge with this one function.
 */
import { secondBuckets, type SecondBucket } from "./run-timeline.ts"
import type { ScenarioLedger, WidgetOutcome } from "./scenario-widget.ts"

export interface WidgetReport {
  readonly behaviour: string
  readonly account: string
  readonly room: string
  readonly sent: number
  readonly expected: number
  readonly delivered: number
  readonly missing: number
  readonly duplicates: number
  /**
   * Room events and to-device messages the engine sent this widget and saw unanswered (its
   * `RequestTimedOut` reports). The transport delivers again what a dropped link may have lost
   * and the engine's timeout waits while the widget is away, so this is 0 in a sound run; it
   * tells a loss the engine noticed from a silent one.
   */
  readonly timedOut: number
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null }
}

export interface ScenarioReport {
  readonly durationSeconds: number
  readonly deliveries: { readonly expected: number; readonly delivered: number; readonly missing: number; readonly duplicates: number }
  readonly toDevice: { readonly expected: number; readonly delivered: number; readonly missing: number; readonly duplicates: number }
  readonly latencyMs: { readonly p50: number | null; readonly p90: number | null; readonly p99: number | null; readonly max: number | null }
  readonly misbehaving: { readonly junkSent: number; readonly junkAnsweredWithError: number; readonly floodsRateLimited: number; readonly recovered: number }
  readonly outages: ReadonlyArray<{ readonly mode: string; readonly seconds: number; readonly refused: number; readonly stalled: number; readonly recoveredAfterMs: number | null }>
  readonly reconnects: number
  /** toWidget requests the transport wrote again on a resumed link, unanswered when the old one dropped. */
  readonly redelivered: number
  readonly readPages: number
  readonly turnUpdates: number
  readonly errors: { readonly total: number; readonly byKind: Readonly<Record<string, number>>; readonly samples: ReadonlyArray<string> }
  readonly widgets: Readonly<Record<string, WidgetReport>>
  /**
   * Whether the run holds up: every confirmed message and to-device message delivered exactly
   * once to every widget listening, reconnects included (no loss at all, noticed or silent, and
   * no duplicate), every junk request answered with an error, every flood cut and recovered
   * from, every outage followed by a confirmed send. Why not, otherwise. `losses`: deliveries
   * missing; `silentLosses`: those of them the engine did not report as timed out.
   */
  readonly verdict: { readonly ok: boolean; readonly losses: number; readonly silentLosses: number; readonly problems: ReadonlyArray<string> }
  /** Widgets with losses or duplicates, or a median latency over twice the run's. */
  readonly outliers: ReadonlyArray<string>
  /** Room message receipts per second since the start, with their latency percentiles. */
  readonly timeline: ReadonlyArray<SecondBucket>
}

type Messages = ScenarioLedger["messages"]
type ToDevice = ScenarioLedger["toDevice"]

/** An outage as the run saw it; `endAt` on the shared clock. */
export interface OutageSeen {
  readonly mode: string
  readonly seconds: number
  readonly refused: number
  readonly stalled: number
  readonly endAt: number
}

/** Everything a finished scenario run recorded. Times on the shared clock. */
export interface ScenarioOutcome {
  readonly t0: number
  readonly end: number
  readonly messages: Messages
  readonly toDevice: ToDevice
  readonly widgets: ReadonlyArray<WidgetOutcome>
  /** `RequestTimedOut` reports of the engines, by widget name. */
  readonly timedOut: ReadonlyMap<string, number>
  readonly outages: ReadonlyArray<OutageSeen>
  readonly redelivered: number
  readonly errors: ReadonlyMap<string, number>
  readonly samples: ReadonlyArray<string>
}

const round = (n: number) => Math.round(n * 100) / 100
const pct = (sorted: ReadonlyArray<number>, p: number): number | null =>
  sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!)

/** The bodies a widget should hear: confirmed, sent in its room after it was ready and before it stopped. */
export const expectedFor = (messages: Messages, w: Pick<WidgetOutcome, "spec" | "readyAt" | "stopAt">): ReadonlyArray<string> =>
  [...messages.entries()].filter(([, m]) => m.confirmed && m.room === w.spec.room && m.startedAt >= w.readyAt && m.startedAt < w.stopAt).map(([body]) => body)

/** The to-device keys a call widget should hear: confirmed ones sent to its account. */
export const toDeviceFor = (toDevice: ToDevice, w: Pick<WidgetOutcome, "spec">): ReadonlyArray<string> =>
  w.spec.behaviour !== "call" ? [] : [...toDevice.entries()].filter(([, t]) => t.confirmed && t.account === w.spec.account).map(([key]) => key)

/** Whether a widget received everything it should have (room messages and to-device). */
export const caughtUp = (messages: Messages, toDevice: ToDevice, w: WidgetOutcome): boolean =>
  expectedFor(messages, w).every((b) => w.received.has(b)) && toDeviceFor(toDevice, w).every((k) => w.toDeviceReceived.has(k))

/** Send-to-first-receipt latency (ms) of each message a widget received, and when it arrived. */
const receiptsOf = (messages: Messages, w: WidgetOutcome): Array<readonly [latency: number, at: number]> =>
  [...w.firstAt].flatMap(([body, at]) => {
    const sent = messages.get(body)
    return sent === undefined ? [] : [[at - sent.startedAt, at] as const]
  })

export const scenarioReportOf = (o: ScenarioOutcome): ScenarioReport => {
  const errors = new Map(o.errors)
  const widgets: Record<string, WidgetReport> = {}
  const all: Array<number> = []
  const arrivals: Array<number> = []
  const arrivalLatencies: Array<number> = []
  const totals = { expected: 0, delivered: 0, missing: 0, duplicates: 0 }
  const td = { expected: 0, delivered: 0, missing: 0, duplicates: 0 }
  for (const w of o.widgets) {
    const expected = expectedFor(o.messages, w)
    const delivered = expected.filter((b) => w.received.has(b)).length
    const duplicates = [...w.received.values()].reduce((n, c) => n + c - 1, 0)
    const receipts = receiptsOf(o.messages, w)
    for (const [latency, at] of receipts) {
      arrivalLatencies.push(latency)
      arrivals.push(at)
    }
    const sorted = receipts.map(([latency]) => latency).sort((a, b) => a - b)
    all.push(...sorted)
    widgets[w.spec.name] = { behaviour: w.spec.behaviour, account: w.spec.account, room: w.spec.room, sent: w.sent, expected: expected.length, delivered, missing: expected.length - delivered, duplicates, timedOut: o.timedOut.get(w.spec.name) ?? 0, latencyMs: { p50: pct(sorted, 0.5), p99: pct(sorted, 0.99) } }
    totals.expected += expected.length
    totals.delivered += delivered
    totals.duplicates += duplicates
    const keys = toDeviceFor(o.toDevice, w)
    td.expected += keys.length
    td.delivered += keys.filter((k) => w.toDeviceReceived.has(k)).length
    td.duplicates += [...w.toDeviceReceived.values()].reduce((n, c) => n + c - 1, 0)
  }
  totals.missing = totals.expected - totals.delivered
  td.missing = td.expected - td.delivered
  for (const [kind, n] of [["missing", totals.missing], ["duplicates", totals.duplicates], ["toDeviceMissing", td.missing], ["toDeviceDuplicates", td.duplicates]] as const)
    if (n > 0) errors.set(kind, (errors.get(kind) ?? 0) + n)
  all.sort((a, b) => a - b)
  const p50 = pct(all, 0.5)
  const outliers = Object.entries(widgets)
    .filter(([, w]) => w.missing > 0 || w.duplicates > 0 || (p50 !== null && w.latencyMs.p50 !== null && w.latencyMs.p50 > 2 * p50))
    .map(([name]) => name)
  const bad = o.widgets.filter((w) => w.spec.behaviour === "misbehaving")
  const confirmedAfter = (at: number) => [...o.messages.values()].filter((m) => m.confirmed && m.startedAt >= at).map((m) => m.startedAt)
  const misbehaving = {
    junkSent: bad.reduce((n, w) => n + w.junkSent, 0),
    junkAnsweredWithError: bad.reduce((n, w) => n + w.junkAnswered, 0),
    floodsRateLimited: bad.reduce((n, w) => n + w.rateLimited, 0),
    recovered: bad.filter((w) => w.recoveredAfterFlood).length
  }
  const outages = o.outages.map((outage) => {
    const after = confirmedAfter(outage.endAt)
    return { mode: outage.mode, seconds: outage.seconds, refused: outage.refused, stalled: outage.stalled, recoveredAfterMs: after.length === 0 ? null : round(Math.min(...after) - outage.endAt) }
  })
  const silentLosses = Object.values(widgets).reduce((n, w) => n + Math.max(0, w.missing - w.timedOut), 0)
  const losses = totals.missing + td.missing
  const problems = [
    ...(totals.duplicates + td.duplicates > 0 ? [`${totals.duplicates + td.duplicates} duplicate deliveries`] : []),
    ...(losses > 0 ? [`${losses} deliveries lost (${silentLosses} without a timeout report)`] : []),
    ...(misbehaving.junkAnsweredWithError < misbehaving.junkSent ? [`${misbehaving.junkSent - misbehaving.junkAnsweredWithError} junk requests not answered with an error`] : []),
    ...(misbehaving.floodsRateLimited < bad.length || misbehaving.recovered < bad.length ? ["a flood was not cut, or the widget could not come back"] : []),
    ...outages.filter((x) => x.recoveredAfterMs === null).map((x) => `no confirmed send after the ${x.mode} outage`)
  ]
  return {
    verdict: { ok: problems.length === 0, losses, silentLosses, problems },
    durationSeconds: round((o.end - o.t0) / 1000),
    deliveries: totals,
    toDevice: td,
    latencyMs: { p50, p90: pct(all, 0.9), p99: pct(all, 0.99), max: pct(all, 1) },
    misbehaving,
    outages,
    reconnects: o.widgets.reduce((n, w) => n + w.reconnects, 0),
    redelivered: o.redelivered,
    readPages: o.widgets.reduce((n, w) => n + w.pages, 0),
    turnUpdates: o.widgets.reduce((n, w) => n + w.turnUpdates, 0),
    errors: { total: [...errors.values()].reduce((a, b) => a + b, 0), byKind: Object.fromEntries([...errors.entries()].sort(([a], [b]) => a.localeCompare(b))), samples: [...o.samples] },
    widgets,
    outliers,
    timeline: secondBuckets(o.t0, arrivals, arrivalLatencies)
  }
}
