/**
 * `widgethost simulate`: the plan is a pure function of options and seed; small real runs (clear
 * and encrypted room) deliver every message to every widget without errors; bad flags are one
 * `UsageError`. The real command is tested with the CLI, in @widgethost/service.
 */
import { describe, expect, it } from "vitest"
import { UsageError } from "./cli-flags.ts"
import { defaultSimulateOptions, parseSimulateArgs, type Report, type SimulateOptions } from "./simulate-options.ts"
import { runSimulate } from "./simulate-command.ts"
import { simulate } from "./simulate.ts"
import { planWorkload } from "./workload.ts"

const small: SimulateOptions = { ...defaultSimulateOptions, accounts: 2, widgets: 2, rate: 40, until: { events: 20 } }

/** What every clean run must satisfy, whatever its size. */
const expectClean = (report: Report, o: SimulateOptions) => {
  const widgets = o.accounts * o.widgets
  expect(report.errors).toEqual({ total: 0, byKind: {}, samples: [] })
  expect(report.messagesSent).toBe(report.messagesPlanned)
  expect(report.deliveries).toBe(report.messagesSent * widgets)
  expect(report.expectedDeliveries).toBe(report.deliveries)
  expect(report.stateChanges.deliveries).toBe(report.stateChanges.sent * widgets)
  expect(report.toDevice.sent).toBeGreaterThan(0)
  expect(report.toDevice.received).toBe(report.toDevice.sent)
  expect(report.toDevice.deliveries).toBe(report.toDevice.sent * o.widgets)
  // Every port hands every message and state change to its engine once.
  expect(report.eventsRouted).toBe(o.accounts * (report.messagesSent + report.stateChanges.sent))
  const { p50, p99, max } = report.latencyMs
  expect(p50).not.toBeNull()
  expect(p50!).toBeGreaterThan(0)
  expect(p50!).toBeLessThanOrEqual(p99!)
  expect(p99!).toBeLessThanOrEqual(max!)
  expect(report.deliveriesPerSecond).toBeGreaterThan(0)
  expect(report.memoryMB.rss).toBeGreaterThan(0)
  expect(report.memoryMB.heapUsed).toBeGreaterThan(0)
}

describe("planWorkload", () => {
  it("same seed, same plan; another seed, another plan", () => {
    const o = { ...small, accounts: 3, widgets: 4, until: { events: 200 } }
    expect(planWorkload(o)).toEqual(planWorkload(o))
    expect(planWorkload({ ...o, seed: 2 }).messages.map((m) => m.sender)).not.toEqual(planWorkload(o).messages.map((m) => m.sender))
  })

  it("spaces messages by the rate, marks every K-th, sends to-device only to other accounts, picks the TURN fraction", () => {
    const o = { ...small, accounts: 3, widgets: 4, rate: 50, until: { durationSeconds: 2 }, stateEvery: 7, toDeviceEvery: 5, turnWatchers: 0.25 }
    const plan = planWorkload(o)
    expect(plan.messages).toHaveLength(100)
    expect(plan.messages.map((m) => m.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(plan.messages[10]?.atMs).toBe(200)
    expect(plan.messages.filter((m) => m.state).map((m) => m.seq)).toEqual([7, 14, 21, 28, 35, 42, 49, 56, 63, 70, 77, 84, 91, 98])
    const toDevice = plan.messages.filter((m) => m.toDevice !== undefined)
    expect(toDevice.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => (i + 1) * 5))
    expect(toDevice.map((m) => m.toDevice!.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    for (const m of toDevice) expect(m.toDevice!.account).not.toBe(Math.floor(m.sender / o.widgets))
    expect(new Set(toDevice.map((m) => m.toDevice!.account)).size).toBeGreaterThan(1)
    expect(plan.turnWatchers).toHaveLength(3)
    expect(new Set(plan.messages.map((m) => m.sender)).size).toBe(12)
  })

  it("with one account there is nobody to send to-device to", () => {
    expect(planWorkload({ ...small, accounts: 1 }).toDeviceCount).toBe(0)
  })
})

describe("flags", () => {
  it("defaults, and every flag read", () => {
    expect(parseSimulateArgs([])).toEqual({ options: defaultSimulateOptions, json: false })
    expect(
      parseSimulateArgs(["--accounts", "3", "--widgets=4", "--rate", "2.5", "--events", "7", "--state-every", "0", "--to-device-every", "3", "--turn-watchers", "0.5", "--encrypted", "--seed", "42", "--json"])
    ).toEqual({
      options: { accounts: 3, widgets: 4, rate: 2.5, until: { events: 7 }, stateEvery: 0, toDeviceEvery: 3, turnWatchers: 0.5, encrypted: true, seed: 42 },
      json: true
    })
    expect(parseSimulateArgs(["--duration", "2.5"])).toMatchObject({ options: { until: { durationSeconds: 2.5 } } })
    expect(parseSimulateArgs(["--help"])).toBe("help")
    expect(parseSimulateArgs(["--report", "out.html", "--workers", "2"])).toMatchObject({ report: "out.html", workers: [2] })
  })

  const bad: ReadonlyArray<{ readonly args: ReadonlyArray<string>; readonly message: RegExp }> = [
    { args: ["--bogus"], message: /unknown option --bogus/ },
    { args: ["accounts"], message: /unknown option accounts/ },
    { args: ["--accounts"], message: /--accounts needs a value/ },
    { args: ["--accounts", "0"], message: /--accounts must be an integer from 1/ },
    { args: ["--accounts", "two"], message: /--accounts must be a non-negative integer/ },
    { args: ["--accounts", "101"], message: /--accounts must be an integer from 1 to 100/ },
    { args: ["--widgets", "-1"], message: /--widgets must be a non-negative integer/ },
    { args: ["--widgets", "1.5"], message: /--widgets must be a non-negative integer/ },
    { args: ["--accounts", "100", "--widgets", "100"], message: /at most 5000/ },
    { args: ["--accounts", "5", "--widgets", "1000", "--events", "10000"], message: /50000000 deliveries .* more than 10000000/ },
    { args: ["--rate", "0"], message: /--rate must be a number above 0/ },
    { args: ["--rate", "fast"], message: /--rate must be a non-negative number/ },
    { args: ["--duration", "0"], message: /--duration must be a number of seconds above 0/ },
    { args: ["--duration", "0.01", "--rate", "1"], message: /at least one message/ },
    { args: ["--events", "0"], message: /--events must be an integer from 1/ },
    { args: ["--duration", "5", "--events", "10"], message: /cannot be combined/ },
    { args: ["--state-every", "x"], message: /--state-every must be a non-negative integer/ },
    { args: ["--to-device-every", "-3"], message: /--to-device-every must be a non-negative integer/ },
    { args: ["--turn-watchers", "1.5"], message: /--turn-watchers must be a fraction from 0 to 1/ },
    { args: ["--seed", "4294967296"], message: /--seed must be an integer from 0 to 4294967295/ },
    { args: ["--json=yes"], message: /option --json takes no value/ },
    { args: ["--report"], message: /option --report needs a value/ },
    { args: ["--report", "/no/such/dir/out.html"], message: /--report \/no\/such\/dir\/out.html: the directory \/no\/such\/dir does not exist/ },
    { args: ["--report", "out.html", "--workers", "1,2"], message: /--report goes with one run/ }
  ]
  it.each(bad)("$args → UsageError $message", async ({ args, message }) => {
    const attempt = runSimulate(args)
    await expect(attempt).rejects.toBeInstanceOf(UsageError)
    await expect(attempt).rejects.toThrow(message)
  })

  it("simulate() itself checks programmatic options", async () => {
    await expect(simulate({ accounts: 0 })).rejects.toBeInstanceOf(UsageError)
  })
})

describe("simulate", () => {
  it("2 accounts × 2 widgets, 20 messages: every message reaches every widget, no errors", async () => {
    const progress: Array<string> = []
    const report = await simulate({ ...small, onProgress: (p) => progress.push(p.phase) })
    expectClean(report, small)
    expect(report).toMatchObject({ accounts: 2, widgetsPerAccount: 2, widgets: 4, messagesPlanned: 20, encrypted: false, seed: 1, stateChanges: { sent: 2 }, toDevice: { sent: 2 } })
    expect(report.turn.watchers).toBe(1)
    expect(report.turn.updates).toBeGreaterThanOrEqual(1)
    expect(progress).toContain("running")
  }, 60_000)

  it("an encrypted room (and encrypted to-device) delivers the same way", async () => {
    const o: SimulateOptions = { ...small, until: { events: 10 }, stateEvery: 5, toDeviceEvery: 5, encrypted: true }
    const report = await simulate(o)
    expectClean(report, o)
    expect(report.encrypted).toBe(true)
  }, 60_000)

  it("aborting stops sending early and still reports what was sent", async () => {
    const abort = new AbortController()
    const report = await simulate({
      ...small,
      rate: 20,
      until: { events: 1000 },
      onProgress: (p) => {
        if (p.phase === "running" && p.sent >= 5) abort.abort()
      },
      signal: abort.signal
    })
    expect(report.messagesSent).toBeGreaterThanOrEqual(5)
    expect(report.messagesSent).toBeLessThan(1000)
    expect(report.deliveries).toBe(report.messagesSent * 4)
    expect(report.errors.total).toBe(0)
  }, 60_000)
})
