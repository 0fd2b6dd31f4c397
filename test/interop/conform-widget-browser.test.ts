/**
 * `widgethost conform widget` against widgets in a page in Chromium, framed cross-origin by the
 * tool's host page over real postMessage:
 * - matrix-widget-api's `WidgetApi`: no divergence;
 * - Element Call (the real embedded build): it leaves a room event with `data: null` unanswered
 *   (matrix-js-sdk's widget client drops it), which MSC2813 wants refused.
 * (Websocket widgets: conform-widget-websocket.test.ts.)
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { build } from "esbuild"
import { browserWidgets, conformWidget, describeHostPath, makeHarness } from "@widgethost/service"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { serveStaticFiles, type StaticFiles } from "../src/static-files.ts"

const CHROMIUM = "/usr/bin/chromium"

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
