/**
 * `widgethost conform host` against matrix-widget-api's reference `ClientWidgetApi` behind a
 * websocket bridge (test/src/reference-bridge.ts): the divergences it is known to have, each with
 * its shortest path. (Our own service: conform-host-service.test.ts.)
 */
import { conformHost, describePath, hostJunit, makeHarness } from "@widgethost/service"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { polyfillWithResolvers, type ReferenceBridge, startReferenceBridge } from "../src/reference-bridge.ts"

describe("conform host against matrix-widget-api's ClientWidgetApi", () => {
  let bridge: ReferenceBridge
  beforeAll(async () => {
    polyfillWithResolvers()
    // The reference logs every capability grant and contentLoaded timeout on the console.
    for (const level of ["log", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(() => undefined)
    bridge = await startReferenceBridge({ widgetId: "conform", roomId: "!conform:localhost" })
  })
  afterAll(async () => {
    await bridge.close()
    vi.restoreAllMocks()
  })

  it("reports its known divergences, each with its shortest path", async () => {
    const report = await conformHost({ uri: bridge.uri, harness: makeHarness({ replyTimeoutMs: 400, settleMs: 30 }) })
    expect(bridge.connections()).toBeGreaterThanOrEqual(report.results.length)
    const found = Object.fromEntries(report.findings.map((f) => [f.key, describePath(f.path)]))
    expect(found).toEqual({
      // Stable names (MSC2974, MSC2876 as merged) answered "Unknown or unsupported from-widget action".
      "refused: request_capabilities (stable)": "content_loaded → answer capabilities → request_capabilities (stable)",
      "refused: read_events (stable)": "content_loaded → answer capabilities → read_events (stable)",
      // ...so the capability asked for that way is never granted, nor notified.
      "missing-request: notify_capabilities (after request_capabilities (stable))": "content_loaded → answer capabilities → request_capabilities (stable)",
      "approval-differs: notify_capabilities": "content_loaded → answer capabilities → request_capabilities (stable)",
      // A second content_loaded throws inside the reference: no answer at all, and no new exchange.
      "no-reply: content_loaded": "content_loaded → content_loaded",
      "missing-request: capabilities (after content_loaded)": "content_loaded → content_loaded",
      // `data: null` throws in its send_event handler (request.data.type): silence, not an error.
      "no-reply: send_event (data null)": "send_event (data null)",
      // MSC2974 before the first exchange is acknowledged and notified instead of refused.
      "accepted: request_capabilities (org.matrix.msc2974)": "request_capabilities (org.matrix.msc2974)",
      "extra-request: notify_capabilities (after request_capabilities (org.matrix.msc2974))": "request_capabilities (org.matrix.msc2974)"
    })
    for (const finding of report.findings) expect(finding.paths).toBeGreaterThan(0)
    const xml = hostJunit(report)
    expect(xml).toContain(`<testsuite name="conform host: divergences (${bridge.uri})" tests="${report.findings.length}" failures="${report.findings.length}"`)
    expect(xml).toContain('<testcase name="no-reply: content_loaded" classname="conform.host.divergence"')
  }, 120_000)
})
