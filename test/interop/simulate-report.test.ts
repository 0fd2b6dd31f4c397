/**
 * `simulate --report out.html` end to end: a short real simulation through the command writes its
 * report as a page into a temp dir. Parsed, the page's charts carry the report's numbers (a bar per
 * second of deliveries, a dot per second and percentile of latency, the errors by kind), its
 * parameters are those of the run, and it loads nothing (no script, no URL, a CSP that forbids
 * loads). Opened in headless Chromium at 1280 px it renders without console errors and nothing
 * overflows its box; a scenario page with errors and outliers too.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { type Browser, chromium } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { renderReportPage, type Report, runSimulate } from "@widgethost/simulator"
import { pageOfScenario, scenarioReportOf, decodeScenario } from "@widgethost/simulator"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

/** `data-*` attributes of every element matching `tag` with `class="<cls>"` in the page. */
const points = (html: string, tag: string, cls: string) =>
  [...html.matchAll(new RegExp(`<${tag} class="${cls}"([^>]*)>`, "g"))].map(([, attrs]) => Object.fromEntries([...attrs!.matchAll(/data-([a-z]+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!])))
const inside = (html: string, id: string) => html.slice(html.indexOf(`id="${id}"`), html.indexOf("</section>", html.indexOf(`id="${id}"`)))

const dir = mkdtempSync(join(tmpdir(), "widgethost-report-"))
const runPage = join(dir, "run.html")
const scenarioPage = join(dir, "scenario.html")
let report: Report
let html: string
let browser: Browser | undefined

beforeAll(async () => {
  // About 2 s of sending at 20 msg/s: receipts fall into several one-second buckets.
  const args = ["--accounts", "2", "--widgets", "2", "--rate", "20", "--events", "40", "--seed", "7", "--json", "--report", runPage]
  report = (await runSimulate(args)) as Report
  html = readFileSync(runPage, "utf8")
  // A scenario page with a failed verdict: errors by kind and an outlier row to lay out.
  const scenario = decodeScenario(
    { durationSeconds: 3, accounts: ["alice", "bob"], rooms: [{ name: "lobby", members: ["alice", "bob"] }], widgets: [{ name: "reader-with-a-long-name-for-rows", account: "bob", room: "lobby", behaviour: "reader", pageSize: 5, everySeconds: 1 }] },
    "inline"
  )
  const lossy = scenarioReportOf({
    t0: 0,
    end: 3000,
    messages: new Map([["m1", { room: "lobby", startedAt: 1000, confirmed: true, settled: true }], ["m2", { room: "lobby", startedAt: 2100, confirmed: true, settled: true }]]),
    toDevice: new Map(),
    widgets: [{ spec: scenario.widgets[0]!, readyAt: 500, stopAt: Infinity, sent: 0, received: new Map([["m1", 2]]), firstAt: new Map([["m1", 1040]]), toDeviceReceived: new Map(), turnUpdates: 0, pages: 3, junkSent: 0, junkAnswered: 0, rateLimited: 0, recoveredAfterFlood: false, reconnects: 0 }],
    timedOut: new Map(),
    outages: [],
    redelivered: 0,
    errors: new Map([["timelineStep", 1]]),
    samples: ["timelineStep: a sample error message that is long enough to wrap in its box ".repeat(3)]
  })
  writeFileSync(scenarioPage, renderReportPage(pageOfScenario(lossy, scenario, "inline.yaml")))
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
}, 60_000)

afterAll(async () => {
  await browser?.close()
})

describe("simulate --report out.html", () => {
  it("the run went through and wrote the page", () => {
    expect(report.errors.total).toBe(0)
    expect(report.timeline.length).toBeGreaterThanOrEqual(2)
    expect(html.startsWith("<!doctype html>")).toBe(true)
    expect(html).toContain('<span id="verdict" class="verdict ok">ok: 160/160 delivered</span>')
  })

  it("a throughput bar per second, with the report's counts; they add up to every delivery", () => {
    const bars = points(inside(html, "throughput"), "rect", "bar")
    expect(bars.map((b) => [Number(b.x), Number(b.y)])).toEqual(report.timeline.map((b) => [b.second, b.deliveries]))
    expect(bars.reduce((n, b) => n + Number(b.y), 0)).toBe(report.deliveries)
  })

  it("a latency dot per second and percentile, with the report's values; the run's max is the largest", () => {
    const dots = points(inside(html, "latency"), "circle", "point")
    for (const name of ["p50", "p90", "p99", "max"] as const) {
      const want = report.timeline.filter((b) => b.latencyMs[name] !== null).map((b) => [b.second, b.latencyMs[name]])
      expect(dots.filter((d) => d.series === name).map((d) => [Number(d.x), Number(d.y)]), name).toEqual(want)
    }
    expect(Math.max(...dots.filter((d) => d.series === "max").map((d) => Number(d.y)))).toBe(report.latencyMs.max)
    for (const b of report.timeline) expect(b.latencyMs.p50!).toBeLessThanOrEqual(b.latencyMs.p99!)
  })

  it("the parameters are the run's, errors and outliers say none, and the page loads nothing", () => {
    const parameters = inside(html, "parameters")
    expect(parameters).toContain("widgethost simulate --accounts 2 --widgets 2 --rate 20 --events 40 --seed 7")
    expect(parameters).toContain("<th scope=\"row\">accounts × widgets</th><td>2 × 2 = 4</td>")
    expect(parameters).toContain("<th scope=\"row\">seed</th><td>7</td>")
    expect(inside(html, "errors")).toContain("No errors.")
    expect(inside(html, "widgets")).toContain(report.outliers.length === 0 ? "No outliers." : report.outliers[0]!.widget)
    expect(html).not.toMatch(/<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(/i)
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`)
  })

  it("a scenario page shows its errors by kind and its outliers", () => {
    const page = readFileSync(scenarioPage, "utf8")
    expect(page).toContain("FAILED: 1 duplicate deliveries; 1 deliveries lost (1 without a timeout report)")
    expect(points(inside(page, "errors"), "rect", "bar").map((b) => [b.x, Number(b.y)])).toEqual([["duplicates", 1], ["missing", 1], ["timelineStep", 1]])
    expect(inside(page, "widgets")).toContain("<td>reader-with-a-long-name-for-rows</td><td>reader</td><td class=\"num\">1/2</td>")
    expect(points(inside(page, "latency"), "circle", "point").filter((d) => d.series === "p50").map((d) => [Number(d.x), Number(d.y)])).toEqual([[1, 40]])
  })

  it.each([["run", runPage], ["scenario", scenarioPage]])("the %s page renders in Chromium at 1280 px: no console errors, nothing overflows", async (_name, file) => {
    expect(browser, `${CHROMIUM} is needed for this test`).toBeDefined()
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } })
    const problems: Array<string> = []
    page.on("console", (m) => void (m.type() === "error" && problems.push(`console: ${m.text()}`)))
    page.on("pageerror", (e) => void problems.push(`page: ${e.message}`))
    page.on("request", (r) => void (r.url() !== pathToFileURL(file).href && problems.push(`request: ${r.url()}`)))
    await page.goto(pathToFileURL(file).href)
    const layout = await page.evaluate(() => {
      const width = document.documentElement.clientWidth
      const over = [...document.querySelectorAll("body *")].filter((el) => {
        const box = el.getBoundingClientRect()
        const parent = el.closest("section")?.getBoundingClientRect()
        return box.right > width + 0.5 || (parent !== undefined && el.tagName !== "SECTION" && box.right > parent.right + 0.5)
      })
      const charts = [...document.querySelectorAll("svg.chart")].map((svg) => svg.getBoundingClientRect())
      return { width, scrollWidth: document.documentElement.scrollWidth, over: over.map((el) => `${el.tagName}#${el.id}.${el.getAttribute("class") ?? ""}`), charts: charts.map((c) => [Math.round(c.width), Math.round(c.height)]) }
    })
    await page.screenshot({ path: file.replace(/\.html$/, ".png"), fullPage: true })
    await page.close()
    expect(problems).toEqual([])
    expect(layout.scrollWidth).toBeLessThanOrEqual(layout.width)
    expect(layout.over).toEqual([])
    // The charts are drawn, with a size: a chart with no room would be 0 × 0.
    expect(layout.charts.length).toBeGreaterThanOrEqual(2)
    for (const [w, h] of layout.charts) expect(w! * h!).toBeGreaterThan(100 * 50)
  }, 30_000)
})
