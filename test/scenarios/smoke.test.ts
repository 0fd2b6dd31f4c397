/**
 * The CI scenario (smoke.yaml) through the real command path: every behaviour, a late join and a
 * leave, a reconnect storm and two homeserver outages. What must hold: room messages and
 * to-device delivered exactly once to every widget, those in the reconnect storm included (no
 * duplicates, no losses: what a dropped link may have lost is delivered again on resume and
 * deduped by the widget; the engine reports nothing timed out), junk answered with spec-shaped errors,
 * the flood cut and the widget back, and each outage followed by a confirmed send.
 * Bad scenario files are one UsageError naming the path of the bad field.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { loadScenario, runScenario, UsageError } from "@widgethost/simulator"

const smoke = fileURLToPath(new URL("./smoke.yaml", import.meta.url))

describe("simulate --scenario smoke.yaml", () => {
  it("delivers exactly once, answers the misbehaving widget with errors, and recovers from the outages", async () => {
    const report = await runScenario(loadScenario(smoke))
    expect(report.verdict).toEqual({ ok: true, losses: 0, silentLosses: 0, problems: [] })
    expect(report.deliveries.duplicates).toBe(0)
    expect(report.toDevice.duplicates).toBe(0)
    expect(report.deliveries.expected).toBeGreaterThan(100)
    expect(report.toDevice.expected).toBeGreaterThan(10)
    // Widgets that dropped their link lose nothing either, and nothing waited out its timeout.
    for (const [name, w] of Object.entries(report.widgets)) expect([w.missing, w.duplicates, w.timedOut], name).toEqual([0, 0, 0])
    // carol joined late and left: she heard the lobby while she was in it.
    expect(report.widgets["reader-carol"]!.expected).toBeGreaterThan(0)
    expect(report.misbehaving).toEqual({ junkSent: 8, junkAnsweredWithError: 8, floodsRateLimited: 1, recovered: 1 })
    expect(report.outages.map((o) => o.mode)).toEqual(["refuse", "stall"])
    expect(report.outages[0]!.refused).toBeGreaterThan(0)
    expect(report.outages[1]!.stalled).toBeGreaterThan(0)
    for (const o of report.outages) expect(o.recoveredAfterMs).not.toBeNull()
    expect(report.reconnects).toBe(3)
    expect(report.readPages).toBeGreaterThan(0)
    expect(report.turnUpdates).toBeGreaterThan(0)
    expect(report.latencyMs.p50).not.toBeNull()
    expect(report.latencyMs.p50!).toBeLessThanOrEqual(report.latencyMs.p99!)
  }, 60_000)

  const dir = mkdtempSync(join(tmpdir(), "widgethost-scenario-"))
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }
  const base = `durationSeconds: 1\naccounts: [alice]\nrooms: [{ name: lobby, members: [alice] }]\n`
  const bad: ReadonlyArray<{ readonly name: string; readonly text: string; readonly message: RegExp }> = [
    { name: "unknown.yaml", text: `${base}widgets: []\ncolour: blue\n`, message: /excess property at \["colour"\]/ },
    { name: "rate.yaml", text: `${base}widgets: [{ name: w, account: alice, room: lobby, behaviour: chatty, rate: 0 }]\n`, message: /at \["widgets"\]\[0\]\["rate"\]/ },
    { name: "account.yaml", text: `${base}widgets: [{ name: w, account: zed, room: lobby, behaviour: chatty, rate: 1 }]\n`, message: /at \["widgets"\]\[0\]\["account"\]: no account zed/ },
    { name: "late.yaml", text: `${base}widgets: []\ntimeline: [{ at: 5, outage: { mode: refuse, seconds: 1 } }]\n`, message: /at \["timeline"\]\[0\]\["at"\]/ },
    { name: "broken.yaml", text: `${base}widgets: [\n`, message: /not valid YAML/ },
    { name: "broken.json", text: `{"durationSeconds": 1,`, message: /not valid JSON/ }
  ]
  for (const { name, text, message } of bad)
    it(`${name}: one UsageError naming the file and the field`, () => {
      const path = file(name, text)
      expect(() => loadScenario(path)).toThrow(UsageError)
      expect(() => loadScenario(path)).toThrow(message)
      expect(() => loadScenario(path)).toThrow(path)
    })

  it("a JSON scenario reads like the YAML one", () => {
    const path = file("ok.json", JSON.stringify({ durationSeconds: 1, accounts: ["alice"], rooms: [{ name: "lobby", members: ["alice"] }], widgets: [] }))
    expect(loadScenario(path).accounts).toEqual(["alice"])
  })
})
