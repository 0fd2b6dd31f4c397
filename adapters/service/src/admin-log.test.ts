import { afterEach, assert, describe, it } from "vitest"
import type { Engine, SessionInfo } from "@widgethost/engine"
import { type AdminServer, engineAdminModel, startAdminServer } from "./admin.ts"
import { ApprovalQueue } from "./approvals.ts"
import { MessageLog } from "./message-log.ts"

const TOKEN = "admin-token-0123456789abcdef"
const ROOM = "!room:hs.example"
const BODY = "the launch code is 0000"

const servers: AdminServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

const session = (sessionId: string, widgetId: string) =>
  ({ sessionId, widgetId, phase: "ready", requested: [], approved: [], denied: [], counters: {}, homeRoom: ROOM }) as unknown as SessionInfo

const request = (widgetId: string, requestId: string, action: string, data: unknown = {}) => ({ api: "fromWidget", widgetId, requestId, action, data })
const answered = (message: ReturnType<typeof request>, response: unknown) => ({ ...message, response })

/**
 * Two sessions as the service logs them: `a` of widget w1 sends a message and has one refused
 * read; `b` of widget w2 reads. Times interleave so the merged log's order is visible.
 */
const world = async (options: { logContent?: boolean } = {}) => {
  let now = 0
  const log = new MessageLog({ now: () => ++now, ...options })
  const send = request("w1", "1", "send_event", { type: "m.room.message", room_id: ROOM, content: { msgtype: "m.text", body: BODY } })
  log.record("a", "in", send)
  log.record("b", "in", request("w2", "1", "read_events", { type: "m.room.message" }))
  log.record("a", "out", answered(send, { room_id: ROOM, event_id: "$e1" }))
  const refused = request("w1", "2", "read_events", { type: "m.room.topic" })
  log.record("a", "in", refused)
  log.record("a", "out", answered(refused, { error: { message: "not allowed to read m.room.topic" } }))
  log.record("b", "out", { api: "toWidget", widgetId: "w2", requestId: "t1", action: "notify_capabilities", data: {} })
  const engine = { sessions: () => [session("a", "w1"), session("b", "w2")], session: () => undefined } as unknown as Pick<Engine, "sessions" | "session">
  const model = engineAdminModel({ engine, widgets: () => [], approvals: new ApprovalQueue(), messages: log })
  const server = await startAdminServer({ token: TOKEN, model })
  servers.push(server)
  return server
}

interface Entry {
  readonly sessionId?: string
  readonly direction: string
  readonly message: { readonly action: string; readonly requestId: string; readonly response?: unknown }
}

const get = async (server: AdminServer, path: string, token: string | null = TOKEN) => {
  const res = await fetch(`${server.url}${path}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
  return { status: res.status, json: (await res.json()) as { redacted?: boolean; entries?: ReadonlyArray<Entry>; error?: { code: string; message: string } } }
}

/** `direction action#requestId` per entry: a table that reads like the log. */
const rows = (entries: ReadonlyArray<Entry> | undefined) => (entries ?? []).map((e) => `${e.sessionId === undefined ? "" : `${e.sessionId} `}${e.direction} ${e.message.action}#${e.message.requestId}`)

describe("admin API: filtering a session's log", () => {
  const table: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["", ["in send_event#1", "out send_event#1", "in read_events#2", "out read_events#2"]],
    ["?direction=in", ["in send_event#1", "in read_events#2"]],
    ["?direction=out", ["out send_event#1", "out read_events#2"]],
    ["?action=read_events", ["in read_events#2", "out read_events#2"]],
    ["?action=send_event,read_events&direction=out", ["out send_event#1", "out read_events#2"]],
    ["?action=send_event&action=content_loaded", ["in send_event#1", "out send_event#1"]],
    ["?errors=1", ["out read_events#2"]],
    ["?errors=0", ["in send_event#1", "out send_event#1", "in read_events#2", "out read_events#2"]],
    ["?errors=true&direction=in", []],
    ["?widget=w1&action=send_event", ["in send_event#1", "out send_event#1"]],
    ["?widget=w2", []]
  ]
  for (const [query, want] of table) {
    it(`GET /api/sessions/a/log${query}`, async () => {
      const server = await world()
      const res = await get(server, `/api/sessions/a/log${query}`)
      assert.equal(res.status, 200)
      assert.deepEqual(rows(res.json.entries), want)
    })
  }

  it("a bad filter is a 400 naming the parameter, not an empty log", async () => {
    const server = await world()
    for (const [query, names] of [
      ["?direction=up", "direction"],
      ["?errors=maybe", "errors"],
      ["?action=", "action"],
      ["?action=send_event,,x", "action"],
      ["?widget=", "widget"]
    ] as const) {
      const res = await get(server, `/api/sessions/a/log${query}`)
      assert.equal(res.status, 400, query)
      assert.equal(res.json.error?.code, "BadRequest")
      assert.match(res.json.error?.message ?? "", new RegExp(`^${names}:`))
    }
    assert.equal((await get(server, "/api/sessions/nobody/log?direction=in")).status, 404)
  })
})

describe("admin API: the merged log of every session", () => {
  it("GET /api/log merges sessions oldest first; widget= keeps one widget's sessions", async () => {
    const server = await world()
    const all = await get(server, "/api/log")
    assert.equal(all.status, 200)
    assert.deepEqual(rows(all.json.entries), [
      "a in send_event#1",
      "b in read_events#1",
      "a out send_event#1",
      "a in read_events#2",
      "a out read_events#2",
      "b out notify_capabilities#t1"
    ])
    assert.deepEqual(rows((await get(server, "/api/log?widget=w2")).json.entries), ["b in read_events#1", "b out notify_capabilities#t1"])
    assert.deepEqual(rows((await get(server, "/api/log?action=read_events&direction=in")).json.entries), ["b in read_events#1", "a in read_events#2"])
    assert.deepEqual(rows((await get(server, "/api/log?errors=1")).json.entries), ["a out read_events#2"])
    assert.equal((await get(server, "/api/log?direction=sideways")).status, 400)
    assert.equal((await get(server, "/api/log", null)).status, 401)
  })

  it("the log API says bodies are redacted and never returns them; with logContent it does", async () => {
    const redacted = await get(await world(), "/api/log")
    assert.isTrue(redacted.json.redacted)
    const send = redacted.json.entries?.[0]?.message as unknown as { data: Record<string, unknown> }
    assert.deepEqual(send.data, { type: "m.room.message", room_id: ROOM, content: { "io.widgethost.redacted": true, bytes: Buffer.byteLength(JSON.stringify({ msgtype: "m.text", body: BODY })) } })
    assert.notInclude(JSON.stringify(redacted.json), BODY)
    const shown = await get(await world({ logContent: true }), "/api/sessions/a/log")
    assert.isFalse(shown.json.redacted)
    assert.include(JSON.stringify(shown.json), BODY)
  })
})
