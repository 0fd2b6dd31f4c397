/**
 * The two forms of a conformance report: JUnit XML (what CI systems show; the de facto schema
 * of Ant's JUnit task, as Jenkins, GitLab and GitHub's test reporters read it) and a summary for
 * people. Both `conform host` and `conform widget` write these. The XML is a handful of elements,
 * written here with the escaping it needs rather than through a dependency.
 */
import { describePath, type Step } from "./widget-steps.ts"

export interface TestCase {
  readonly name: string
  readonly classname: string
  readonly ms: number
  readonly failures: ReadonlyArray<{ readonly message: string; readonly body: string }>
}

export interface TestSuite {
  readonly name: string
  readonly cases: ReadonlyArray<TestCase>
}

/** One divergence as both reports show it. */
export interface ReportedFinding {
  readonly key: string
  readonly detail: string
  readonly path: string
  readonly paths: number
}

const escape = (text: string): string =>
  // Characters XML 1.0 cannot hold at all are replaced, not escaped.
  text.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu, "\uFFFD").replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export const junitXml = (suites: ReadonlyArray<TestSuite>): string => {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>']
  const total = suites.reduce((n, s) => n + s.cases.length, 0)
  const failed = suites.reduce((n, s) => n + s.cases.filter((c) => c.failures.length > 0).length, 0)
  const seconds = (ms: number) => (ms / 1000).toFixed(3)
  lines.push(`<testsuites tests="${total}" failures="${failed}" errors="0">`)
  for (const suite of suites) {
    const suiteFailed = suite.cases.filter((c) => c.failures.length > 0).length
    const time = suite.cases.reduce((n, c) => n + c.ms, 0)
    lines.push(`  <testsuite name="${escape(suite.name)}" tests="${suite.cases.length}" failures="${suiteFailed}" errors="0" skipped="0" time="${seconds(time)}">`)
    for (const c of suite.cases) {
      const open = `    <testcase name="${escape(c.name)}" classname="${escape(c.classname)}" time="${seconds(c.ms)}"`
      if (c.failures.length === 0) {
        lines.push(`${open}/>`)
        continue
      }
      lines.push(`${open}>`)
      for (const f of c.failures) lines.push(`      <failure message="${escape(f.message)}" type="divergence">${escape(f.body)}</failure>`)
      lines.push("    </testcase>")
    }
    lines.push("  </testsuite>")
  }
  lines.push("</testsuites>")
  return `${lines.join("\n")}\n`
}

export const humanSummary = (title: string, target: string, checked: string, findings: ReadonlyArray<ReportedFinding>, ms: number): string => {
  const lines = [`${title} ${target}: ${checked} in ${(ms / 1000).toFixed(1)} s`]
  if (findings.length === 0) lines.push("no divergences")
  else {
    lines.push(`${findings.length} divergence${findings.length === 1 ? "" : "s"}:`)
    for (const f of findings) {
      lines.push(`  ✗ ${f.key}  (on ${f.paths} path${f.paths === 1 ? "" : "s"})`)
      lines.push(`      ${f.detail}`)
      lines.push(`      shortest path: ${f.path}`)
    }
  }
  return `${lines.join("\n")}\n`
}

export const pathText = (path: ReadonlyArray<Step>): string => describePath(path)
