/**
 * `simulate --report out.html`: the run's report as one self-contained HTML page (inline CSS and
 * SVG, no script, nothing fetched: its Content-Security-Policy forbids any load). It shows the
 * verdict, the run's parameters and totals, throughput and latency percentiles over time,
 * errors by kind, per-widget outliers and, on workers, a row per worker.
 */
import type { SecondBucket } from "./run-timeline.ts"
import { barChart, escapeHtml, kindChart, lineChart } from "./svg-charts.ts"

export type Rows = ReadonlyArray<readonly [string, string]>

export interface Table {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
}

/** What the page shows, whichever kind of run it is (report-page.ts builds it). */
export interface ReportPage {
  readonly title: string
  readonly ok: boolean
  readonly verdict: string
  readonly parameters: Rows
  readonly summary: Rows
  readonly timeline: ReadonlyArray<SecondBucket>
  readonly errors: Readonly<Record<string, number>>
  readonly errorSamples: ReadonlyArray<string>
  readonly outliers: Table
  readonly workers?: Table
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f4f6fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 10px}
section{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:16px;margin:16px 0;overflow-wrap:anywhere}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600}
.ok{background:#dff3e4;color:#1b6b34}.failed{background:#fbe3e1;color:#9b2219}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
.grid2 section{margin:0}
table{width:100%;border-collapse:collapse;table-layout:fixed}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}
th{font-weight:600;color:#4a5468}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.kv th{width:45%}
svg.chart{display:block;width:100%;height:auto;max-width:100%}
svg .grid{stroke:#eef1f5}svg .axis-line{stroke:#8a94a6}
svg text{font-size:11px;fill:#4a5468}svg .axis{font-size:12px;fill:#1d2330}
.muted{color:#6b7487}
ul.samples{margin:8px 0 0;padding-left:18px;font-family:ui-monospace,monospace;font-size:12px}
`

const kv = (rows: Rows) => `<table class="kv">${rows.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("")}</table>`

const isNumeric = (cell: string) => /^-?[\d.,/ ]+( ms| %)?$/.test(cell) || cell === "-"

/** A column of numbers is right-aligned, its header too; the first column names the row. */
const table = (t: Table, id: string) => {
  const numeric = t.columns.map((_, i) => i > 0 && t.rows.length > 0 && t.rows.every((r) => isNumeric(r[i] ?? "")))
  const cls = (i: number) => (numeric[i] === true ? ' class="num"' : "")
  return `<table id="${id}"><thead><tr>${t.columns.map((c, i) => `<th scope="col"${cls(i)}>${escapeHtml(c)}</th>`).join("")}</tr></thead><tbody>${t.rows
    .map((r) => `<tr>${r.map((c, i) => `<td${cls(i)}>${escapeHtml(c)}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`
}

/** The page as one HTML document. */
export const renderReportPage = (page: ReportPage): string => {
  const throughput = page.timeline.length === 0 ? `<p class="muted">No receipts.</p>` : barChart({ id: "throughput-chart", title: "Deliveries per second", xLabel: "seconds since the start", yLabel: "deliveries/s", bars: page.timeline.map((b) => ({ x: b.second, y: b.deliveries })) })
  const colors = { p50: "#3b7dd8", p90: "#e0a020", p99: "#d8453b", max: "#7a5cc8" } as const
  const latency =
    page.timeline.length === 0
      ? `<p class="muted">No receipts.</p>`
      : lineChart({
          id: "latency-chart",
          title: "Latency percentiles per second",
          xLabel: "seconds since the start",
          yLabel: "ms",
          series: (["p50", "p90", "p99", "max"] as const).map((name) => ({ name, color: colors[name], points: page.timeline.map((b) => ({ x: b.second, y: b.latencyMs[name] })) }))
        })
  const kinds = Object.entries(page.errors)
  const errors =
    kinds.length === 0
      ? `<p id="no-errors">No errors.</p>`
      : kindChart({ id: "errors-chart", title: "Errors by kind", bars: kinds.map(([label, value]) => ({ label, value })) }) +
        (page.errorSamples.length === 0 ? "" : `<ul class="samples">${page.errorSamples.map((s) => `<li>${escapeHtml(s)}</li>`).join("")}</ul>`)
  const outliers = page.outliers.rows.length === 0 ? `<p id="no-outliers">No outliers.</p>` : table(page.outliers, "outliers")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(page.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(page.title)}</h1>
<p><span id="verdict" class="verdict ${page.ok ? "ok" : "failed"}">${escapeHtml(page.verdict)}</span></p>
<div class="grid2">
<section id="parameters"><h2>Parameters</h2>${kv(page.parameters)}</section>
<section id="summary"><h2>Summary</h2>${kv(page.summary)}</section>
</div>
<section id="throughput"><h2>Throughput over time</h2>${throughput}</section>
<section id="latency"><h2>Latency over time</h2>${latency}</section>
<section id="errors"><h2>Errors by kind</h2>${errors}</section>
<section id="widgets"><h2>Per-widget outliers</h2>${outliers}</section>
${page.workers === undefined ? "" : `<section id="workers"><h2>Workers</h2>${table(page.workers, "worker-rows")}</section>`}
</main>
</body>
</html>
`
}
