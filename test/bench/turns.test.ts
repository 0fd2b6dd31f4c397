/**
 * The order and the budget of `npm run bench -- --runs N` (turns.ts): scenarios in turns, each
 * run with the whole budget from its own start. Plain arithmetic: nothing is timed.
 */
import { describe, expect, it } from "vitest"
import { budgetLeft, turns } from "./turns.ts"

describe("turns", () => {
  it.each([
    { name: "one run: the scenarios in their order", runs: 1, given: ["fan-out", "heap"], want: ["fan-out 1", "heap 1"] },
    { name: "three runs: every scenario's run 1, then run 2, then run 3", runs: 3, given: ["a", "b"], want: ["a 1", "b 1", "a 2", "b 2", "a 3", "b 3"] },
    { name: "no scenario: no turn", runs: 2, given: [], want: [] }
  ])("$name", ({ runs, given, want }) => {
    expect(turns(runs, given).map((t) => `${t.scenario} ${t.run}`)).toEqual(want)
  })
})

describe("budgetLeft", () => {
  it.each([
    { name: "the first turn of a run has the whole budget", runStarted: 0, now: 0, want: 540 },
    { name: "later turns have what the run's earlier turns left", runStarted: 0, now: 300_000, want: 240 },
    // Run 2 started 600 s into the bench: its scale turn, 300 s later, gets what run 1's did.
    { name: "each run counts from its own start, not the bench's", runStarted: 600_000, now: 900_000, want: 240 },
    { name: "an overrun run goes below zero (the child is handed 0)", runStarted: 0, now: 600_000, want: -60 }
  ])("$name", ({ runStarted, now, want }) => {
    expect(budgetLeft(540, runStarted, now)).toBe(want)
  })
})
