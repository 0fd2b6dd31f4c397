/**
 * `conform host`: drives a Widget API host along every path of our session chart's graph,
 * acting as the widget, and reports each divergence from what our chart answers once, with the
 * shortest path that shows it. Shrinking (path-findings.ts): the shortest path that showed a divergence
 * (paths run shortest first) loses one step at a time, as long as the rest is still a path the
 * widget could take and the host still shows the same divergence on it.
 */
import type { Harness } from "./harness.ts"
import { checkRun, type Divergence, keyOf } from "./host-checks.ts"
import { isValidPath, hostPaths, replay } from "./host-paths.ts"
import { runPath } from "./host-run.ts"
import { collectFindings, shrinkPath } from "./path-findings.ts"
import type { Step } from "./widget-steps.ts"

export interface PathResult {
  readonly path: ReadonlyArray<Step>
  readonly divergences: ReadonlyArray<Divergence>
  readonly ms: number
}

/** One divergence, with the shortest path found that shows it. */
export interface Finding extends Divergence {
  readonly key: string
  readonly path: ReadonlyArray<Step>
  /** How many of the driven paths showed it. */
  readonly paths: number
}

export interface ConformReport {
  readonly target: string
  readonly results: ReadonlyArray<PathResult>
  readonly findings: ReadonlyArray<Finding>
  readonly ms: number
}

export interface ConformHostOptions {
  readonly uri: string
  readonly harness: Harness
  /** Called after each path (progress on stderr, for the CLI). */
  readonly onPath?: (result: PathResult, index: number, total: number) => void
}

/** Runs one path and judges it. */
export const drivePath = async (uri: string, harness: Harness, path: ReadonlyArray<Step>): Promise<PathResult> => {
  const started = performance.now()
  const expected = replay(harness, path).expected
  const run = await runPath(uri, harness, path, expected)
  return { path, divergences: checkRun(harness, path, expected, run), ms: performance.now() - started }
}

/** The shortest path, from `path` by dropping steps, on which the host still shows `key`. */
export const shrink = (uri: string, harness: Harness, path: ReadonlyArray<Step>, key: string): Promise<{ path: ReadonlyArray<Step>; divergence: Divergence } | undefined> =>
  shrinkPath(path, (candidate) => isValidPath(harness, candidate), async (candidate) => (await drivePath(uri, harness, candidate)).divergences.find((d) => keyOf(d) === key))

export const conformHost = async (options: ConformHostOptions): Promise<ConformReport> => {
  const { uri, harness } = options
  const started = performance.now()
  const paths = hostPaths(harness)
  const results: PathResult[] = []
  for (const [index, path] of paths.entries()) {
    const result = await drivePath(uri, harness, path)
    results.push(result)
    options.onPath?.(result, index, paths.length)
  }
  const findings = await collectFindings(results, keyOf, (path, key) => shrink(uri, harness, path, key))
  return { target: uri, results, findings, ms: performance.now() - started }
}
