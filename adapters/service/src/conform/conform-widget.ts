/**
 * `conform widget`: hosts the widget under test along every path of the host side's graph
 * (widget-paths.ts), checks what the widget answers (widget-checks.ts), and reports each
 * divergence with the shortest path that shows it (path-findings.ts: dropping steps while the rest is
 * still a path a host could take and the widget still shows it).
 */
import type { Harness } from "./harness.ts"
import { type HostStep, isValidHostPath } from "./host-steps.ts"
import { collectFindings, shrinkPath } from "./path-findings.ts"
import { checkWidgetRun, type WidgetDivergence, widgetKeyOf } from "./widget-checks.ts"
import { widgetPaths } from "./widget-paths.ts"
import { type ConnectWidget, runWidgetPath } from "./widget-run.ts"

export interface WidgetPathResult {
  readonly path: ReadonlyArray<HostStep>
  readonly divergences: ReadonlyArray<WidgetDivergence>
  readonly ms: number
}

export interface WidgetFinding extends WidgetDivergence {
  readonly key: string
  readonly path: ReadonlyArray<HostStep>
  /** How many of the driven paths showed it. */
  readonly paths: number
}

export interface WidgetConformReport {
  readonly target: string
  readonly results: ReadonlyArray<WidgetPathResult>
  readonly findings: ReadonlyArray<WidgetFinding>
  readonly ms: number
}

export interface ConformWidgetOptions {
  /** What the report calls the widget (its URL, or the websocket it connects to). */
  readonly target: string
  readonly connect: ConnectWidget
  readonly harness: Harness
  readonly onPath?: (result: WidgetPathResult, index: number, total: number) => void
}

const drive = async (connect: ConnectWidget, harness: Harness, path: ReadonlyArray<HostStep>): Promise<WidgetPathResult> => {
  const started = performance.now()
  const run = await runWidgetPath(connect, harness, path)
  return { path, divergences: checkWidgetRun(harness, path, run), ms: performance.now() - started }
}

const shrink = (connect: ConnectWidget, harness: Harness, path: ReadonlyArray<HostStep>, key: string) =>
  shrinkPath(path, isValidHostPath, async (candidate) => (await drive(connect, harness, candidate)).divergences.find((d) => widgetKeyOf(d) === key))

export const conformWidget = async (options: ConformWidgetOptions): Promise<WidgetConformReport> => {
  const { connect, harness } = options
  const started = performance.now()
  const paths = widgetPaths()
  const results: WidgetPathResult[] = []
  for (const [index, path] of paths.entries()) {
    const result = await drive(connect, harness, path)
    results.push(result)
    options.onPath?.(result, index, paths.length)
  }
  const findings = await collectFindings(results, widgetKeyOf, (path, key) => shrink(connect, harness, path, key))
  return { target: options.target, results, findings, ms: performance.now() - started }
}
