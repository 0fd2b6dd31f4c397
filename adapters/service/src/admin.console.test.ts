/**
 * The admin console: its self-contained page, and the event stream it listens to.
 */
import { assert, describe, it, vi } from "vitest"
import { SEND, TOKEN, call, errorCode, eventStream, useAdminCleanup, world } from "./admin.test-kit.ts"

useAdminCleanup()

describe("admin API: the console page", () => {
  it("is self-contained HTML with a strict CSP and no-store", async () => {
    const w = await world()
    const res = await call(w.server, "GET", `/?token=${TOKEN}`, { token: null })
    assert.equal(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/)
    assert.equal(res.headers.get("cache-control"), "no-store")
    const csp = res.headers.get("content-security-policy") ?? ""
    assert.include(csp, "default-src 'none'")
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/)
    assert.include(csp, "connect-src 'self'")
    assert.include(csp, "frame-ancestors 'none'")
    assert.notInclude(csp, "unsafe-inline")
    assert.equal(res.headers.get("referrer-policy"), "no-referrer")
    assert.notMatch(res.text, /(src|href)="(https?:)?\/\//, "no external resources")
    assert.notInclude(res.text, ".innerHTML", "widget-controlled text never becomes markup")
    assert.include(res.text, "/api/events")
  })
})

describe("admin API: event stream", () => {
  it("says ready, then delivers changes (approvals, messages, sessions)", async () => {
    const w = await world()
    const stream = await eventStream(w.server)
    assert.equal(stream.res.headers.get("cache-control"), "no-store")
    await vi.waitFor(() => assert.deepEqual(stream.events[0], { event: "ready", data: "{}" }))
    const widget = w.widget("w1", [SEND])
    await vi.waitFor(() => {
      const changes = stream.changes()
      assert.deepInclude(changes, { kind: "approvals" })
      assert.deepInclude(changes, { kind: "message", sessionId: widget.sessionId })
      assert.deepInclude(changes, { kind: "sessions" })
    })
    const before = stream.changes().length
    await call(w.server, "POST", `/api/approvals/${w.approvals.pending()[0]?.id ?? ""}`, { body: { approve: "all" } })
    await vi.waitFor(() => assert.deepInclude(stream.changes().slice(before), { kind: "approvals" }))
  })

  it("coalesces a burst into one change per kind and session", async () => {
    const w = await world()
    const stream = await eventStream(w.server)
    await vi.waitFor(() => assert.equal(stream.events.length, 1))
    for (let i = 0; i < 50; i++) w.notify({ kind: "message", sessionId: "s" })
    w.notify({ kind: "message", sessionId: "t" })
    await vi.waitFor(() => assert.equal(stream.changes().length, 2))
    await new Promise((resolve) => setTimeout(resolve, 30))
    assert.deepEqual(stream.changes(), [
      { kind: "message", sessionId: "s" },
      { kind: "message", sessionId: "t" }
    ])
  })

  it("takes the Bearer header too; past maxEventStreams answers 503", async () => {
    const w = await world({ maxEventStreams: 1 })
    const first = await eventStream(w.server, "", { authorization: `Bearer ${TOKEN}` })
    assert.equal(first.res.status, 200)
    const second = await fetch(`${w.server.url}/api/events?token=${TOKEN}`)
    assert.equal(second.status, 503)
    assert.equal(errorCode((await second.json()) as Record<string, unknown>), "Unavailable")
  })

  it("close() ends the streams", async () => {
    const w = await world()
    const stream = await eventStream(w.server)
    await vi.waitFor(() => assert.equal(stream.events.length, 1))
    await w.server.close()
    await vi.waitFor(() => assert.isTrue(stream.ended()))
  })
})
