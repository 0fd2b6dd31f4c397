/**
 * Rows of several runs (`npm run bench -- --runs N`): the median and the lowest-highest of every
 * value and ratio, and how the table prints them. Rows here are written by hand: nothing is timed.
 */
import { describe, expect, it } from "vitest"
import { renderTable, type Row, type WarmUp } from "./harness.ts"
import { combineRuns } from "./spread.ts"

const SRC = "matrix-widget-api 1.19.0 src/ (esbuild)"

/** One run's row of a scenario: ours and the comparator's value, the rest fixed per case. */
const rowOf = (base: Omit<Row, "ours" | "against">, ours: number, against?: number, warmup?: Row["warmup"]): Row => ({
  ...base,
  ours,
  ...(against === undefined ? {} : { against: { name: SRC, value: against } }),
  ...(warmup === undefined ? {} : { warmup })
})

/** The cells of a rendered table's data lines, cut at the columns the dash line marks. */
const cellsOf = (table: string): string[][] => {
  const [, dashes, ...lines] = table.split("\n")
  const columns: Array<[number, number]> = []
  for (const match of dashes!.matchAll(/-+/g)) columns.push([match.index, match.index + match[0].length])
  return lines.map((line) => columns.map(([from, to], i) => line.slice(from, i === columns.length - 1 ? undefined : to).trim()))
}

const rate: Omit<Row, "ours" | "against"> = { scenario: "1 fan-out, N=100", metric: "deliveries/s", unit: "1/s", better: "higher" }
const hostOnly: Omit<Row, "ours" | "against"> = {
  scenario: "1 fan-out, N=100, host only",
  metric: "host CPU µs per delivery",
  unit: "µs",
  better: "lower",
  target: { text: ">= 20x", minRatio: 20 }
}
const latency: Omit<Row, "ours" | "against"> = { scenario: "4 negotiation, 1 widget", metric: "first contact to ready", unit: "ms", better: "lower" }
const heapOnly: Omit<Row, "ours" | "against"> = { scenario: "5 heap, ours alone", metric: "heap per session", unit: "bytes", better: "lower" }

const w = (rounds: number, stable = true): WarmUp => ({ rounds, stable })

interface Case {
  readonly name: string
  /** Each run's rows, in run order. */
  readonly given: ReadonlyArray<ReadonlyArray<Row>>
  /** The table's cells for the combined row: ours, comparator value, ratio, holds, warm-up. */
  readonly want: { readonly ours: string; readonly value: string; readonly ratio: string; readonly holds: string; readonly warmup: string }
}

const cases: ReadonlyArray<Case> = [
  {
    // Ratios 2, 3, 2: their median is 2, while the ratio of the medians would be 110 / 50 = 2.2.
    name: "a rate: medians of the values, the median of the runs' own ratios",
    given: [[rowOf(rate, 100, 50)], [rowOf(rate, 120, 40)], [rowOf(rate, 110, 55)]],
    want: { ours: "110 (100-120)", value: "50 (40-55)", ratio: "2.00x (2.00-3.00)", holds: "", warmup: "" }
  },
  {
    // 41.8 / 1.9 = 22, 39 / 2.1 = 18.57, 44 / 2 = 22: the target holds on the median.
    name: "a time, lower is better, with a target judged on the median ratio",
    given: [[rowOf(hostOnly, 1.9, 41.8)], [rowOf(hostOnly, 2.1, 39)], [rowOf(hostOnly, 2, 44)]],
    want: { ours: "2.00 (1.90-2.10)", value: "41.8 (39.0-44.0)", ratio: "22.00x (18.57-22.00)", holds: "yes", warmup: "" }
  },
  {
    name: "a target that holds in one run only does not hold",
    given: [[rowOf(hostOnly, 1, 25)], [rowOf(hostOnly, 2, 30)], [rowOf(hostOnly, 2, 36)]],
    want: { ours: "2.00 (1.00-2.00)", value: "30.0 (25.0-36.0)", ratio: "18.00x (15.00-25.00)", holds: "NO", warmup: "" }
  },
  {
    // A host-only difference below zero: 5 / -0.5 = -10, 6 / 0.4 = 15, 4 / 0.2 = 20.
    name: "a negative bound reads 'to', not a double dash",
    given: [[rowOf(hostOnly, -0.5, 5)], [rowOf(hostOnly, 0.4, 6)], [rowOf(hostOnly, 0.2, 4)]],
    want: { ours: "0.20 (-0.50 to 0.40)", value: "5.00 (4.00-6.00)", ratio: "15.00x (-10.00 to 20.00)", holds: "NO", warmup: "" }
  },
  {
    name: "a row one run did not measure says how many did",
    given: [[rowOf(latency, 0.2, 0.1)], [], [rowOf(latency, 0.3, 0.15)]],
    want: { ours: "0.25 (0.20-0.30, 2 of 3 runs)", value: "0.13 (0.10-0.15, 2 of 3 runs)", ratio: "0.50x (0.50-0.50, 2 of 3 runs)", holds: "", warmup: "" }
  },
  {
    // NaN (a contestant left out) arrives from a child as null.
    name: "a comparator with no value in any run: n/a and no ratio",
    given: [[rowOf(rate, 100, Number.NaN)], [rowOf(rate, 90, null as unknown as number)], [rowOf(rate, 95, Number.NaN)]],
    want: { ours: "95 (90-100)", value: "n/a", ratio: "", holds: "", warmup: "" }
  },
  {
    name: "a row with no comparator: ours alone",
    given: [[rowOf(heapOnly, 2768)], [rowOf(heapOnly, 2800)], [rowOf(heapOnly, 2700)]],
    want: { ours: "2,768 (2,700-2,800)", value: "", ratio: "", holds: "", warmup: "" }
  },
  {
    name: "warm-ups: the range of rounds, * when any run hit the cap",
    given: [
      [rowOf(rate, 100, 50, { ours: w(5), against: w(8, false) })],
      [rowOf(rate, 100, 50, { ours: w(7), against: w(6) })],
      [rowOf(rate, 100, 50, { ours: w(6), against: w(8, false) })]
    ],
    want: { ours: "100 (100-100)", value: "50 (50-50)", ratio: "2.00x (2.00-2.00)", holds: "", warmup: "5-7/6-8*" }
  },
  {
    name: "two runs: the median is their mean",
    given: [[rowOf(rate, 100, 50, { ours: w(0), against: w(0) })], [rowOf(rate, 200, 50, { ours: w(0), against: w(0) })]],
    want: { ours: "150 (100-200)", value: "50 (50-50)", ratio: "3.00x (2.00-4.00)", holds: "", warmup: "0/0" }
  }
]

describe("combineRuns and the table of several runs", () => {
  it.each(cases)("$name", ({ given, want }) => {
    const [cells] = cellsOf(renderTable(combineRuns(given)))
    const [, , ours, , value, ratio, , verdict, warmup] = cells!
    expect({ ours, value, ratio, holds: verdict, warmup }).toEqual(want)
  })

  it("keeps the rows in the order they first appear, matched by scenario, metric and comparator", () => {
    const lib = (ours: number, value: number): Row => ({ ...rate, ours, against: { name: "matrix-widget-api", value } })
    const src = (ours: number, value: number): Row => rowOf(rate, ours, value)
    const combined = combineRuns([
      [lib(100, 50), src(100, 25)],
      // Another order in run 2: the rows still pair by comparator.
      [src(120, 30), lib(120, 40)],
      [lib(110, 55), src(110, 55)]
    ])
    expect(combined.map((r) => [r.against?.name, r.ours, r.against?.value])).toEqual([
      ["matrix-widget-api", 110, 50],
      [SRC, 110, 30]
    ])
    expect(combined[1]!.spread.ratio).toEqual({ median: 4, min: 2, max: 4 })
  })

  it("pairs equal rows by their place among equals, and keeps no run's detail", () => {
    const withDetail = (ours: number): Row => ({ ...rowOf(rate, ours, 10), detail: { samples: [ours] } })
    const combined = combineRuns([
      [withDetail(1), withDetail(100)],
      [withDetail(3), withDetail(300)]
    ])
    expect(combined.map((r) => r.ours)).toEqual([2, 200])
    expect(combined.every((r) => r.detail === undefined && r.spread.runs === 2)).toBe(true)
  })

  it("prints the same table after a trip through JSON (NaN becomes null)", () => {
    // Every case's rows side by side: run i of the bench is every case's run i.
    const combined = combineRuns([0, 1, 2].map((i) => cases.flatMap((c) => c.given[i] ?? [])))
    const again = JSON.parse(JSON.stringify(combined)) as Row[]
    expect(renderTable(again)).toBe(renderTable(combined))
  })

  it("leaves a single run's rows as they print today: no brackets", () => {
    const [cells] = cellsOf(renderTable([rowOf(hostOnly, 1.9, 41.8, { ours: w(5), against: w(15, false) })]))
    expect(cells!.slice(2)).toEqual(["1.90", SRC, "41.8", "22.00x", ">= 20x", "yes", "5/15*"])
  })
})
