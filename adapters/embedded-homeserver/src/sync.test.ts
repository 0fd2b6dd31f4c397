import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { ClientEvent, SyncResponse } from "./testing.ts"
import { Client, newUser, room, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  await hs.close()
})

const messages = (sync: SyncResponse, roomId: string): Array<unknown> =>
  (sync.rooms.join[roomId]?.timeline.events ?? []).filter((e) => e.type === "m.room.message").map((e) => e.content.body)

describe("/sync", () => {
  it("initial sync carries the room's state and recent timeline", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom({ name: "R" })
    await a.send(roomId, "hello")
    const sync = await a.sync()
    assert.match(sync.next_batch, /^s\d+$/)
    const joined = sync.rooms.join[roomId]!
    const all = [...joined.state.events, ...joined.timeline.events]
    assert.isTrue(all.some((e) => e.type === "m.room.create"))
    assert.isTrue(all.some((e) => e.type === "m.room.name"))
    assert.deepEqual(messages(sync, roomId), ["hello"])
    assert.notProperty(joined.timeline.events[0], "room_id")
  })

  it("a long-poll wakes as soon as an event arrives", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const { next_batch } = await b.sync()
    const started = Date.now()
    const poll = b.sync({ since: next_batch, timeout: "10000" })
    await new Promise((r) => setTimeout(r, 150))
    await a.send(roomId, "wake up")
    const woke = await poll
    assert.isBelow(Date.now() - started, 5000)
    assert.deepEqual(messages(woke, roomId), ["wake up"])
  })

  it("a long-poll with nothing to report returns empty after its timeout", async () => {
    const a = await newUser(hs)
    const { next_batch } = await a.sync()
    const started = Date.now()
    const empty = await a.sync({ since: next_batch, timeout: "300" })
    assert.isAtLeast(Date.now() - started, 250)
    assert.deepEqual(empty.rooms.join, {})
    assert.equal(empty.next_batch, next_batch)
  })

  it("delivers every event exactly once across consecutive syncs, while sends race the syncs", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const total = 60
    const filter = JSON.stringify({ room: { timeline: { limit: 1000 } } })
    let { next_batch } = await b.sync({ filter })
    const seen: Array<unknown> = []
    const sending = (async () => {
      for (let i = 0; i < total; i++) await a.send(roomId, `n${i}`)
    })()
    let rounds = 0
    while (seen.length < total && rounds++ < 500) {
      const sync = await b.sync({ since: next_batch, timeout: "2000", filter })
      seen.push(...messages(sync, roomId))
      assert.isFalse(sync.rooms.join[roomId]?.timeline.limited ?? false)
      next_batch = sync.next_batch
    }
    await sending
    assert.deepEqual(
      seen,
      Array.from({ length: total }, (_, i) => `n${i}`)
    )
    assert.isAbove(rounds, 1)
  })

  it("cuts the timeline at the filter's limit, flags it limited and gives a prev_batch that /messages continues from", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    const { next_batch } = await a.sync()
    for (let i = 0; i < 6; i++) await a.send(roomId, `p${i}`)
    const filter = JSON.stringify({ room: { timeline: { limit: 2 } } })
    const sync = await a.sync({ since: next_batch, filter })
    const timeline = sync.rooms.join[roomId]!.timeline
    assert.isTrue(timeline.limited)
    assert.deepEqual(messages(sync, roomId), ["p4", "p5"])
    const rest = await a.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=b&limit=3&from=${timeline.prev_batch}`)
    assert.deepEqual(
      rest.body.chunk.map((e) => e.content.body),
      ["p3", "p2", "p1"]
    )
  })

  it("honours stored filters and full_state", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    await a.send(roomId, "one")
    const created = await a.post<{ filter_id: string }>(`${V3}/user/${encodeURIComponent(a.userId)}/filter`, {
      room: { timeline: { limit: 1, types: ["m.room.message"] } }
    })
    assert.equal(created.status, 200)
    const stored = await a.get(`${V3}/user/${encodeURIComponent(a.userId)}/filter/${created.body.filter_id}`)
    assert.deepEqual(stored.body, { room: { timeline: { limit: 1, types: ["m.room.message"] } } })
    const sync = await a.sync({ filter: created.body.filter_id })
    assert.deepEqual(
      sync.rooms.join[roomId]!.timeline.events.map((e) => e.type),
      ["m.room.message"]
    )
    const incremental = await a.sync({ since: sync.next_batch, full_state: "true" })
    assert.isTrue(incremental.rooms.join[roomId]!.state.events.some((e) => e.type === "m.room.create"))
    assert.equal((await a.get(`${V3}/sync?filter=999`)).status, 400)
  })

  it("reports invites, joins and leaves in their sections", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom()
    const start = await b.sync()
    await a.post(`${room(roomId)}/invite`, { user_id: b.userId })
    const invited = await b.sync({ since: start.next_batch })
    assert.property(invited.rooms.invite, roomId)
    await b.join(roomId)
    const joined = await b.sync({ since: invited.next_batch })
    assert.property(joined.rooms.join, roomId)
    assert.notProperty(joined.rooms.invite, roomId)
    // A room new to this client comes with its full state (before or in the timeline).
    const section = joined.rooms.join[roomId]!
    assert.isTrue([...section.state.events, ...section.timeline.events].some((e) => e.type === "m.room.create"))
    await a.post(`${room(roomId)}/kick`, { user_id: b.userId })
    const kicked = await b.sync({ since: joined.next_batch })
    assert.property(kicked.rooms.leave, roomId)
  })

  it("delivers receipts as ephemeral events and room account data", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    const eventId = await a.send(roomId, "read me")
    const { next_batch } = await a.sync()
    await a.ok("POST", `${room(roomId)}/receipt/m.read/${encodeURIComponent(eventId)}`, {})
    await a.ok("POST", `${room(roomId)}/read_markers`, { "m.fully_read": eventId })
    const sync = await a.sync({ since: next_batch })
    const joined = sync.rooms.join[roomId]!
    const receipt = joined.ephemeral!.events[0] as { type: string; content: Record<string, Record<string, Record<string, unknown>>> }
    assert.equal(receipt.type, "m.receipt")
    assert.property(receipt.content[eventId]?.["m.read"], a.userId)
    assert.deepInclude(joined.account_data!.events, { type: "m.fully_read", content: { event_id: eventId } })
  })
})

describe("to-device", () => {
  it("delivers to one device or all (*), once, and deletes after the client syncs past", async () => {
    const a = await newUser(hs)
    const b1 = await newUser(hs)
    const b2session = await hs.ensureUser(b1.userId.slice(1, b1.userId.indexOf(":")), "correct horse battery staple")
    const b2 = new Client(hs.baseUrl, b2session)
    const s1 = await b1.sync()
    const s2 = await b2.sync()
    const path = (txn: string) => `${V3}/sendToDevice/org.example.ping/${txn}`
    await a.ok("PUT", path("t1"), { messages: { [b1.userId]: { [b1.session!.deviceId]: { n: 1 } } } })
    // Retried transaction: not delivered twice.
    await a.ok("PUT", path("t1"), { messages: { [b1.userId]: { [b1.session!.deviceId]: { n: 1 } } } })
    await a.ok("PUT", path("t2"), { messages: { [b1.userId]: { "*": { n: 2 } } } })

    const got1 = await b1.sync({ since: s1.next_batch })
    assert.deepEqual(got1.to_device.events, [
      { sender: a.userId, type: "org.example.ping", content: { n: 1 } },
      { sender: a.userId, type: "org.example.ping", content: { n: 2 } }
    ])
    const got2 = await b2.sync({ since: s2.next_batch })
    assert.deepEqual(got2.to_device.events, [{ sender: a.userId, type: "org.example.ping", content: { n: 2 } }])

    // Re-using the old token before acknowledging redelivers (the client may have lost the response)...
    const replay = await b1.sync({ since: s1.next_batch })
    assert.lengthOf(replay.to_device.events, 2)
    // ...syncing from the newer token acknowledges, after which they are gone even for the old token.
    const next = await b1.sync({ since: got1.next_batch })
    assert.lengthOf(next.to_device.events, 0)
    const gone = await b1.sync({ since: s1.next_batch })
    assert.lengthOf(gone.to_device.events, 0)
  })
})
