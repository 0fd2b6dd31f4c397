import { afterEach, assert, describe, it, vi } from "vitest"
import { describeCapability } from "@widgethost/core"
import type { WidgetMessage } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { ROOM, widgetDefinition } from "@widgethost/testing"
import { type AdminChange, type AdminModel, type AdminServer, type AdminWidget, engineAdminModel, startAdminServer } from "./admin.ts"
import { MessageLog } from "./message-log.ts"
import { ApprovalQueue } from "./approvals.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const TOKEN = "admin-token-0123456789abcdef"
const SEND = "org.matrix.msc2762.send.event:m.room.message"
const READ = "org.matrix.msc2762.receive.event:m.room.message"
const REACT = "org.matrix.msc2762.send.event:m.reaction"

type Message = WidgetMessage & Readonly<Record<string, unknown>>

// ---- a small service around a real engine, as serve.ts builds it -------------------------------

interface World {
  readonly engine: Engine
  readonly approvals: ApprovalQueue
  readonly log: MessageLog
  readonly server: AdminServer
  readonly notify: (change: AdminChange) => void
  /** A widget on an in-memory link: it makes first contact and answers the engine's requests. */
  readonly widget: (id: string, capabilities: ReadonlyArray<string>) => { readonly sessionId: string; readonly inbox: Message[] }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const world = async (options: { maxEventStreams?: number; maxBodyBytes?: number; createUser?: AdminModel["createUser"]; account?: AdminModel["account"]; blockWidget?: AdminModel["blockWidget"] } = {}): Promise<World> => {
  const { createUser, account, blockWidget, ...serverOptions } = options
  const approvals = new ApprovalQueue()
  const log = new MessageLog()
  const engine = createEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver({ rooms: [ROOM] })), approver: approvals.approver })
  cleanups.push(() => engine.stop())
  const widgets: AdminWidget[] = [{ id: "w1", roomId: ROOM, name: "Widget one", transport: "m.websockets", url: "https://widget.example/" }]
  const model = engineAdminModel({ engine, widgets: () => widgets, approvals, messages: log, ...(createUser === undefined ? {} : { createUser }), ...(account === undefined ? {} : { account }), ...(blockWidget === undefined ? {} : { blockWidget }) })
  const notify = model.notify
  const server = await startAdminServer({ token: TOKEN, model, coalesceMs: 5, ...serverOptions })
  cleanups.push(() => server.close())

  const widget = (id: string, capabilities: ReadonlyArray<string>) => {
    const inbox: Message[] = []
    let sessionId = ""
    const receive = (message: unknown) => {
      log.record(sessionId, "in", message)
      notify({ kind: "message", sessionId })
      engine.session(sessionId)?.receive(message)
    }
    const answer = (request: Message) =>
      receive({
        ...request,
        response: request.action === "capabilities" ? { capabilities } : request.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      })
    const session = engine.openSession({
      widget: widgetDefinition({ id, waitForIframeLoad: false }),
      send: (message) => {
        log.record(sessionId, "out", message)
        notify({ kind: "message", sessionId })
        inbox.push(message as Message)
        if (message.api === "toWidget" && !("response" in message)) queueMicrotask(() => answer(message as Message))
      }
    })
    sessionId = session.sessionId
    session.onClose(() => notify({ kind: "sessions" }))
    notify({ kind: "sessions" })
    receive({ api: "fromWidget", widgetId: id, requestId: "r0", action: "content_loaded", data: {} })
    return { sessionId, inbox }
  }
  return { engine, approvals, log, server, notify, widget }
}

// ---- HTTP --------------------------------------------------------------------------------------

interface CallOptions {
  /** `null`: no Authorization header. Default: the right token. */
  readonly token?: string | null
  readonly authorization?: string
  /** A string is sent as is; anything else as JSON. Not sent with GET. */
  readonly body?: unknown
}

const call = async (server: AdminServer, method: string, path: string, options: CallOptions = {}) => {
  const headers: Record<string, string> = {}
  const token = options.token === undefined ? TOKEN : options.token
  if (options.authorization !== undefined) headers["authorization"] = options.authorization
  else if (token !== null) headers["authorization"] = `Bearer ${token}`
  const init: RequestInit = { method, headers }
  if (options.body !== undefined && method !== "GET") {
    init.body = typeof options.body === "string" ? options.body : JSON.stringify(options.body)
    headers["content-type"] = "application/json"
  }
  const res = await fetch(`${server.url}${path}`, init)
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> | undefined }
}

const errorCode = (json: Record<string, unknown> | undefined) => (json?.["error"] as { code?: string } | undefined)?.code

const path = (...parts: ReadonlyArray<string>) => parts.map((part) => `/${encodeURIComponent(part)}`).join("")

const notified = (inbox: ReadonlyArray<Message>) => inbox.filter((m) => m.action === "notify_capabilities" && !("response" in m)).map((m) => m.data)

/** A world with one widget whose prompt for `capabilities` is waiting. */
const withPrompt = async (capabilities: ReadonlyArray<string> = [SEND, READ]) => {
  const w = await world()
  const widget = w.widget("w1", capabilities)
  await vi.waitFor(() => assert.equal(w.approvals.size, 1))
  const prompt = w.approvals.pending()[0]
  assert.isDefined(prompt, "a prompt is waiting")
  return { ...w, ...widget, prompt }
}

// ---- tests -------------------------------------------------------------------------------------

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

describe("admin API: creating users", () => {
  it("POST /api/users answers 201 with the account, keeps the homeserver's errcode on a refusal, 400 for a bad body", async () => {
    const asked: Array<unknown> = []
    const w = await world({
      createUser: (request) => {
        asked.push(request)
        return Promise.resolve(
          request.username === "taken"
            ? { _tag: "Refused", code: "Conflict", errcode: "M_USER_IN_USE", message: "User ID already taken." }
            : { _tag: "Created", user: { user_id: `@${request.username}:hs`, access_token: "syt_x", device_id: "DEV", password: "generated" } }
        )
      }
    })
    const created = await call(w.server, "POST", "/api/users", { body: { username: "bob" } })
    assert.equal(created.status, 201)
    assert.deepEqual(created.json, { user_id: "@bob:hs", access_token: "syt_x", device_id: "DEV", password: "generated" })
    const taken = await call(w.server, "POST", "/api/users", { body: { username: "taken", password: "pw" } })
    assert.equal(taken.status, 409)
    assert.deepEqual(taken.json, { error: { code: "Conflict", message: "User ID already taken.", errcode: "M_USER_IN_USE" } })
    for (const body of [[], { username: "" }, { username: 7 }, { username: "x", password: "" }, { username: "x", admin: true }, "{not json"]) {
      const res = await call(w.server, "POST", "/api/users", { body })
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(errorCode(res.json), "BadRequest")
    }
    assert.equal((await call(w.server, "POST", "/api/users", { token: null, body: { username: "eve" } })).status, 401)
    assert.equal((await call(w.server, "GET", "/api/users")).status, 405)
    assert.deepEqual(asked, [{ username: "bob" }, { username: "taken", password: "pw" }], "only valid, authorised requests reach the homeserver")
  })

  it("has no /api/users without a homeserver of the service's own", async () => {
    const w = await world()
    const res = await call(w.server, "POST", "/api/users", { body: { username: "bob" } })
    assert.equal(res.status, 404)
    assert.equal(errorCode(res.json), "NotFound")
  })
})

describe("admin API: the account", () => {
  it("GET /api/account answers the model's account, null without one; 401 without the token", async () => {
    const account = {
      userId: "@widgethost:localhost",
      deviceId: "DEV",
      homeserver: "http://127.0.0.1:1",
      demo: [{ id: "chat", name: "Demo chat", url: "http://127.0.0.1:2/demo/chat.html#ws=x" }],
      addUserCommand: "npm run widgethost -- users add NAME",
      registrationToken: "reg-token"
    }
    const w = await world({ account: () => account })
    assert.deepEqual((await call(w.server, "GET", "/api/account")).json, { account })
    assert.equal((await call(w.server, "GET", "/api/account", { token: null })).status, 401)
    assert.equal((await call(w.server, "POST", "/api/account")).status, 405)
    const bare = await world()
    assert.deepEqual((await call(bare.server, "GET", "/api/account")).json, { account: null })
  })
})

describe("admin API: blocking a widget", () => {
  it("POST /api/widgets/block blocks a hosted widget; 404 for an unknown one, 400 for a bad body, 401 without the token, nothing blocked by those", async () => {
    const asked: Array<unknown> = []
    const w = await world({ blockWidget: (ref) => (asked.push(ref), ref.id === "w1") })
    const blocked = await call(w.server, "POST", "/api/widgets/block", { body: { id: "w1", roomId: ROOM } })
    assert.equal(blocked.status, 200)
    assert.deepEqual(blocked.json, { blocked: { id: "w1", roomId: ROOM } })
    const unknown = await call(w.server, "POST", "/api/widgets/block", { body: { id: "w9" } })
    assert.equal(unknown.status, 404)
    assert.equal(errorCode(unknown.json), "NotFound")
    for (const body of [[], { id: "" }, { id: 7 }, { id: "w1", roomId: "" }, { id: "w1", url: "x" }, "{not json"]) {
      const res = await call(w.server, "POST", "/api/widgets/block", { body })
      assert.equal(res.status, 400, JSON.stringify(body))
    }
    assert.equal((await call(w.server, "POST", "/api/widgets/block", { token: null, body: { id: "w1" } })).status, 401)
    assert.equal((await call(w.server, "GET", "/api/widgets/block")).status, 405)
    assert.deepEqual(asked, [{ id: "w1", roomId: ROOM }, { id: "w9" }], "only valid, authorised requests reach the widget host")
  })

  it("has no block route when the model cannot block", async () => {
    const w = await world()
    assert.equal((await call(w.server, "POST", "/api/widgets/block", { body: { id: "w1" } })).status, 404)
  })
})

describe("admin API: closing a session", () => {
  it("POST /api/sessions/{id}/close closes it, withdraws its prompt; again is 404", async () => {
    const w = await withPrompt()
    const res = await call(w.server, "POST", `${path("api", "sessions", w.sessionId)}/close`)
    assert.equal(res.status, 200)
    assert.deepEqual(res.json, { closed: true })
    await vi.waitFor(() => assert.deepEqual(w.engine.sessions(), []))
    assert.equal(w.approvals.size, 0, "the prompt was withdrawn")
    assert.deepEqual((await call(w.server, "GET", "/api/sessions")).json, { sessions: [] })
    const again = await call(w.server, "POST", `${path("api", "sessions", w.sessionId)}/close`)
    assert.equal(again.status, 404)
    // the log outlives the session until the service forgets it
    assert.equal((await call(w.server, "GET", `${path("api", "sessions", w.sessionId)}/log`)).status, 200)
  })
})

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

/** Reads Server-Sent Events from a fetch body. */
const eventStream = async (server: AdminServer, query = `?token=${encodeURIComponent(TOKEN)}`, headers: Record<string, string> = {}) => {
  const controller = new AbortController()
  const res = await fetch(`${server.url}/api/events${query}`, { headers, signal: controller.signal })
  const events: Array<{ event: string; data: string }> = []
  let ended = false
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  void (async () => {
    let buffer = ""
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let cut: number
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          const lines = block.split("\n")
          const event = lines.find((l) => l.startsWith("event: "))?.slice(7)
          const data = lines.find((l) => l.startsWith("data: "))?.slice(6)
          if (event !== undefined && data !== undefined) events.push({ event, data })
        }
      }
    } catch {
      // aborted
    }
    ended = true
  })()
  cleanups.push(() => controller.abort())
  return { res, events, ended: () => ended, changes: () => events.filter((e) => e.event === "change").map((e) => JSON.parse(e.data) as AdminChange) }
}

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

describe("MessageLog", () => {
  it("keeps the last `capacity` entries per session, oldest first", () => {
    let now = 0
    const log = new MessageLog({ capacity: 3, now: () => ++now })
    for (let i = 0; i < 5; i++) log.record("a", i % 2 === 0 ? "in" : "out", { i })
    log.record("b", "out", { i: 99 })
    assert.deepEqual(log.get("a"), [
      { at: 3, direction: "in", message: { i: 2 } },
      { at: 4, direction: "out", message: { i: 3 } },
      { at: 5, direction: "in", message: { i: 4 } }
    ])
    assert.deepEqual(log.get("b"), [{ at: 6, direction: "out", message: { i: 99 } }])
    assert.deepEqual(log.get("c"), [])
  })

  it("keeps a preview of a large message and a marker for an unserialisable one", () => {
    const log = new MessageLog({ maxEntryChars: 20, now: () => 0 })
    log.record("a", "in", { body: "x".repeat(100) })
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    log.record("a", "in", cyclic)
    log.record("a", "in", "short")
    const [big, odd, small] = log.get("a").map((e) => e.message)
    assert.deepEqual(big, { "io.widgethost.truncated": true, chars: 111, preview: '{"body":"xxxxxxxxxxx' })
    assert.deepEqual(odd, { "io.widgethost.unserialisable": true })
    assert.equal(small, "short")
  })

  it("forgets a session, drops the oldest log past maxSessions, and announces records", () => {
    const log = new MessageLog({ maxSessions: 2 })
    const seen: string[] = []
    const stop = log.onRecord((sessionId) => seen.push(sessionId))
    log.record("a", "in", 1)
    log.record("b", "in", 1)
    log.record("c", "in", 1)
    assert.deepEqual(log.sessions(), ["b", "c"])
    log.forget("b")
    assert.deepEqual(log.get("b"), [])
    stop()
    log.record("d", "in", 1)
    assert.deepEqual(seen, ["a", "b", "c"])
  })
})
