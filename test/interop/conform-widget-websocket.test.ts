/**
 * `widgethost conform widget` against websocket widgets, each started per path by `--exec`:
 * - our kit's `WidgetClient`, through the command itself: every path, no divergence, exit 0, a
 *   JUnit report without failures;
 * - a websocket widget with three known faults: each found, with its shortest path;
 * and the command's usage error. (Widgets in Chromium: conform-widget-browser.test.ts.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { conformWidget, describeHostPath, makeHarness, websocketWidgets } from "@widgethost/service"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli } from "../src/service-process.ts"

const tsx = (file: string) => `${JSON.stringify(process.execPath)} --conditions=@widgethost/source --import tsx ${JSON.stringify(join(import.meta.dirname, "..", "src", "conform-widgets", file))}`

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
