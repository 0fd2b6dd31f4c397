import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { ClientEvent, MatrixErrorBody } from "./testing.ts"
import { Client, newUser, room } from "./testing.ts"

let hs: EmbeddedHomeserver
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  await hs.close()
})

interface Messages {
  readonly start: string
  readonly end?: string
  readonly chunk: ReadonlyArray<ClientEvent>
}

const bodies = (events: ReadonlyArray<ClientEvent>) => events.map((e) => e.content.body)

describe("send", () => {
  it("is idempotent per access token and transaction id", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    const path = `${room(roomId)}/send/m.room.message/txn-1`
    const [first, second] = await Promise.all([a.put<{ event_id: string }>(path, { body: "once" }), a.put<{ event_id: string }>(path, { body: "once" })])
    const third = await a.put<{ event_id: string }>(path, { body: "once" })
    assert.equal(first.status, 200)
    assert.equal(first.body.event_id, second.body.event_id)
    assert.equal(first.body.event_id, third.body.event_id)
    // Another session of the same user is another transaction scope.
    const other = new Client(hs.baseUrl, await hs.ensureUser(a.userId.slice(1, a.userId.indexOf(":")), "correct horse battery staple"))
    const fromOther = await other.put<{ event_id: string }>(path, { body: "once" })
    assert.notEqual(fromOther.body.event_id, first.body.event_id)
    const messages = await a.get<Messages>(`${room(roomId)}/messages?dir=b&limit=50`)
    assert.deepEqual(
      bodies(messages.body.chunk.filter((e) => e.type === "m.room.message")),
      ["once", "once"]
    )
    // The sender's own session sees its transaction id (that is how clients match local echoes).
    const mine = messages.body.chunk.find((e) => e.event_id === first.body.event_id)!
    assert.equal(mine.unsigned?.transaction_id, "txn-1")
    const theirs = (await other.get<ClientEvent>(`${room(roomId)}/event/${encodeURIComponent(first.body.event_id)}`)).body
    assert.notProperty(theirs.unsigned, "transaction_id")
  })
})

describe("state and power levels", () => {
  it("needs state_default (50) for state events, which the creator (100) has and a member (0) lacks", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const byMember = await b.put<MatrixErrorBody>(`${room(roomId)}/state/org.example.thing/k`, { v: 1 })
    assert.equal(byMember.status, 403)
    assert.equal(byMember.body.errcode, "M_FORBIDDEN")
    const byCreator = await a.put<{ event_id: string }>(`${room(roomId)}/state/org.example.thing/k`, { v: 1 })
    assert.equal(byCreator.status, 200)
    assert.deepEqual((await b.get(`${room(roomId)}/state/org.example.thing/k`)).body, { v: 1 })
    const asEvent = await b.get<ClientEvent>(`${room(roomId)}/state/org.example.thing/k?format=event`)
    assert.equal(asEvent.body.event_id, byCreator.body.event_id)
    // Same state again: no new event.
    const again = await a.put<{ event_id: string }>(`${room(roomId)}/state/org.example.thing/k`, { v: 1 })
    assert.equal(again.body.event_id, byCreator.body.event_id)
    // State keyed by a user id belongs to that user.
    assert.equal((await a.put(`${room(roomId)}/state/org.example.thing/${encodeURIComponent(b.userId)}`, {})).status, 403)

    // Granting the member 50 lets them; they cannot grant beyond their own level.
    const pl = (await a.get<{ users: Record<string, number> }>(`${room(roomId)}/state/m.room.power_levels`)).body
    assert.equal((await a.put(`${room(roomId)}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [b.userId]: 50 } })).status, 200)
    assert.equal((await b.put(`${room(roomId)}/state/org.example.thing/k`, { v: 2 })).status, 200)
    const escalate = await b.put(`${room(roomId)}/state/m.room.power_levels`, { ...pl, users: { ...pl.users, [b.userId]: 100 } })
    assert.equal(escalate.status, 403)
  })

  it("needs events_default for messages when raised", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat", power_level_content_override: { events_default: 20 } })
    await b.join(roomId)
    assert.equal((await b.put(`${room(roomId)}/send/m.room.message/m1`, { body: "x" })).status, 403)
    assert.equal((await a.put(`${room(roomId)}/send/m.room.message/m1`, { body: "x" })).status, 200)
  })
})

describe("/messages", () => {
  it("paginates backwards and forwards, with `end` only while more remain", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    for (let i = 0; i < 7; i++) await a.send(roomId, `m${i}`)
    const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.message"] }))
    const page = (q: string) => a.get<Messages>(`${room(roomId)}/messages?filter=${filter}&${q}`).then((r) => r.body)

    const b1 = await page("dir=b&limit=3")
    assert.deepEqual(bodies(b1.chunk), ["m6", "m5", "m4"])
    assert.isString(b1.end)
    const b2 = await page(`dir=b&limit=3&from=${b1.end}`)
    assert.deepEqual(bodies(b2.chunk), ["m3", "m2", "m1"])
    const b3 = await page(`dir=b&limit=3&from=${b2.end}`)
    assert.deepEqual(bodies(b3.chunk), ["m0"])
    assert.isUndefined(b3.end)

    const f1 = await page("dir=f&limit=4")
    assert.deepEqual(bodies(f1.chunk), ["m0", "m1", "m2", "m3"])
    const f2 = await page(`dir=f&limit=4&from=${f1.end}`)
    assert.deepEqual(bodies(f2.chunk), ["m4", "m5", "m6"])
    assert.isUndefined(f2.end)
    // Exactly at the boundary: a full page and nothing after it.
    const exact = await page("dir=b&limit=7")
    assert.lengthOf(exact.chunk, 7)
    assert.isUndefined(exact.end)

    // Tokens compose across directions: forwards from a backwards token returns what followed it.
    const forwardAgain = await page(`dir=f&limit=10&from=${b1.end}`)
    assert.deepEqual(bodies(forwardAgain.chunk), ["m4", "m5", "m6"])
    const bounded = await page(`dir=b&from=${b1.start}&to=${b2.end}&limit=10`)
    assert.deepEqual(bodies(bounded.chunk), ["m6", "m5", "m4", "m3", "m2", "m1"])

    // limit=0 (was a 500): an empty page whose `end` continues exactly where it stands.
    const none = await page("dir=b&limit=0")
    assert.deepEqual(none.chunk, [])
    assert.deepEqual(bodies((await page(`dir=b&limit=2&from=${none.end}`)).chunk), ["m6", "m5"])
    const noneForward = await page("dir=f&limit=0")
    assert.deepEqual(noneForward.chunk, [])
    assert.deepEqual(bodies((await page(`dir=f&limit=2&from=${noneForward.end}`)).chunk), ["m0", "m1"])

    const notTypes = await a.get<Messages>(
      `${room(roomId)}/messages?dir=f&limit=100&filter=${encodeURIComponent(JSON.stringify({ not_types: ["m.room.message"] }))}`
    )
    assert.isTrue(notTypes.body.chunk.length > 0 && notTypes.body.chunk.every((e) => e.type !== "m.room.message"))
    assert.equal((await a.get<MatrixErrorBody>(`${room(roomId)}/messages`)).body.errcode, "M_MISSING_PARAM")
  })

  it("hides history from non-members and shows members only what visibility allows", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat", initial_state: [{ type: "m.room.history_visibility", content: { history_visibility: "joined" } }] })
    await a.send(roomId, "before b")
    assert.equal((await b.get(`${room(roomId)}/messages?dir=b`)).status, 403)
    await b.join(roomId)
    await a.send(roomId, "after b")
    const seen = await b.get<Messages>(`${room(roomId)}/messages?dir=b&limit=50`)
    assert.deepEqual(bodies(seen.body.chunk.filter((e) => e.type === "m.room.message")), ["after b"])
  })
})

describe("events, context, relations and redaction", () => {
  it("serves single events and their context", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    const ids: Array<string> = []
    for (let i = 0; i < 5; i++) ids.push(await a.send(roomId, `c${i}`))
    const event = await a.get<ClientEvent>(`${room(roomId)}/event/${encodeURIComponent(ids[2]!)}`)
    assert.equal(event.body.content.body, "c2")
    assert.equal(event.body.room_id, roomId)
    const missing = await a.get<MatrixErrorBody>(`${room(roomId)}/event/${encodeURIComponent("$nope")}`)
    assert.equal(missing.status, 404)
    const filter = encodeURIComponent(JSON.stringify({ types: ["m.room.message"] }))
    const context = await a.get<{ events_before: Array<ClientEvent>; events_after: Array<ClientEvent>; event: ClientEvent; state: Array<ClientEvent> }>(
      `${room(roomId)}/context/${encodeURIComponent(ids[2]!)}?limit=4&filter=${filter}`
    )
    assert.equal(context.body.event.event_id, ids[2])
    assert.deepEqual(bodies(context.body.events_before), ["c1", "c0"])
    assert.deepEqual(bodies(context.body.events_after), ["c3", "c4"])
    assert.isTrue(context.body.state.some((e) => e.type === "m.room.create"))
    // limit=0 (was a 500): the event alone.
    const alone = await a.get<{ events_before: Array<ClientEvent>; events_after: Array<ClientEvent>; event: ClientEvent }>(`${room(roomId)}/context/${encodeURIComponent(ids[2]!)}?limit=0`)
    assert.equal(alone.status, 200)
    assert.deepEqual([alone.body.events_before, alone.body.events_after, alone.body.event.event_id], [[], [], ids[2]])
  })

  it("lists relations, filtered by relation type and event type, paginated", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom()
    const parent = await a.send(roomId, "parent")
    const put = (type: string, txn: string, content: object) =>
      a.ok<{ event_id: string }>("PUT", `${room(roomId)}/send/${type}/${txn}`, content).then((r) => r.event_id)
    const r1 = await put("m.reaction", "r1", { "m.relates_to": { rel_type: "m.annotation", event_id: parent, key: "👍" } })
    const t1 = await put("m.room.message", "t1", { body: "in thread", "m.relates_to": { rel_type: "m.thread", event_id: parent } })
    const r2 = await put("m.reaction", "r2", { "m.relates_to": { rel_type: "m.annotation", event_id: parent, key: "🎉" } })
    await a.send(roomId, "unrelated")
    const base = `/_matrix/client/v1/rooms/${encodeURIComponent(roomId)}/relations/${encodeURIComponent(parent)}`
    type Relations = { chunk: Array<ClientEvent>; next_batch?: string }
    const all = await a.get<Relations>(base)
    assert.deepEqual(
      all.body.chunk.map((e) => e.event_id),
      [r2, t1, r1]
    )
    assert.isUndefined(all.body.next_batch)
    const annotations = await a.get<Relations>(`${base}/m.annotation`)
    assert.deepEqual(
      annotations.body.chunk.map((e) => e.event_id),
      [r2, r1]
    )
    const typed = await a.get<Relations>(`${base}/m.thread/m.room.message`)
    assert.deepEqual(
      typed.body.chunk.map((e) => e.event_id),
      [t1]
    )
    const page1 = await a.get<Relations>(`${base}?limit=2`)
    assert.lengthOf(page1.body.chunk, 2)
    assert.isString(page1.body.next_batch)
    const page2 = await a.get<Relations>(`${base}?limit=2&from=${page1.body.next_batch}`)
    assert.deepEqual(
      page2.body.chunk.map((e) => e.event_id),
      [r1]
    )
    const forwards = await a.get<Relations>(`${base}?dir=f`)
    assert.deepEqual(
      forwards.body.chunk.map((e) => e.event_id),
      [r1, t1, r2]
    )
  })

  it("redacts: strips content by the algorithm, keeps what it must, links the redaction", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const message = await b.send(roomId, "secret")
    const own = await b.put<{ event_id: string }>(`${room(roomId)}/redact/${encodeURIComponent(message)}/red1`, { reason: "oops" })
    assert.equal(own.status, 200)
    const again = await b.put<{ event_id: string }>(`${room(roomId)}/redact/${encodeURIComponent(message)}/red1`, { reason: "oops" })
    assert.equal(again.body.event_id, own.body.event_id)
    const redacted = (await a.get<ClientEvent>(`${room(roomId)}/event/${encodeURIComponent(message)}`)).body
    assert.deepEqual(redacted.content, {})
    assert.equal(redacted.unsigned?.redacted_because?.event_id, own.body.event_id)
    assert.equal(redacted.unsigned?.redacted_because?.content.reason, "oops")

    // Others' events need the redact level (50); the creator has it.
    const byA = await a.send(roomId, "by a")
    assert.equal((await b.put(`${room(roomId)}/redact/${encodeURIComponent(byA)}/red2`, {})).status, 403)
    // Redacting power levels keeps the keys the algorithm protects.
    const plEvent = (await a.get<ClientEvent>(`${room(roomId)}/state/m.room.power_levels?format=event`)).body
    assert.equal((await a.put(`${room(roomId)}/redact/${encodeURIComponent(plEvent.event_id)}/red3`, {})).status, 200)
    const pl = (await a.get<Record<string, unknown>>(`${room(roomId)}/state/m.room.power_levels`)).body
    assert.property(pl, "users")
    assert.property(pl, "state_default")
    assert.notProperty(pl, "notifications")
  })
})
