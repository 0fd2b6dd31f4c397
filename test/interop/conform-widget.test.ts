/**
 * `widgethost conform widget` against real widgets, each in the way it runs:
 * - our kit's `WidgetClient` over a real websocket, started per path by `--exec`, through the
 *   command itself: every path, no divergence, exit 0, a JUnit report without failures;
 * - a websocket widget with three known faults: each found, with its shortest path;
 * - matrix-widget-api's `WidgetApi` in a page in Chromium, framed cross-origin by the tool's
 *   host page over real postMessage: no divergence;
 * - Element Call (the real embedded build), the same way: it leaves a room event with
 *   `data: null` unanswered (matrix-js-sdk's widget client drops it), which MSC2813 wants refused.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { build } from "esbuild"
import { browserWidgets, conformWidget, describeHostPath, makeHarness, websocketWidgets } from "@widgethost/service"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createRequire } from "node:module"
import { runCli } from "../src/service-process.ts"
import { serveStaticFiles, type StaticFiles } from "../src/static-files.ts"

const tsx = (file: string) => `${JSON.stringify(process.execPath)} --conditions=@widgethost/source --import tsx ${JSON.stringify(join(import.meta.dirname, "..", "src", "conform-widgets", file))}`
const CHROMIUM = "/usr/bin/chromium"


describe("conform widget over websockets", () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "widgethost-conform-widget-"))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("finds no divergence in our kit's WidgetClient (the command: exit 0, JUnit without failures)", async () => {
    const junit = join(dir, "kit.xml")
    writeFileSync(join(dir, "harness.json"), JSON.stringify({ replyTimeoutMs: 3_000 }))
    const run = await runCli(["conform", "widget", "--ws-listen", "127.0.0.1:0", "--exec", tsx("kit-widget.ts"), "--harness", join(dir, "harness.json"), "--junit", junit, "--quiet"])
    expect(run.stdout, run.stderr).toContain("no divergences")
    expect(run.code).toBe(0)
    const xml = readFileSync(junit, "utf8")
    const paths = /<testsuite name="conform widget: paths[^"]*" tests="(\d+)" failures="(\d+)"/.exec(xml)
    expect(Number(paths![1])).toBe(8)
    expect(paths![2]).toBe("0")
  }, 180_000)

  it("finds each fault of a faulty widget, on its shortest path", async () => {
    const harness = makeHarness({ replyTimeoutMs: 1_000 })
    const source = await websocketWidgets({ host: "127.0.0.1", port: 0, exec: tsx("faulty-widget.ts"), contactTimeoutMs: 20_000 })
    try {
      const report = await conformWidget({ target: source.target, connect: source.connect, harness })
      expect(report.findings.map((f) => [f.key, describeHostPath(f.path)])).toEqual([
        ["accepted: unknown action", "capabilities → unknown action"],
        ["double-reply: capabilities", "capabilities"],
        ["no-reply: supported_api_versions", "capabilities → supported_api_versions"]
      ])
    } finally {
      await source.close()
    }
  }, 180_000)

  it("refuses a usage it cannot serve, naming what is needed (exit 2)", async () => {
    const run = await runCli(["conform", "widget"])
    expect({ code: run.code, stderr: run.stderr.trim() }).toEqual({ code: 2, stderr: "widgethost: conform widget: give either a widget URL or --ws-listen HOST:PORT" })
  }, 60_000)
})

describe.skipIf(!existsSync(CHROMIUM))("conform widget in Chromium", () => {
  let files: StaticFiles
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-conform-page-"))
    const bundled = await build({ entryPoints: [join(import.meta.dirname, "..", "src", "conform-widgets", "widget-api-page.ts")], bundle: true, write: false, format: "esm", platform: "browser", target: "es2022", logLevel: "silent" })
    writeFileSync(join(dir, "widget.js"), bundled.outputFiles[0]!.contents)
    writeFileSync(join(dir, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module" src="widget.js"></script>`)
    files = await serveStaticFiles(dir)
  })
  afterAll(async () => files?.close())

  it("finds no divergence in matrix-widget-api's WidgetApi, framed cross-origin over postMessage", async () => {
    const harness = makeHarness({ replyTimeoutMs: 3_000 })
    const source = await browserWidgets({ url: `${files.url}/index.html`, harness, chromium: CHROMIUM, contactTimeoutMs: 20_000 })
    try {
      const report = await conformWidget({ target: source.target, connect: source.connect, harness })
      expect(report.findings).toEqual([])
      expect(report.results).toHaveLength(8)
      // The widget really took part: it answered every request of every path.
      expect(report.results.every((r) => r.divergences.length === 0 && r.path.length > 0)).toBe(true)
    } finally {
      await source.close()
    }
  }, 120_000)

  it("finds Element Call's one divergence: a room event with data null is never answered", async () => {
    const dist = join(dirname(createRequire(import.meta.url).resolve("@element-hq/element-call-embedded/package.json")), "dist")
    const elementCall = await serveStaticFiles(dist)
    // Element Web's URL for a call widget, its parameters in the fragment.
    const fragment = "widgetId=$matrix_widget_id&parentUrl=$parentUrl&roomId=$matrix_room_id&userId=@conform:localhost&deviceId=CONFORM&baseUrl=http://127.0.0.1:9&intent=join_existing&confineToRoom=true&header=none"
    const harness = makeHarness({ replyTimeoutMs: 3_000 })
    const source = await browserWidgets({ url: `${elementCall.url}/index.html#?${fragment}`, harness, chromium: CHROMIUM, contactTimeoutMs: 30_000 })
    try {
      const report = await conformWidget({ target: source.target, connect: source.connect, harness })
      expect(report.findings.map((f) => [f.key, describeHostPath(f.path)])).toEqual([["no-reply: send_event (data null)", "capabilities → notify_capabilities → send_event (data null)"]])
    } finally {
      await source.close()
      await elementCall.close()
    }
  }, 180_000)
})
