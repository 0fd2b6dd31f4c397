/**
 * The scenario verdict from plain data (the same function judges one process and merged
 * workers): what a widget must hear is the confirmed sends of its room between its ready and its
 * stop; a second receipt is a duplicate, an absent one a loss (silent unless the engine timed it
 * out); latency is the first receipt against the send's start.
 */
import { describe, expect, it } from "vitest"
import type { ScenarioWidget } from "./scenario-file.ts"
import { scenarioReportOf, type ScenarioOutcome } from "./scenario-verdict.ts"
import type { WidgetOutcome } from "./scenario-widget.ts"

const widget = (spec: ScenarioWidget, over: Partial<WidgetOutcome> = {}): WidgetOutcome => ({
  spec,
  readyAt: 1000,
  stopAt: Number.POSITIVE_INFINITY,
  sent: 0,
  received: new Map(),
  firstAt: new Map(),
  toDeviceReceived: new Map(),
  turnUpdates: 0,
  pages: 0,
  junkSent: 0,
  junkAnswered: 0,
  rateLimited: 0,
  recoveredAfterFlood: false,
  reconnects: 0,
  ...over
})
const sent = (room: string, startedAt: number, confirmed = true) => ({ room, startedAt, confirmed, settled: true })
const outcome = (widgets: ReadonlyArray<WidgetOutcome>, over: Partial<ScenarioOutcome> = {}): ScenarioOutcome => ({
  t0: 0,
  end: 5000,
  messages: new Map([["m1", sent("lobby", 1100)], ["m2", sent("lobby", 1200)], ["early", sent("lobby", 900)], ["failed", sent("lobby", 1300, false)], ["other", sent("vault", 1400)]]),
  toDevice: new Map([["t1", { account: "bob", confirmed: true, settled: true }]]),
  widgets,
  timedOut: new Map(),
  outages: [],
  redelivered: 0,
  errors: new Map(),
  samples: [],
  ...over
})
const reader: ScenarioWidget = { name: "reader", account: "bob", room: "lobby", behaviour: "reader", pageSize: 5, everySeconds: 1 }
const call: ScenarioWidget = { name: "call", account: "bob", room: "lobby", behaviour: "call", peer: "alice", everySeconds: 1 }

describe("scenarioReportOf", () => {
  it("counts each expected message once: confirmed, in the room, after ready", () => {
    const w = widget(reader, { received: new Map([["m1", 1], ["m2", 1], ["early", 1]]), firstAt: new Map([["m1", 1110], ["m2", 1230]]) })
    const report = scenarioReportOf(outcome([w]))
    expect(report.widgets.reader).toMatchObject({ expected: 2, delivered: 2, missing: 0, duplicates: 0, latencyMs: { p50: 10, p99: 30 } })
    expect(report.verdict.ok).toBe(true)
    expect(report.durationSeconds).toBe(5)
  })

  it("a second receipt is a duplicate, an absent one a silent loss; both fail the verdict", () => {
    const w = widget(reader, { received: new Map([["m1", 2]]), firstAt: new Map([["m1", 1110]]) })
    const report = scenarioReportOf(outcome([w]))
    expect(report.deliveries).toEqual({ expected: 2, delivered: 1, missing: 1, duplicates: 1 })
    expect(report.verdict).toMatchObject({ ok: false, losses: 1, silentLosses: 1 })
    expect(report.errors.byKind).toEqual({ duplicates: 1, missing: 1 })
    expect(report.outliers).toEqual(["reader"])
  })

  it("a loss the engine timed out is not silent; a widget stopped early expects less", () => {
    const stopped = widget(reader, { stopAt: 1150, received: new Map([["m1", 1]]) })
    expect(scenarioReportOf(outcome([stopped])).widgets.reader).toMatchObject({ expected: 1, missing: 0 })
    const lossy = widget(reader, { received: new Map([["m1", 1]]) })
    expect(scenarioReportOf(outcome([lossy], { timedOut: new Map([["reader", 1]]) })).verdict).toMatchObject({ losses: 1, silentLosses: 0 })
  })

  it("to-device: a call widget of the target account must hear each confirmed one once", () => {
    const heard = widget(call, { received: new Map([["m1", 1], ["m2", 1]]), toDeviceReceived: new Map([["t1", 1]]) })
    expect(scenarioReportOf(outcome([heard])).toDevice).toEqual({ expected: 1, delivered: 1, missing: 0, duplicates: 0 })
    const twice = widget(call, { received: new Map([["m1", 1], ["m2", 1]]), toDeviceReceived: new Map([["t1", 2]]) })
    expect(scenarioReportOf(outcome([twice])).errors.byKind).toEqual({ toDeviceDuplicates: 1 })
  })
})
