/**
 * Conformance: `com.beeper.read_room_account_data` with
 * `com.beeper.capabilities.receive.room_account_data:<type>`, as matrix-widget-api names them.
 * Given what was approved and what the account has stored, a request gets one answer:
 * `{ events: [{ type, room_id, content }] }` for the rooms that have it set, or the error; and
 * the homeserver is asked only for rooms the widget may use.
 */
import { describe, expect, it } from "vitest"
import { approveAll, flush, forbidden, Harness, type InMemoryHomeserver, makeInMemoryHomeserver, ROOM } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const OTHER = "!other:localhost"
const THIRD = "!third:localhost"
const TYPE = "org.example.layout"
const CAP = `com.beeper.capabilities.receive.room_account_data:${TYPE}`

const stored = (): InMemoryHomeserver => {
  const homeserver = makeInMemoryHomeserver({ rooms: [ROOM, OTHER, THIRD] })
  homeserver.roomAccountData.set(ROOM, new Map([[TYPE, { columns: 2 }], ["m.fully_read", { event_id: "$x" }]]))
  homeserver.roomAccountData.set(OTHER, new Map([[TYPE, { columns: 3 }]]))
  homeserver.roomAccountData.set(THIRD, new Map([[TYPE, {}]]))
  return homeserver
}

const entry = (room_id: string, content: Record<string, unknown>, type = TYPE) => ({ type, room_id, content })
const read = (...rooms: ReadonlyArray<string>) => rooms.map((roomId) => ({ roomId, type: TYPE }))

const table: ReadonlyArray<{
  readonly name: string
  readonly given: ReadonlyArray<string>
  readonly send: Record<string, unknown>
  readonly want: unknown
  /** The (room, type) reads the homeserver got. */
  readonly calls: ReadonlyArray<unknown>
}> = [
  { name: "its own room by default", given: [CAP], send: { type: TYPE }, want: { events: [entry(ROOM, { columns: 2 })] }, calls: read(ROOM) },
  { name: "nothing set: an empty list, not an error", given: ["com.beeper.capabilities.receive.room_account_data:org.example.unset"], send: { type: "org.example.unset" }, want: { events: [] }, calls: [{ roomId: ROOM, type: "org.example.unset" }] },
  { name: "content {} (how account data is deleted) is passed on as it is", given: [CAP, `m.timeline:${THIRD}`], send: { type: TYPE, room_ids: [THIRD] }, want: { events: [entry(THIRD, {})] }, calls: read(THIRD) },
  {
    name: "another type than approved: refused, naming the capability, nothing asked",
    given: [CAP],
    send: { type: "m.fully_read" },
    want: { error: { code: "NotAllowed", message: "Not allowed: reading room account data of type m.fully_read (needs com.beeper.capabilities.receive.room_account_data:m.fully_read)" } },
    calls: []
  },
  { name: "room_ids of another room without m.timeline: refused", given: [CAP], send: { type: TYPE, room_ids: [OTHER] }, want: { error: { code: "NotAllowed", message: stringContaining(OTHER) } }, calls: [] },
  { name: "room_ids with m.timeline for them, in the order asked", given: [CAP, `m.timeline:${OTHER}`], send: { type: TYPE, room_ids: [OTHER, ROOM] }, want: { events: [entry(OTHER, { columns: 3 }), entry(ROOM, { columns: 2 })] }, calls: read(OTHER, ROOM) },
  { name: "a room listed twice is read once", given: [CAP], send: { type: TYPE, room_ids: [ROOM, ROOM] }, want: { events: [entry(ROOM, { columns: 2 })] }, calls: read(ROOM) },
  { name: '"*" without m.timeline:*: its own room and the granted ones', given: [CAP, `m.timeline:${OTHER}`], send: { type: TYPE, room_ids: "*" }, want: { events: [entry(ROOM, { columns: 2 }), entry(OTHER, { columns: 3 })] }, calls: read(ROOM, OTHER) },
  { name: '"*" with m.timeline:*: every joined room', given: [CAP, "m.timeline:*"], send: { type: TYPE, room_ids: "*" }, want: { events: [entry(ROOM, { columns: 2 }), entry(OTHER, { columns: 3 }), entry(THIRD, {})] }, calls: read(ROOM, OTHER, THIRD) },
  { name: "room_ids set to undefined counts as absent", given: [CAP], send: { type: TYPE, room_ids: undefined }, want: { events: [entry(ROOM, { columns: 2 })] }, calls: read(ROOM) },
  { name: "no type", given: [CAP], send: {}, want: { error: { code: "Malformed", message: stringContaining("type") } }, calls: [] },
  { name: "an empty type", given: [CAP], send: { type: "" }, want: { error: { code: "Malformed", message: stringContaining("type") } }, calls: [] },
  { name: "room_ids neither a list nor \"*\"", given: [CAP], send: { type: TYPE, room_ids: ROOM }, want: { error: { code: "Malformed", message: stringContaining("room_ids") } }, calls: [] },
  { name: "room_ids with a non-string", given: [CAP], send: { type: TYPE, room_ids: [ROOM, 1] }, want: { error: { code: "Malformed", message: stringContaining("room_ids") } }, calls: [] },
  { name: "a field it does not serve is refused, named", given: [CAP], send: { type: TYPE, state_key: "" }, want: { error: { code: "Unsupported", message: 'Not supported: read_room_account_data has no field "state_key"; nothing was read' } }, calls: [] }
]

const answerTo = async (h: Harness, data: Record<string, unknown>): Promise<unknown> => {
  const id = h.request("com.beeper.read_room_account_data", data)
  await flush()
  const answers = h.take().filter((m) => m.api === "fromWidget" && m.requestId === id)
  expect(answers).toHaveLength(1)
  return (answers[0] as { response: unknown }).response
}

const reads = (homeserver: InMemoryHomeserver) => homeserver.calls.filter((c) => c.method === "readRoomAccountData").map((c) => c.args)

describe("com.beeper.read_room_account_data", () => {
  it.each(table)("$name", async ({ given, send, want, calls }) => {
    const homeserver = stored()
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(given)
    h.take()
    expect(await answerTo(h, send)).toEqual(want)
    expect(reads(homeserver)).toEqual(calls)
  })

  it("the capability is approved as asked; an m.-prefixed spelling (no reference has one) is not recognised", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready([CAP, `m.receive.room_account_data:${TYPE}`])
    expect(h.session.info().approved).toEqual([CAP])
  })

  it("homeserver failures in several rooms: one answer, the first error as matrix_api_error", async () => {
    const homeserver = stored()
    homeserver.failNext("readRoomAccountData", forbidden("/_matrix/client/v3/user/x/rooms/y/account_data/z"), 2)
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready([CAP, `m.timeline:${OTHER}`])
    h.take()
    expect(await answerTo(h, { type: TYPE, room_ids: [ROOM, OTHER] })).toMatchObject({ error: { code: "Homeserver", matrix_api_error: { http_status: 403, response: { errcode: "M_FORBIDDEN" } } } })
    expect(h.phase).toBe("ready")
  })

  it("joined rooms unavailable for \"*\": the error, one answer", async () => {
    const homeserver = stored()
    homeserver.failNext("joinedRooms", forbidden("/_matrix/client/v3/joined_rooms"))
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready([CAP, "m.timeline:*"])
    h.take()
    expect(await answerTo(h, { type: TYPE, room_ids: "*" })).toMatchObject({ error: { code: "Homeserver" } })
    expect(reads(homeserver)).toEqual([])
  })

  it("an account widget that moved to another room before the answer does not get the old room's data", async () => {
    const homeserver = stored()
    const h = new Harness({ approver: approveAll, homeserver, widget: { kind: "account" } })
    h.engine.setViewedRoom(ROOM)
    await h.ready([CAP])
    h.take()
    const id = h.request("com.beeper.read_room_account_data", { type: TYPE })
    h.engine.setViewedRoom(OTHER)
    await flush()
    expect(h.responseTo(id)).toEqual({ events: [] })
    expect(reads(homeserver)).toEqual(read(ROOM))
  })

  it("an account widget viewing no room, without room_ids: refused", async () => {
    const h = new Harness({ approver: approveAll, widget: { kind: "account" } })
    await h.ready([CAP])
    h.take()
    expect(await answerTo(h, { type: TYPE })).toMatchObject({ error: { code: "Malformed", message: stringContaining("viewing no room") } })
  })
})
