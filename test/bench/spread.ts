/**
 * Several runs of the same scenarios, one row each: `npm run bench -- --runs 3` runs every
 * scenario three times, each time in a fresh process, and one run's medians say little about
 * the next on a shared machine. The combined row shows the median of the runs' values and, for
 * every value and ratio, the lowest and highest of the runs, so a ratio reads as `2.86x (2.71-2.95)`.
 * Pure: the same runs give the same rows, whatever the clock (README regeneration relies on it).
 */
import { median, ratioOf, type Row, type WarmUp } from "./harness.ts"

/** The median of some runs' values and their lowest and highest. */
export interface Range {
  readonly median: number
  readonly min: number
  readonly max: number
}

/** How a row varied over the runs that measured it: `runs` of the `of` combined (fewer when a run failed). */
export interface Spread {
  readonly runs: number
  readonly of: number
  readonly ours: Range | null
  readonly against?: Range | null
  /** The median, lowest and highest of the runs' own ratios (not the ratio of the medians). */
  readonly ratio?: Range
  /** Warm-up rounds over the runs; `stable` only when every run's warm-up settled. */
  readonly warmup?: { readonly ours?: WarmUpRange; readonly against?: WarmUpRange }
}

export interface WarmUpRange {
  readonly min: number
  readonly max: number
  readonly stable: boolean
}

/**
 * The median, lowest and highest of the finite numbers in `xs`; null when none is (a contestant
 * left out, or NaN, which a child's JSON message turns into null).
 */
export const rangeOf = (xs: ReadonlyArray<number | null | undefined>): Range | null => {
  const finite = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x))
  if (finite.length === 0) return null
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) }
}

const warmUpRange = (ws: ReadonlyArray<WarmUp | undefined>): WarmUpRange | undefined => {
  const known = ws.filter((w): w is WarmUp => w !== undefined)
  if (known.length === 0) return undefined
  const rounds = known.map((w) => w.rounds)
  return { min: Math.min(...rounds), max: Math.max(...rounds), stable: known.every((w) => w.stable) }
}

/**
 * What makes a row the same row in another run: scenario, metric and comparator, and which of
 * equal rows it is (a scenario could print two rows alike).
 */
const keysOf = (rows: ReadonlyArray<Row>): string[] => {
  const seen = new Map<string, number>()
  return rows.map((row) => {
    const key = JSON.stringify([row.scenario, row.metric, row.against?.name ?? null])
    const n = seen.get(key) ?? 0
    seen.set(key, n + 1)
    return `${key}#${n}`
  })
}

/**
 * One row per row of the runs, in the order rows first appear: `ours` and the comparator's value
 * are the medians over the runs, `spread` says how far the runs went either way. The runs' own
 * rows (with their details) stay in the result JSON; the combined row keeps none of `detail`.
 *
 * @example
 * const [row] = combineRuns([[run1], [run2], [run3]])
 * row.spread.ratio // { median: 2.86, min: 2.71, max: 2.95 }
 */
export const combineRuns = (runs: ReadonlyArray<ReadonlyArray<Row>>): Array<Row & { readonly spread: Spread }> => {
  const byKey = new Map<string, Row[]>()
  for (const rows of runs) {
    const keys = keysOf(rows)
    rows.forEach((row, i) => {
      const same = byKey.get(keys[i]!)
      if (same === undefined) byKey.set(keys[i]!, [row])
      else same.push(row)
    })
  }
  return [...byKey.values()].map((same) => {
    const first = same[0]!
    const ours = rangeOf(same.map((r) => r.ours))
    const against = first.against === undefined ? undefined : rangeOf(same.map((r) => r.against?.value))
    const ratio = first.against === undefined ? null : rangeOf(same.map(ratioOf))
    const warmupOurs = warmUpRange(same.map((r) => r.warmup?.ours))
    const warmupAgainst = warmUpRange(same.map((r) => r.warmup?.against))
    const hasWarmup = same.some((r) => r.warmup !== undefined)
    const spread: Spread = {
      runs: same.length,
      of: runs.length,
      ours,
      ...(against === undefined ? {} : { against }),
      ...(ratio === null ? {} : { ratio }),
      ...(hasWarmup ? { warmup: { ...(warmupOurs === undefined ? {} : { ours: warmupOurs }), ...(warmupAgainst === undefined ? {} : { against: warmupAgainst }) } } : {})
    }
    const { detail: _detail, warmup: _warmup, ...rest } = first
    return {
      ...rest,
      ours: ours?.median ?? Number.NaN,
      ...(first.against === undefined ? {} : { against: { name: first.against.name, value: against?.median ?? Number.NaN } }),
      spread
    }
  })
}
