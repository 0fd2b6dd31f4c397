/**
 * `simulate --scenario FILE --workers 2` (workers.yaml): alice's widgets in one thread, bob's and
 * carol's in the other, so every delivery crosses threads. What must hold is what holds in one
 * process: every confirmed message and to-device message reaches every widget listening exactly
 * once (the late joiner and the leaver included), the outage is recovered from, and the report
 * merges both workers (their rows add up to the totals).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { loadScenario, runScenarioCommand, runScenarioOnWorkers, type ScenarioWorkersReport, UsageError } from "@widgethost/simulator"

const file = fileURLToPath(new URL("./workers.yaml", import.meta.url))

describe("simulate --scenario workers.yaml --workers 2", () => {
  it("delivers exactly once across threads and merges the workers' reports", async () => {
    const report = await runScenarioOnWorkers(loadScenario(file), 2)
    expect(report.verdict).toEqual({ ok: true, losses: 0, silentLosses: 0, problems: [] })
    expect(report.workers.map((w) => w.accounts)).toEqual([["alice"], ["bob", "carol"]])
    expect(report.workers.map((w) => [...w.widgets].sort())).toEqual([
      ["call-alice", "chat-alice", "secret-alice"],
      ["call-bob", "chat-bob", "reader-bob", "reader-carol"]
    ])
    for (const [name, w] of Object.entries(report.widgets)) expect([w.missing, w.duplicates, w.timedOut], name).toEqual([0, 0, 0])
    // The rows add up to the totals, and each thread heard what the other one sent.
    expect(report.workers.reduce((n, w) => n + w.delivered, 0)).toBe(report.deliveries.delivered)
    expect(report.workers.reduce((n, w) => n + w.expected, 0)).toBe(report.deliveries.expected)
    expect(report.deliveries).toMatchObject({ missing: 0, duplicates: 0 })
    const { "chat-alice": alice, "chat-bob": bob, "reader-bob": vaultReader, "reader-carol": carol } = report.widgets
    expect(bob!.expected).toBeGreaterThan(bob!.sent) // alice's messages too, sent in worker 0
    expect(alice!.expected).toBeGreaterThan(alice!.sent)
    expect(vaultReader!.expected).toBeGreaterThan(0) // the encrypted room, from worker 0 to worker 1
    // carol joined late and left early: she heard less than those in the lobby all along, but not nothing.
    expect(carol!.expected).toBeGreaterThan(0)
    expect(carol!.expected).toBeLessThan(bob!.expected)
    expect(report.toDevice).toMatchObject({ missing: 0, duplicates: 0 })
    expect(report.toDevice.expected).toBeGreaterThan(4)
    expect(report.outages).toHaveLength(1)
    expect(report.outages[0]!.recoveredAfterMs).not.toBeNull()
    expect(report.reconnects).toBe(2)
    expect(report.errors.byKind).not.toHaveProperty("timelineStep")
  }, 60_000)

  it("through the command: --workers 2 --report writes the merged report as a page", async () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-scenario-workers-"))
    const scenario = join(dir, "two.yaml")
    writeFileSync(
      scenario,
      "durationSeconds: 2\naccounts: [alice, bob]\nrooms: [{ name: lobby, members: [alice, bob] }]\n" +
        "widgets:\n  - { name: chat-alice, account: alice, room: lobby, behaviour: chatty, rate: 5 }\n  - { name: chat-bob, account: bob, room: lobby, behaviour: chatty, rate: 5 }\n"
    )
    const page = join(dir, "two.html")
    const report = (await runScenarioCommand(["--scenario", scenario, "--workers", "2", "--json", "--report", page])) as ScenarioWorkersReport
    expect(report.verdict.ok).toBe(true)
    expect(report.workers.map((w) => w.accounts)).toEqual([["alice"], ["bob"]])
    const html = readFileSync(page, "utf8")
    expect(html).toContain('<span id="verdict" class="verdict ok">ok</span>')
    expect(html).toContain("<td>#1</td><td>bob</td><td>chat-bob</td>")
    const bars = [...html.matchAll(/<rect class="bar" data-series="deliveries" data-x="(\d+)" data-y="(\d+)"/g)].map(([, x, y]) => [Number(x), Number(y)])
    expect(bars).toEqual(report.timeline.map((b) => [b.second, b.deliveries]))
    // Every delivery counted is a receipt in the timeline (which also has any that came before a widget was ready).
    expect(bars.reduce((n, [, y]) => n + y!, 0)).toBeGreaterThanOrEqual(report.deliveries.delivered)
    expect(report.deliveries.delivered).toBeGreaterThan(10)
  }, 60_000)

  it("more workers than accounts is a UsageError", async () => {
    await expect(runScenarioOnWorkers(loadScenario(file), 4)).rejects.toBeInstanceOf(UsageError)
  })
})
