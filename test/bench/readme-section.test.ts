/**
 * README's benchmark section: the markers are there once, in order, and the generator gives the
 * same text for the same result JSON (what the section says comes from the JSON alone). Nothing
 * here is timed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import type { Row } from "./harness.ts"
import { BEGIN, type BenchResult, END, renderReadmeSection, replaceSection, writeReadme } from "./readme-section.ts"
import { combineRuns } from "./spread.ts"

const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8")

const result: BenchResult = {
  machine: {
    date: "2026-12-03T12:00:00.000Z",
    node: "v20.20.2",
    cpus: 2,
    cpuModel: "AMD EPYC 7B13",
    memoryBytes: 24 * 1024 ** 3,
    loadAverage: [3.5, 2.25, 1],
    loadAverageAfter: [4, 3, 2],
    openFilesLimit: 20000,
    commit: "0123456789abcdef0123456789abcdef01234567",
    uncommitted: []
  },
  settings: { quick: false, warmup: 2, warmupCap: 15, stableWindow: 3, stableWithin: 0.02, rounds: 5 },
  command: "npm run bench -- --write-readme",
  durationSeconds: 301.4,
  scenarios: ["fan-out"],
  references: [
    { name: "matrix-widget-api", build: "matrix-widget-api 1.19.0 lib/: the babel build" },
    { name: "matrix-widget-api 1.19.0 src/ (esbuild)", build: "matrix-widget-api 1.19.0 src/, built by esbuild" }
  ],
  rows: [
    {
      scenario: "1 fan-out, N=100, host only",
      metric: "host CPU µs per delivery",
      unit: "µs",
      ours: 1.9,
      against: { name: "matrix-widget-api 1.19.0 src/ (esbuild)", value: 41.8 },
      better: "lower",
      target: { text: ">= 20x", minRatio: 20 },
      warmup: { ours: { rounds: 5, stable: true }, against: { rounds: 15, stable: false } }
    }
  ]
}

describe("README benchmark section", () => {
  it("has one begin marker followed by one end marker", () => {
    const begin = readme.indexOf(BEGIN)
    const end = readme.indexOf(END)
    expect(begin).toBeGreaterThanOrEqual(0)
    expect(end).toBeGreaterThan(begin)
    expect(readme.indexOf(BEGIN, begin + 1)).toBe(-1)
    expect(readme.indexOf(END, end + 1)).toBe(-1)
  })

  it("is the same text for the same result JSON", () => {
    const again = JSON.parse(JSON.stringify(result)) as BenchResult
    expect(renderReadmeSection(again)).toBe(renderReadmeSection(result))
    const once = replaceSection(readme, renderReadmeSection(result))
    expect(replaceSection(once, renderReadmeSection(again))).toBe(once)
  })

  it("describes the machine, names both reference builds and carries the table", () => {
    const section = renderReadmeSection(result)
    expect(section).toContain("2 × AMD EPYC 7B13, 24 GiB, Node v20.20.2")
    expect(section).toContain("load average (1 / 5 / 15 min) 3.50 / 2.25 / 1.00 at the start and 4.00 / 3.00 / 2.00 at the end")
    expect(section).toContain("`matrix-widget-api`: matrix-widget-api 1.19.0 lib/")
    expect(section).toContain("`matrix-widget-api 1.19.0 src/ (esbuild)`: matrix-widget-api 1.19.0 src/")
    // The row: 41.8 / 1.9 = 22x, target met, warm-up 5 (settled) / 15 (capped).
    expect(section).toMatch(/1 fan-out, N=100, host only .* 1\.90 .* 41\.8 +22\.00x +>= 20x +yes +5\/15\*/)
  })

  it("changes only what is between the markers, and refuses a README without them", () => {
    const replaced = replaceSection(readme, "new section")
    expect(replaced.slice(0, replaced.indexOf(BEGIN))).toBe(readme.slice(0, readme.indexOf(BEGIN)))
    expect(replaced.slice(replaced.indexOf(END))).toBe(readme.slice(readme.indexOf(END)))
    expect(replaced).toContain(`${BEGIN}\nnew section\n${END}`)
    expect(() => replaceSection("# no markers\n", "x")).toThrow(/expected one/)
  })
})

describe("README benchmark section of several runs", () => {
  const run = (ours: number, value: number): Row => ({ ...result.rows[0]!, ours, against: { name: result.rows[0]!.against!.name, value } })
  const runs = [[run(1.9, 41.8)], [run(2.1, 39)], [run(2, 44)]]
  // What run.ts writes with --runs 3: the combined rows (through JSON, as read back), and each run's own.
  const several: BenchResult = JSON.parse(
    JSON.stringify({ ...result, command: "npm run bench -- --runs 3 --write-readme", rows: combineRuns(runs), runs: runs.map((rows, i) => ({ run: i + 1, rows })) })
  ) as BenchResult
  let dir: string | undefined
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it("says how many runs and shows every value and ratio with the runs' range", () => {
    const section = renderReadmeSection(several)
    expect(section).toContain("Runs: 3, each scenario once a run in a fresh process, in turns")
    // 41.8 / 1.9 = 22, 39 / 2.1 = 18.57, 44 / 2 = 22.
    expect(section).toMatch(/1 fan-out, N=100, host only .* 2\.00 \(1\.90-2\.10\) .* 41\.8 \(39\.0-44\.0\) +22\.00x \(18\.57-22\.00\) +>= 20x +yes +5\/15\*/)
  })

  it("says nothing of runs for a single run", () => {
    expect(renderReadmeSection(result)).not.toContain("Runs:")
  })

  it("--from gives the same README, byte for byte, however often it runs", () => {
    dir = mkdtempSync(join(tmpdir(), "bench-readme-"))
    const json = join(dir, "result.json")
    const target = join(dir, "README.md")
    writeFileSync(json, `${JSON.stringify(several, null, 2)}\n`)
    writeFileSync(target, readme)
    writeReadme(json, target)
    const once = readFileSync(target, "utf8")
    writeReadme(json, target)
    expect(readFileSync(target, "utf8")).toBe(once)
    expect(once).toBe(replaceSection(readme, renderReadmeSection(several)))
    expect(once).toContain("22.00x (18.57-22.00)")
  })
})
