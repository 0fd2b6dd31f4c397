/**
 * `conform widget`'s report in both forms: a JUnit suite of the divergences (one failing case
 * each, with its shortest path) and a suite of the paths driven, plus the summary for people.
 */
import type { WidgetConformReport } from "./conform-widget.ts"
import { describeHostPath } from "./host-steps.ts"
import { humanSummary, junitXml } from "./report.ts"

export const widgetJunit = (report: WidgetConformReport): string =>
  junitXml([
    {
      name: `conform widget: divergences (${report.target})`,
      cases: report.findings.map((f) => ({ name: f.key, classname: "conform.widget.divergence", ms: 0, failures: [{ message: f.detail, body: `shortest path: ${describeHostPath(f.path)}\nseen on ${f.paths} path(s)` }] }))
    },
    {
      name: `conform widget: paths (${report.target})`,
      cases: report.results.map((r) => ({
        name: describeHostPath(r.path),
        classname: "conform.widget.path",
        ms: r.ms,
        failures: r.divergences.map((d) => ({ message: `${d.rule}: ${d.subject}`, body: `at step ${d.step + 1}: ${d.detail}` }))
      }))
    }
  ])

export const widgetSummary = (report: WidgetConformReport): string =>
  humanSummary(
    "conform widget",
    report.target,
    `${report.results.length} paths of the host side (${report.results.reduce((n, r) => n + r.path.length, 0)} steps)`,
    report.findings.map((f) => ({ key: f.key, detail: f.detail, path: describeHostPath(f.path), paths: f.paths })),
    report.ms
  )
