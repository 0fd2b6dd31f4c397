/**
 * The admin API: who may call it, what it shows, deciding prompts, and its routes and methods.
 * Users, the account, blocking and closing are in admin.management.test.ts, the console page and
 * the event stream in admin.console.test.ts; shared setup in admin.test-kit.ts.
 */
import { assert, describe, it, vi } from "vitest"
import { describeCapability } from "@widgethost/core"
import { ROOM } from "@widgethost/testing"
import { type AdminModel, startAdminServer } from "./admin.ts"
import { REACT, READ, SEND, TOKEN, call, errorCode, notified, path, type CallOptions, type Message, useAdminCleanup, withPrompt, world } from "./admin.test-kit.ts"

useAdminCleanup()

describe("admin API: authorisation", () => {
  it("401 with a JSON error on every route, and nothing changes", async () => {
    const w = await withPrompt()
    const routes: ReadonlyArray<readonly [string, string, unknown?]> = [
      ["GET", "/"],
      ["GET", "/api/widgets"],
      ["GET", "/api/sessions"],
      ["GET", "/api/approvals"],
      ["GET", `/api/approvals/${w.prompt.id}`],
      ["POST", `/api/approvals/${w.prompt.id}`, { approve: "all" }],
      ["POST", `/api/approvals/${w.prompt.id}`, "{not json"],
      ["POST", `${path("api", "sessions", w.sessionId)}/close`],
      ["GET", `${path("api", "sessions", w.sessionId)}/log`],
      ["GET", "/api/events"],
      ["GET", "/api/nothing-here"],
      ["DELETE", "/api/sessions"]
    ]
    const ways: ReadonlyArray<CallOptions & { readonly name: string; readonly query?: string }> = [
      { name: "no token", token: null },
      { name: "wrong token", token: "admin-token-0123456789abcdeX" },
      { name: "prefix of the token", token: TOKEN.slice(0, -1) },
      { name: "other scheme", authorization: `Basic ${TOKEN}` },
      { name: "wrong query token", token: null, query: "?token=nope" },
      { name: "header wrong, query right", token: "wrong", query: `?token=${TOKEN}` }
    ]
    for (const [method, route, body] of routes) {
      for (const way of ways) {
        const res = await call(w.server, method, `${route}${way.query ?? ""}`, { ...way, ...(body === undefined ? {} : { body }) })
        assert.equal(res.status, 401, `${method} ${route} (${way.name})`)
        assert.equal(errorCode(res.json), "Unauthorized")
        assert.include(res.headers.get("www-authenticate") ?? "", "Bearer")
        assert.equal(res.headers.get("cache-control"), "no-store")
      }
    }
    // ?token= is for the page and the event stream only: it cannot act
    for (const [method, route] of [
      ["POST", `/api/approvals/${w.prompt.id}`],
      ["POST", `${path("api", "sessions", w.sessionId)}/close`],
      ["GET", "/api/sessions"],
      ["GET", "/api/approvals"]
    ] as const) {
      const res = await call(w.server, method, `${route}?token=${TOKEN}`, { token: null, body: { approve: "all" } })
      assert.equal(res.status, 401, `${method} ${route} with ?token=`)
    }
    assert.equal(w.approvals.size, 1, "the prompt is still waiting")
    assert.equal(w.engine.sessions().length, 1, "the session is still open")
    assert.deepEqual(notified(w.inbox), [])
  })

  it("the page and the event stream take ?token=; the API takes the header", async () => {
    const w = await world()
    assert.equal((await call(w.server, "GET", `/?token=${encodeURIComponent(TOKEN)}`, { token: null })).status, 200)
    assert.equal((await call(w.server, "GET", "/")).status, 200)
    const events = await fetch(`${w.server.url}/api/events?token=${encodeURIComponent(TOKEN)}`)
    assert.equal(events.status, 200)
    assert.match(events.headers.get("content-type") ?? "", /^text\/event-stream/)
    await events.body?.cancel()
    assert.equal((await call(w.server, "GET", "/api/widgets")).status, 200)
  })

  it("refuses a short token", async () => {
    const model = {} as AdminModel
    let error: unknown
    try {
      await startAdminServer({ token: "short", model })
    } catch (e) {
      error = e
    }
    assert.match(String(error), /at least 16 characters/)
  })

  it("binds 127.0.0.1 by default", async () => {
    const w = await world()
    assert.match(w.server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  })
})

describe("admin API: reading", () => {
  it("GET /api/widgets lists the widgets", async () => {
    const w = await world()
    const res = await call(w.server, "GET", "/api/widgets")
    assert.equal(res.status, 200)
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/)
    assert.equal(res.headers.get("cache-control"), "no-store")
    assert.deepEqual(res.json, { widgets: [{ id: "w1", roomId: ROOM, name: "Widget one", transport: "m.websockets", url: "https://widget.example/" }] })
  })

  it("GET /api/sessions shows state, requested and approved capabilities and counters", async () => {
    const w = await withPrompt()
    const res = await call(w.server, "GET", "/api/sessions")
    const [session] = (res.json?.["sessions"] ?? []) as Array<Record<string, unknown>>
    assert.equal(session?.["sessionId"], w.sessionId)
    assert.equal(session?.["widgetId"], "w1")
    assert.equal(session?.["state"], "negotiating")
    assert.deepEqual(session?.["requested"], [SEND, READ])
    assert.deepEqual(session?.["approved"], [])
    const counters = session?.["counters"] as Record<string, number>
    assert.isAbove(counters["sent"] ?? 0, 0)
    assert.isAbove(counters["received"] ?? 0, 0)
  })

  it("GET /api/approvals and /api/approvals/{id} show the waiting prompt", async () => {
    const w = await withPrompt()
    const list = await call(w.server, "GET", "/api/approvals")
    assert.deepEqual(list.json, { approvals: [{ ...w.prompt }] })
    assert.deepEqual(Object.keys(w.prompt).sort(), ["alreadyApproved", "createdAt", "id", "meanings", "origin", "requested", "sessionId", "widgetId", "widgetUrl"])
    assert.deepEqual(w.prompt.meanings, w.prompt.requested.map(describeCapability))
    assert.equal(w.prompt.sessionId, w.sessionId)
    const one = await call(w.server, "GET", `/api/approvals/${w.prompt.id}`)
    assert.deepEqual(one.json, { approval: { ...w.prompt } })
    assert.equal((await call(w.server, "GET", "/api/approvals/unknown")).status, 404)
  })

  it("GET /api/sessions/{id}/log has both directions, oldest first", async () => {
    const w = await withPrompt()
    const res = await call(w.server, "GET", `${path("api", "sessions", w.sessionId)}/log`)
    assert.equal(res.status, 200)
    const { sessionId, entries } = res.json as { sessionId: string; entries: Array<{ at: number; direction: string; message: Message }> }
    assert.equal(sessionId, w.sessionId)
    assert.deepEqual(entries[0]?.message, { api: "fromWidget", widgetId: "w1", requestId: "r0", action: "content_loaded", data: {} })
    assert.equal(entries[0]?.direction, "in")
    assert.isTrue(entries.some((e) => e.direction === "out" && e.message.action === "capabilities"))
    assert.deepEqual(
      entries.map((e) => e.at),
      entries.map((e) => e.at).sort((a, b) => a - b)
    )
    const missing = await call(w.server, "GET", `${path("api", "sessions", "nobody#9")}/log`)
    assert.equal(missing.status, 404)
    assert.equal(errorCode(missing.json), "NotFound")
  })
})

describe("admin API: deciding", () => {
  it("approve some: the widget gets the subset, the rest is denied", async () => {
    const w = await withPrompt([SEND, READ, REACT])
    const res = await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body: { approve: [SEND, READ], deny: [REACT] } })
    assert.equal(res.status, 200)
    assert.deepEqual(res.json, { id: w.prompt.id, approved: [SEND, READ], denied: [REACT] })
    await vi.waitFor(() => assert.deepEqual(notified(w.inbox), [{ requested: [SEND, READ, REACT], approved: [SEND, READ] }]))
    const sessions = (await call(w.server, "GET", "/api/sessions")).json?.["sessions"] as Array<Record<string, unknown>>
    assert.deepEqual(sessions[0]?.["approved"], [SEND, READ])
    assert.deepEqual(sessions[0]?.["denied"], [REACT])
    assert.equal(sessions[0]?.["state"], "ready")
    assert.deepEqual((await call(w.server, "GET", "/api/approvals")).json, { approvals: [] })
  })

  it('approve "all"', async () => {
    const w = await withPrompt()
    const res = await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body: { approve: "all" } })
    assert.deepEqual(res.json, { id: w.prompt.id, approved: [SEND, READ], denied: [] })
    await vi.waitFor(() => assert.deepEqual(notified(w.inbox), [{ requested: [SEND, READ], approved: [SEND, READ] }]))
  })

  it('deny "all"', async () => {
    const w = await withPrompt()
    const res = await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body: { deny: "all" } })
    assert.deepEqual(res.json, { id: w.prompt.id, approved: [], denied: [SEND, READ] })
    await vi.waitFor(() => assert.deepEqual(notified(w.inbox), [{ requested: [SEND, READ], approved: [] }]))
    assert.deepEqual(w.engine.sessions()[0]?.denied, [SEND, READ])
  })

  it("a prompt is decided once: the second answer is 404", async () => {
    const w = await withPrompt()
    assert.equal((await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body: { approve: "all" } })).status, 200)
    const again = await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body: { deny: "all" } })
    assert.equal(again.status, 404)
    assert.equal(errorCode(again.json), "NotFound")
  })

  it("400 for bad JSON, a bad shape or a capability not asked; 404 for an unknown id; nothing decided", async () => {
    const w = await withPrompt()
    const cases: ReadonlyArray<readonly [string, unknown, number]> = [
      ["not JSON", "{approve:", 400],
      ["empty body", "", 400],
      ["an array", [SEND], 400],
      ["neither approve nor deny", {}, 400],
      ["approve a string", { approve: SEND }, 400],
      ["approve numbers", { approve: [1] }, 400],
      ["a capability not asked", { approve: [REACT] }, 400]
    ]
    for (const [name, body, status] of cases) {
      const res = await call(w.server, "POST", `/api/approvals/${w.prompt.id}`, { body })
      assert.equal(res.status, status, name)
      assert.equal(errorCode(res.json), "BadRequest", name)
      assert.isString((res.json?.["error"] as { message?: unknown }).message)
    }
    const unknown = await call(w.server, "POST", "/api/approvals/nope", { body: { approve: "all" } })
    assert.equal(unknown.status, 404)
    assert.equal(w.approvals.size, 1)
    assert.deepEqual(notified(w.inbox), [])
  })

  it("413 for a body over the limit", async () => {
    const w = await world({ maxBodyBytes: 100 })
    const res = await call(w.server, "POST", "/api/approvals/x", { body: { approve: ["x".repeat(200)] } })
    assert.equal(res.status, 413)
    assert.equal(errorCode(res.json), "PayloadTooLarge")
  })
})

describe("admin API: routes and methods", () => {
  it("405 with Allow for a route without that method; 404 for no route", async () => {
    const w = await withPrompt()
    const cases: ReadonlyArray<readonly [string, string, string]> = [
      ["POST", "/", "GET"],
      ["PUT", "/api/widgets", "GET"],
      ["POST", "/api/sessions", "GET"],
      ["DELETE", `/api/approvals/${w.prompt.id}`, "GET, POST"],
      ["POST", "/api/approvals", "GET"],
      ["GET", `${path("api", "sessions", w.sessionId)}/close`, "POST"],
      ["POST", `${path("api", "sessions", w.sessionId)}/log`, "GET"],
      ["POST", "/api/events", "GET"]
    ]
    for (const [method, route, allow] of cases) {
      const res = await call(w.server, method, route)
      assert.equal(res.status, 405, `${method} ${route}`)
      assert.equal(res.headers.get("allow"), allow)
      assert.equal(errorCode(res.json), "MethodNotAllowed")
    }
    for (const route of ["/api", "/api/nothing", `${path("api", "sessions", w.sessionId)}/reopen`, "/index.html", "/api/widgets/w1"]) {
      const res = await call(w.server, "GET", route)
      assert.equal(res.status, 404, route)
      assert.equal(errorCode(res.json), "NotFound")
    }
    assert.equal((await call(w.server, "GET", "/api/approvals/%E0%A4%A")).status, 400, "malformed percent-encoding")
    assert.equal(w.approvals.size, 1)
  })
})
