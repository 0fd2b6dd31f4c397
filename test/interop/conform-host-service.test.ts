/**
 * `widgethost conform host` against our own service (`widgethost serve`, spawned, embedded
 * homeserver), through the command itself: every path of the session chart, no divergence, exit
 * code 0, a JUnit report without failures; and the command's usage errors. (The reference
 * ClientWidgetApi's known divergences: conform-host-reference.test.ts.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { runCli, type ServiceProcess, startService } from "../src/service-process.ts"

const SEND = "org.matrix.msc2762.send.event:m.room.message"
const RECEIVE = "org.matrix.msc2762.receive.event:m.room.message"
const EXTRA = "org.matrix.msc2762.receive.state_event:m.room.topic"

describe("conform host against our service", () => {
  let dir: string
  let service: ServiceProcess
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "widgethost-conform-"))
  })
  afterAll(async () => {
    await service?.kill()
    rmSync(dir, { recursive: true, force: true })
  })

  it("drives every path of the chart and finds no divergence (the command: exit 0, JUnit without failures)", async () => {
    // The service's policy grants what the harness's widget asks for, as the harness says.
    writeFileSync(join(dir, "config.json"), JSON.stringify({ policy: { rules: [SEND, RECEIVE, EXTRA].map((capability) => ({ widgetId: "chat", capability, decision: "approve" })) } }))
    service = startService(["serve", "--config", join(dir, "config.json"), "--data-dir", join(dir, "data")])
    const widget = (await service.ready).ready.widgets[0]!
    const uri = decodeURIComponent(/[#&]ws=([^&]+)/.exec(widget.url)![1]!)
    writeFileSync(join(dir, "harness.json"), JSON.stringify({ widgetId: widget.id, roomId: widget.room_id, replyTimeoutMs: 3_000 }))
    const junit = join(dir, "conform.xml")
    const run = await runCli(["conform", "host", "--ws", uri, "--harness", join(dir, "harness.json"), "--junit", junit, "--quiet"])
    expect(run.stdout, run.stderr).toContain("no divergences")
    expect(run.code).toBe(0)
    const xml = readFileSync(junit, "utf8")
    const paths = /<testsuite name="conform host: paths[^"]*" tests="(\d+)" failures="(\d+)"/.exec(xml)
    expect(Number(paths![1])).toBeGreaterThan(50)
    expect(paths![2]).toBe("0")
    expect(xml).toContain('<testsuites tests="' + paths![1] + '" failures="0"')
  }, 180_000)
})

describe("conform host usage", () => {
  it("refuses a missing --ws and a wrong harness with one line and exit code 2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-conform-"))
    try {
      writeFileSync(join(dir, "harness.json"), JSON.stringify({ replyTimeoutMs: "soon" }))
      // Two independent runs of the command, side by side: most of each is starting Node and tsx.
      const [noUri, bad] = await Promise.all([runCli(["conform", "host"]), runCli(["conform", "host", "--ws", "ws://127.0.0.1:9/", "--harness", join(dir, "harness.json")])])
      expect(noUri.code).toBe(2)
      expect(noUri.stderr).toContain("--ws URI is needed")
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain("harness: replyTimeoutMs must be a number of milliseconds")
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
