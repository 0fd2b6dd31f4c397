/**
 * `conform host`'s report in both forms: a JUnit suite of the divergences (one failing case
 * each, with its shortest path) and a suite of the paths driven (one case each), plus the
 * summary for people.
 */
import type { ConformReport } from "./conform-host.ts"
import { humanSummary, junitXml, pathText } from "./report.ts"

export const hostJunit = (report: ConformReport): string =>
  junitXml([
    {
      name: `conform host: divergences (${report.target})`,
      cases: report.findings.map((f) => ({ name: f.key, classname: "conform.host.divergence", ms: 0, failures: [{ message: f.detail, body: `shortest path: ${pathText(f.path)}\nseen on ${f.paths} path(s)` }] }))
    },
    {
      name: `conform host: paths (${report.target})`,
      cases: report.results.map((r) => ({
        name: pathText(r.path),
        classname: "conform.host.path",
        ms: r.ms,
        failures: r.divergences.map((d) => ({ message: `${d.rule}: ${d.subject}`, body: `at step ${d.step + 1}: ${d.detail}` }))
      }))
    }
  ])

export const hostSummary = (report: ConformReport): string =>
  humanSummary(
    "conform host",
    report.target,
    `${report.results.length} paths of the session chart (${report.results.reduce((n, r) => n + r.path.length, 0)} steps)`,
    report.findings.map((f) => ({ key: f.key, detail: f.detail, path: pathText(f.path), paths: f.paths })),
    report.ms
  )
