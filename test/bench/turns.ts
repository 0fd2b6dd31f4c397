/**
 * The order of `npm run bench -- --runs N`: every selected scenario once per run, the runs one
 * after another (A1 B1 C1, A2 B2 C2, …), so that a slow drift in the machine's load reaches every
 * scenario's runs alike instead of all of one scenario's. And the time budget each turn gets.
 */

/** One scenario's run: which run (1-based) and which scenario. */
export interface Turn {
  readonly run: number
  readonly scenario: string
}

/**
 * Every scenario of every run, in turns.
 *
 * @example
 * turns(2, ["fan-out", "heap"]) // fan-out 1, heap 1, fan-out 2, heap 2
 */
export const turns = (runs: number, scenarios: ReadonlyArray<string>): Turn[] =>
  Array.from({ length: runs }, (_, r) => scenarios.map((scenario) => ({ run: r + 1, scenario }))).flat()

/**
 * The seconds of the budget left for a turn that starts at `nowMs`. Each run has the whole budget,
 * counted from its own first turn: the scenarios that size themselves to it (scale) get the same
 * share in every run, as in a single run, so their runs measure alike. The whole of N runs is
 * then bounded by N budgets.
 *
 * @example
 * budgetLeft(540, runStartedMs, runStartedMs + 100_000) // 440
 */
export const budgetLeft = (budgetSeconds: number, runStartedMs: number, nowMs: number): number => budgetSeconds - (nowMs - runStartedMs) / 1000
