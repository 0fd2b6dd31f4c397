/**
 * The Chromium bench's pages (test/bench/browser) measure what they claim: in one short round per
 * contestant, every widget receives every event exactly as many times as it was published (the
 * page throws on any other count), and every round trip is answered with an event id. Nothing
 * here asserts a time; the bench itself is `npm run bench`.
 */
import { existsSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { browserBench, CHROMIUM } from "../bench/browser-bench.ts"
import { settingsFor } from "../bench/harness.ts"

describe.skipIf(!existsSync(CHROMIUM))("the Chromium bench's pages", () => {
  it("deliver every event to every widget and answer every round trip, for each contestant", async () => {
    const rows = await browserBench({ ...settingsFor(true), warmup: 0, warmupCap: 0, rounds: 1 }, { sizes: [3], inFlight: [4], seconds: 0.05 })
    expect(rows.map((row) => `${row.scenario} / ${row.against?.name}`)).toEqual([
      "11 Chromium fan-out, N=3 / matrix-widget-api",
      "11 Chromium fan-out, N=3 / matrix-widget-api (src)",
      "11 Chromium fan-out, N=3 / transport floor",
      "11 Chromium send_event round trips, 4 in flight / matrix-widget-api",
      "11 Chromium send_event round trips, 4 in flight / matrix-widget-api (src)",
      "11 Chromium send_event round trips, 4 in flight / widget side alone"
    ])
    for (const row of rows) {
      expect(Number.isFinite(row.ours) && row.ours > 0, `${row.scenario}: ours`).toBe(true)
      expect(Number.isFinite(row.against!.value) && row.against!.value > 0, `${row.scenario}: ${row.against!.name}`).toBe(true)
    }
  }, 120_000)
})
