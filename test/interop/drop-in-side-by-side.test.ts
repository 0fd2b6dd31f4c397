/**
 * The same scripted widget sessions, with matrix-widget-api's real `WidgetApi` on the widget
 * side, against the reference `ClientWidgetApi` and against the drop-in
 * (`@widgethost/client-widget-api`), each with its own copy of the same recording driver. Each
 * session yields named observations (what the widget got back, what toWidget requests reached it,
 * how many replies each request got, what the driver was asked); the two hosts must agree on every
 * one, except those a scenario lists under `intended`, each naming an entry of
 * INTENDED_DIFFERENCES (test/src/drop-in/intended-differences.ts) and saying what the drop-in does instead.
 *
 * Normalised before comparing, and so not counted as differences: error wording (the widget gets
 * an error either way; the engine words its own and adds a `code`), request ids, the order of
 * toWidget requests of different actions, and when the host asks the widget's versions (toWidget
 * `supported_api_versions`: the reference asks before each read_events and state push, the engine
 * once, when state delivery depends on the answer; a widget answers either from the same list).
 *
 * Scenarios: test/src/drop-in/room-scenarios.ts and client-scenarios.ts; the harness: side-by-side.ts.
 */
import { assert, describe, it } from "vitest"
import { clientScenarios } from "../src/drop-in/client-scenarios.ts"
import { describedChecks, INTENDED_DIFFERENCES } from "../src/drop-in/intended-differences.ts"
import { roomScenarios } from "../src/drop-in/room-scenarios.ts"
import { runScenario, useSideBySidePairs } from "../src/drop-in/side-by-side.ts"

const scenarios = [...roomScenarios, ...clientScenarios]

useSideBySidePairs()

describe("drop-in side by side with matrix-widget-api's ClientWidgetApi", () => {
  it.each(scenarios)("$name", async (scenario) => {
    const reference = await runScenario("reference", scenario)
    const dropIn = await runScenario("drop-in", scenario)
    const keys = [...new Set([...Object.keys(reference), ...Object.keys(dropIn)])]
    const differing = keys.filter((key) => JSON.stringify(reference[key]) !== JSON.stringify(dropIn[key]))
    const intended = scenario.intended ?? {}
    for (const key of differing) {
      assert.isDefined(intended[key], `${key} differs and is not listed as intended:\n reference: ${JSON.stringify(reference[key])}\n drop-in:   ${JSON.stringify(dropIn[key])}`)
    }
    for (const [key, { id, dropIn: want }] of Object.entries(intended)) {
      const wantText = JSON.stringify(want)
      assert.include(differing, key, `${key} is listed as an intended difference (${id}) but both hosts agree: ${JSON.stringify(dropIn[key])}`)
      assert.isString(INTENDED_DIFFERENCES[id])
      const check = typeof want === "string" ? describedChecks[want] : undefined
      if (check !== undefined) assert.isTrue(check(dropIn[key]), `${key}: the drop-in should do ${wantText}, it did ${JSON.stringify(dropIn[key])}`)
      else assert.deepEqual(dropIn[key], want, `${key} (${id})`)
    }
  })

  it("every intended difference is exercised by some scenario", () => {
    const used = new Set(scenarios.flatMap((s) => Object.values(s.intended ?? {}).map((d) => d.id)))
    assert.sameMembers([...used], Object.keys(INTENDED_DIFFERENCES))
  })
})
