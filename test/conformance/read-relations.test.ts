/**
 * Conformance: MSC3869 `read_relations`, stable and unstable names. Given what was approved and
 * what the room holds, a request gets exactly one answer: `{ chunk, next_batch?, prev_batch? }`
 * with only the events the widget may receive (MSC2762's rules, as `read_events`), or the
 * spec-shaped error; and the homeserver is asked exactly what the widget asked (or nothing).
 */
import { Effect } from "effect"
import { type RoomEvent, SUPPORTED_API_VERSIONS } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, forbidden, Harness, type InMemoryHomeserver, makeInMemoryHomeserver, ROOM } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const OTHER = "!other:localhost"
const PARENT = "$parent"
const BOB = "@bob:localhost"
const relatesTo = (rel_type: string, event_id = PARENT) => ({ "m.relates_to": { rel_type, event_id } })

/** The parent's children, oldest first; the relations endpoint answers newest first by default. */
const children: ReadonlyArray<Omit<RoomEvent, "origin_server_ts">> = [
  { event_id: "$r1", room_id: ROOM, sender: BOB, type: "m.reaction", content: { "m.relates_to": { rel_type: "m.annotation", event_id: PARENT, key: "👍" } } },
  { event_id: "$t1", room_id: ROOM, sender: BOB, type: "m.room.message", content: { msgtype: "m.text", body: "in thread", ...relatesTo("m.thread") } },
  { event_id: "$e1", room_id: ROOM, sender: BOB, type: "m.room.message", content: { msgtype: "m.emote", body: "waves", ...relatesTo("m.thread") } },
  { event_id: "$s1", room_id: ROOM, sender: BOB, type: "org.example.marker", state_key: "k", content: relatesTo("m.reference") },
  { event_id: "$u1", room_id: ROOM, sender: BOB, type: "m.room.message", content: { msgtype: "m.text", body: "unrelated" } },
  { event_id: "$o1", room_id: OTHER, sender: BOB, type: "m.reaction", content: relatesTo("m.annotation", "$otherParent") }
]

const homeserverWithChildren = (): InMemoryHomeserver => {
  const homeserver = makeInMemoryHomeserver({ rooms: [ROOM, OTHER] })
  homeserver.inject({ event_id: PARENT, room_id: ROOM, sender: BOB, type: "m.room.message", content: { msgtype: "m.text", body: "parent" } })
  for (const child of children) homeserver.inject(child)
  return homeserver
}

const ALL = ["m.receive.event:m.reaction", "m.receive.event:m.room.message", "m.receive.state_event:org.example.marker"]
const ids = (...list: ReadonlyArray<string>) => list.map((event_id) => expect.objectContaining({ event_id }) as unknown)
const asked = (query: Record<string, unknown>) => [{ roomId: ROOM, eventId: PARENT, limit: 100, ...query }]

interface Case {
  readonly name: string
  readonly given: ReadonlyArray<string>
  readonly send: { readonly action?: string; readonly data: Record<string, unknown> }
  readonly want: unknown
  /** The relations queries the homeserver got. */
  readonly calls: ReadonlyArray<unknown>
}

const table: ReadonlyArray<Case> = [
  { name: "stable action: every child the widget may receive, newest first", given: ALL, send: { data: { event_id: PARENT } }, want: { chunk: ids("$s1", "$e1", "$t1", "$r1") }, calls: asked({}) },
  { name: "unstable action, same answer", given: ALL, send: { action: "org.matrix.msc3869.read_relations", data: { event_id: PARENT } }, want: { chunk: ids("$s1", "$e1", "$t1", "$r1") }, calls: asked({}) },
  { name: "only what may be received: reactions", given: ["m.receive.event:m.reaction"], send: { data: { event_id: PARENT } }, want: { chunk: ids("$r1") }, calls: asked({}) },
  { name: "msgtype filter: m.text but not m.emote", given: ["m.receive.event:m.room.message#m.text"], send: { data: { event_id: PARENT } }, want: { chunk: ids("$t1") }, calls: asked({}) },
  { name: "a message capability does not match a state child", given: ["m.receive.event:org.example.marker"], send: { data: { event_id: PARENT } }, want: { chunk: [] }, calls: asked({}) },
  { name: "a state capability for its key does", given: ["m.receive.state_event:org.example.marker#k"], send: { data: { event_id: PARENT } }, want: { chunk: ids("$s1") }, calls: asked({}) },
  { name: "a state capability for another key does not", given: ["m.receive.state_event:org.example.marker#other"], send: { data: { event_id: PARENT } }, want: { chunk: [] }, calls: asked({}) },
  { name: "no receive capability: an empty chunk (the text: other events are silently dropped)", given: [], send: { data: { event_id: PARENT } }, want: { chunk: [] }, calls: asked({}) },
  { name: "rel_type and event_type reach the homeserver", given: ALL, send: { data: { event_id: PARENT, rel_type: "m.thread", event_type: "m.room.message" } }, want: { chunk: ids("$e1", "$t1") }, calls: asked({ relType: "m.thread", eventType: "m.room.message" }) },
  { name: "direction f: oldest first", given: ALL, send: { data: { event_id: PARENT, direction: "f", rel_type: "m.thread" } }, want: { chunk: ids("$t1", "$e1") }, calls: asked({ relType: "m.thread", dir: "f" }) },
  { name: "a page: limit, and next_batch to go on", given: ALL, send: { data: { event_id: PARENT, limit: 2 } }, want: { chunk: ids("$s1", "$e1"), next_batch: "2" }, calls: asked({ limit: 2 }) },
  { name: "the next page: from, with prev_batch", given: ALL, send: { data: { event_id: PARENT, limit: 2, from: "2" } }, want: { chunk: ids("$t1", "$r1"), prev_batch: "2" }, calls: asked({ limit: 2, from: "2" }) },
  { name: "to bounds the page", given: ALL, send: { data: { event_id: PARENT, to: "1" } }, want: { chunk: ids("$s1") }, calls: asked({ to: "1" }) },
  { name: "a limit above the host's bound is lowered to it", given: ALL, send: { data: { event_id: PARENT, limit: 5000 } }, want: { chunk: ids("$s1", "$e1", "$t1", "$r1") }, calls: asked({}) },
  {
    name: "keys set to undefined count as absent (matrix-widget-api's WidgetApi sends them so)",
    given: ALL,
    send: { data: { event_id: PARENT, rel_type: undefined, event_type: undefined, room_id: undefined, limit: undefined, from: undefined, to: undefined, direction: undefined } },
    want: { chunk: ids("$s1", "$e1", "$t1", "$r1") },
    calls: asked({})
  },
  { name: "its own room given by id", given: ALL, send: { data: { event_id: PARENT, room_id: ROOM, rel_type: "m.annotation" } }, want: { chunk: ids("$r1") }, calls: asked({ relType: "m.annotation" }) },
  {
    name: "another room needs m.timeline: refused, nothing asked",
    given: ALL,
    send: { data: { event_id: "$otherParent", room_id: OTHER } },
    want: { error: { code: "NotAllowed", message: `Not allowed: reading relations in room ${OTHER} (needs m.timeline:${OTHER})` } },
    calls: []
  },
  {
    name: "another room with m.timeline for it",
    given: [...ALL, `m.timeline:${OTHER}`],
    send: { data: { event_id: "$otherParent", room_id: OTHER } },
    want: { chunk: ids("$o1") },
    calls: [{ roomId: OTHER, eventId: "$otherParent", limit: 100 }]
  },
  { name: "no event_id", given: ALL, send: { data: {} }, want: { error: { code: "Malformed", message: stringContaining("event_id") } }, calls: [] },
  { name: "event_id not a string", given: ALL, send: { data: { event_id: 7 } }, want: { error: { code: "Malformed", message: stringContaining("event_id") } }, calls: [] },
  { name: "a negative limit", given: ALL, send: { data: { event_id: PARENT, limit: -1 } }, want: { error: { code: "Malformed", message: stringContaining("limit") } }, calls: [] },
  { name: "limit 0", given: ALL, send: { data: { event_id: PARENT, limit: 0 } }, want: { error: { code: "Malformed", message: stringContaining("limit") } }, calls: [] },
  { name: "a fractional limit", given: ALL, send: { data: { event_id: PARENT, limit: 1.5 } }, want: { error: { code: "Malformed", message: stringContaining("limit") } }, calls: [] },
  { name: "limit as a string", given: ALL, send: { data: { event_id: PARENT, limit: "5" } }, want: { error: { code: "Malformed", message: stringContaining("limit") } }, calls: [] },
  { name: "an unknown direction", given: ALL, send: { data: { event_id: PARENT, direction: "up" } }, want: { error: { code: "Malformed", message: stringContaining("direction") } }, calls: [] },
  { name: "an empty rel_type", given: ALL, send: { data: { event_id: PARENT, rel_type: "" } }, want: { error: { code: "Malformed", message: stringContaining("rel_type") } }, calls: [] },
  { name: "a non-string event_type", given: ALL, send: { data: { event_id: PARENT, event_type: ["m.reaction"] } }, want: { error: { code: "Malformed", message: stringContaining("event_type") } }, calls: [] },
  { name: "a numeric from token", given: ALL, send: { data: { event_id: PARENT, from: 2 } }, want: { error: { code: "Malformed", message: stringContaining("from") } }, calls: [] },
  { name: "an object as room_id", given: ALL, send: { data: { event_id: PARENT, room_id: { id: ROOM } } }, want: { error: { code: "Malformed", message: stringContaining("room_id") } }, calls: [] },
  {
    name: "dir (the endpoint's name, not the action's) is refused, not ignored",
    given: ALL,
    send: { data: { event_id: PARENT, dir: "f" } },
    want: { error: { code: "Unsupported", message: 'Not supported: read_relations has no field "dir"; nothing was read' } },
    calls: []
  },
  {
    name: "recurse (a newer endpoint parameter the text lacks) is refused",
    given: ALL,
    send: { data: { event_id: PARENT, recurse: true } },
    want: { error: { code: "Unsupported", message: stringContaining('"recurse"') } },
    calls: []
  }
]

const answerTo = async (h: Harness, action: string, data: Record<string, unknown>): Promise<unknown> => {
  const id = h.request(action, data)
  await flush()
  const answers = h.take().filter((m) => m.api === "fromWidget" && m.requestId === id)
  expect(answers).toHaveLength(1)
  return (answers[0] as { response: unknown }).response
}

const relationCalls = (homeserver: InMemoryHomeserver) => homeserver.calls.filter((c) => c.method === "readRelations").map((c) => c.args)

describe("MSC3869 read_relations", () => {
  it.each(table)("$name", async ({ given, send, want, calls }) => {
    const homeserver = homeserverWithChildren()
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(given)
    h.take()
    expect(await answerTo(h, send.action ?? "read_relations", send.data)).toEqual(want)
    expect(relationCalls(homeserver)).toEqual(calls)
  })

  it("org.matrix.msc3869 is advertised (widgets check it before asking)", () => {
    expect(SUPPORTED_API_VERSIONS).toContain("org.matrix.msc3869")
  })

  it("a homeserver error passes through as matrix_api_error, one answer", async () => {
    const homeserver = homeserverWithChildren()
    homeserver.failNext("readRelations", forbidden("/_matrix/client/v1/rooms/x/relations/y"))
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(ALL)
    h.take()
    expect(await answerTo(h, "read_relations", { event_id: PARENT })).toEqual({
      error: { code: "Homeserver", message: "Forbidden", matrix_api_error: { http_status: 403, http_headers: {}, url: "/_matrix/client/v1/rooms/x/relations/y", response: { errcode: "M_FORBIDDEN", error: "Forbidden" } } }
    })
  })

  it("a port that answers more than it was asked is not the guard: other rooms, other types and unreceivable events are dropped", async () => {
    const base = homeserverWithChildren()
    const stray = (event_id: string, room_id: string, type: string): RoomEvent => ({ event_id, room_id, type, sender: BOB, origin_server_ts: 1, content: relatesTo("m.annotation") })
    const homeserver: InMemoryHomeserver = {
      ...base,
      readRelations: () => Effect.succeed({ events: [stray("$ok", ROOM, "m.reaction"), stray("$otherRoom", OTHER, "m.reaction"), stray("$otherType", ROOM, "m.room.message"), stray("$secret", ROOM, "org.example.secret")], nextBatch: "n" })
    }
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready([...ALL, "m.timeline:*"])
    h.take()
    expect(await answerTo(h, "read_relations", { event_id: PARENT, rel_type: "m.annotation", event_type: "m.reaction" })).toEqual({ chunk: ids("$ok"), next_batch: "n" })
  })

  it("an account widget that moved to another room before the answer gets none of the old room's events", async () => {
    const homeserver = homeserverWithChildren()
    const h = new Harness({ approver: approveAll, homeserver, widget: { kind: "account" } })
    h.engine.setViewedRoom(ROOM)
    await h.ready(ALL)
    h.take()
    const id = h.request("read_relations", { event_id: PARENT })
    h.engine.setViewedRoom(OTHER)
    await flush()
    expect(h.responseTo(id)).toEqual({ chunk: [] })
    expect(relationCalls(homeserver)).toEqual(asked({}))
  })

  it("an account widget viewing no room, without room_id: refused", async () => {
    const h = new Harness({ approver: approveAll, widget: { kind: "account" } })
    await h.ready(ALL)
    h.take()
    expect(await answerTo(h, "read_relations", { event_id: PARENT })).toMatchObject({ error: { code: "Malformed", message: stringContaining("viewing no room") } })
  })

  it("before the session is ready: refused, never silent", async () => {
    const h = new Harness({ approver: approveAll })
    expect(h.responseTo(h.request("org.matrix.msc3869.read_relations", { event_id: PARENT }))).toMatchObject({ error: { code: "WrongPhase" } })
  })

  it("bad data of every shape gets one answer and the session stays ready", async () => {
    const h = new Harness({ approver: approveAll, homeserver: homeserverWithChildren() })
    await h.ready(ALL)
    h.take()
    const shapes: ReadonlyArray<unknown> = [null, 7, "x", [], [PARENT], { event_id: null }, { event_id: PARENT, limit: Number.NaN }, { event_id: PARENT, limit: Infinity }, { __proto__: { event_id: PARENT } }]
    for (const data of shapes) {
      const id = `bad-${h.received.length}-${String(shapes.indexOf(data))}`
      h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: id, action: "read_relations", data })
      await flush()
      expect(h.take().filter((m) => m.requestId === id)).toHaveLength(1)
    }
    expect(h.phase).toBe("ready")
    expect(await answerTo(h, "read_relations", { event_id: PARENT, rel_type: "m.annotation" })).toEqual({ chunk: ids("$r1") })
  })
})
