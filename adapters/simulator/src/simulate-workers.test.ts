/**
 * `simulate --workers N`: the accounts split into contiguous blocks; the partial reports merge
 * exactly (deliveries and errors summed, expectations from every worker's sends, percentiles over
 * the union of samples); a real run on two worker threads delivers every message to every widget
 * once, and both workers did their share.
 */
import { describe, expect, it } from "vitest"
import { UsageError } from "./cli-flags.ts"
import { formatScaling } from "./scaling.ts"
import { defaultSimulateOptions, parseSimulateArgs, type SimulateOptions } from "./simulate-options.ts"
import type { ShareReport } from "./simulate-worker.ts"
import { mergeShares, simulateOnWorkers, splitAccounts } from "./simulate-workers.ts"

const small: SimulateOptions = { ...defaultSimulateOptions, accounts: 2, widgets: 2, rate: 40, until: { events: 20 } }

const share = (worker: number, accounts: ReadonlyArray<number>, over: Partial<ShareReport> = {}): ShareReport => ({
  worker,
  accounts,
  widgets: accounts.length * 2,
  sent: { messagesSent: 10, stateSent: 1, toDeviceSentTo: [0, 0] },
  deliveries: 40,
  stateDeliveries: 4,
  toDeviceDeliveries: 0,
  toDeviceReceived: 0,
  turnUpdates: 0,
  eventsRouted: 22,
  unanswered: 0,
  lastSend: 1000,
  lastDelivery: 1500,
  latencies: new Float64Array([1, 2, 3]),
  receivedAt: new Float64Array([600, 700, 1600]),
  widgetStats: [],
  errors: {},
  samples: [],
  eventLoopUtilization: 0.5,
  heapUsedBytes: 1024,
  ...over
})
const timing = { setupSeconds: 1, t0: 500, rssBytes: 1 << 20, peakRssBytes: 1 << 21, mainHeapBytes: 1024 }

describe("splitAccounts", () => {
  it.each([
    { accounts: 2, workers: 1, want: [[0, 1]] },
    { accounts: 2, workers: 2, want: [[0], [1]] },
    { accounts: 5, workers: 2, want: [[0, 1], [2, 3, 4]] },
    { accounts: 7, workers: 3, want: [[0, 1], [2, 3], [4, 5, 6]] }
  ])("$accounts accounts over $workers workers → $want", ({ accounts, workers, want }) => {
    expect(splitAccounts(accounts, workers)).toEqual(want)
  })
})

describe("mergeShares", () => {
  it("sums deliveries and expects every worker's sends at every widget", () => {
    const report = mergeShares(small, [share(0, [0]), share(1, [1])], timing)
    expect(report).toMatchObject({ messagesSent: 20, deliveries: 80, expectedDeliveries: 80, stateChanges: { sent: 2, deliveries: 8 }, eventsRouted: 44, durationSeconds: 1 })
    expect(report.errors).toEqual({ total: 0, byKind: {}, samples: [] })
    expect(report.workers.map((w) => [w.worker, w.messagesSent, w.deliveries])).toEqual([[0, 10, 40], [1, 10, 40]])
  })

  it("a worker short of deliveries is undelivered; its duplicates and errors are summed by kind", () => {
    const report = mergeShares(small, [share(0, [0], { deliveries: 37, errors: { duplicates: 2 }, samples: ["duplicates: sim-a0-w0: message 3"] }), share(1, [1], { errors: { duplicates: 1 } })], timing)
    expect(report.errors.byKind).toEqual({ duplicates: 3, undelivered: 3 })
    expect(report.errors.total).toBe(6)
    expect(report.errors.samples[0]).toBe("worker 0: duplicates: sim-a0-w0: message 3")
  })

  it("percentiles come from the union of the raw samples, not from per-worker percentiles", () => {
    const fast = new Float64Array(Array.from({ length: 98 }, () => 1))
    const report = mergeShares(small, [share(0, [0], { latencies: fast, receivedAt: new Float64Array(98).fill(600) }), share(1, [1], { latencies: new Float64Array([50, 90]), receivedAt: new Float64Array([600, 600]) })], timing)
    expect(report.latencyMs).toEqual({ p50: 1, p99: 50, max: 90 })
  })

  it("refuses shares that do not own each account exactly once", () => {
    expect(() => mergeShares(small, [share(0, [0]), share(1, [0])], timing)).toThrow(/not each account once/)
  })
})

describe("--workers", () => {
  it.each([
    { args: ["--workers", "2"], want: [2] },
    { args: ["--workers", "1,2"], want: [1, 2] },
    { args: ["--accounts", "4", "--workers=1..4"], want: [1, 2, 3, 4] }
  ])("$args → $want", ({ args, want }) => {
    expect(parseSimulateArgs(args)).toMatchObject({ workers: want })
  })

  it("without --workers the run stays in one thread", () => {
    expect(parseSimulateArgs([])).not.toHaveProperty("workers")
  })

  it.each([["0"], ["3"], ["1,x"], ["2..1"], ["1..20"], ["-1"]])("--workers %s (2 accounts) → UsageError", (value) => {
    expect(() => parseSimulateArgs(["--workers", value])).toThrow(UsageError)
  })

  it("the scaling table has one line per count, speedup against the first", () => {
    const one = mergeShares(small, [share(0, [0, 1], { widgets: 4, deliveries: 80, sent: { messagesSent: 20, stateSent: 2, toDeviceSentTo: [0, 0] }, stateDeliveries: 8 })], timing)
    const two = { ...mergeShares(small, [share(0, [0]), share(1, [1])], { ...timing, t0: 1000 }) }
    const table = formatScaling([{ workers: 1, report: one }, { workers: 2, report: two }])
    const lines = table.trimEnd().split("\n")
    expect(lines).toHaveLength(4)
    expect(lines[2]).toMatch(/^\s+1\s+80\.0\s+1\.00×.*ok \(80\/80\)$/)
    expect(lines[3]).toMatch(/^\s+2\s+160\.0\s+2\.00×.*ok \(80\/80\)$/)
  })
})

describe("simulateOnWorkers", () => {
  it("more workers than accounts is a UsageError", async () => {
    await expect(simulateOnWorkers({ ...small, accounts: 1 }, 2)).rejects.toBeInstanceOf(UsageError)
  })

  it("2 accounts on 2 worker threads: every message reaches every widget exactly once, both workers worked", async () => {
    const report = await simulateOnWorkers(small, 2)
    expect(report.errors).toEqual({ total: 0, byKind: {}, samples: [] })
    expect(report.messagesSent).toBe(20)
    expect(report.deliveries).toBe(20 * 4)
    expect(report.expectedDeliveries).toBe(report.deliveries)
    expect(report.stateChanges.deliveries).toBe(report.stateChanges.sent * 4)
    expect(report.toDevice.received).toBe(report.toDevice.sent)
    expect(report.toDevice.sent).toBeGreaterThan(0)
    expect(report.workers.map((w) => w.accounts)).toEqual([[0], [1]])
    // Each worker's widgets heard every message, including those sent from the other thread.
    for (const w of report.workers) {
      expect(w.messagesSent).toBeGreaterThan(0)
      expect(w.deliveries).toBe(report.messagesSent * w.widgets)
    }
    expect(report.workers.reduce((n, w) => n + w.messagesSent, 0)).toBe(report.messagesSent)
    expect(report.latencyMs.p50!).toBeGreaterThan(0)
    expect(report.latencyMs.p99!).toBeLessThanOrEqual(report.latencyMs.max!)
  }, 60_000)
})
