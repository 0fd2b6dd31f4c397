import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { ClientEvent, MatrixErrorBody } from "./testing.ts"
import { newUser, room, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  await hs.close()
})

const stateOf = async (client: Awaited<ReturnType<typeof newUser>>, roomId: string) =>
  (await client.get<Array<ClientEvent>>(`${room(roomId)}/state`)).body

describe("createRoom", () => {
  it("creates the events a real server creates, plus initial_state such as encryption", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({
      name: "Team",
      topic: "Plans",
      invite: [b.userId],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
      power_level_content_override: { events_default: 10 }
    })
    assert.match(roomId, /^![^:]+:localhost$/)
    const state = await stateOf(a, roomId)
    const find = (type: string, key = "") => state.find((e) => e.type === type && e.state_key === key)
    assert.equal(find("m.room.create")?.content.room_version, "10")
    assert.equal(find("m.room.create")?.content.creator, a.userId)
    assert.equal(find("m.room.member", a.userId)?.content.membership, "join")
    assert.equal(find("m.room.member", b.userId)?.content.membership, "invite")
    const pl = find("m.room.power_levels")!.content as { users: Record<string, number>; events_default: number; state_default: number }
    assert.equal(pl.users[a.userId], 100)
    assert.equal(pl.events_default, 10)
    assert.equal(pl.state_default, 50)
    assert.equal(find("m.room.join_rules")?.content.join_rule, "invite")
    assert.equal(find("m.room.history_visibility")?.content.history_visibility, "shared")
    assert.deepEqual(find("m.room.encryption")?.content, { algorithm: "m.megolm.v1.aes-sha2" })
    assert.equal(find("m.room.name")?.content.name, "Team")
    assert.equal(find("m.room.topic")?.content.topic, "Plans")

    const single = await a.get(`${room(roomId)}/state/m.room.encryption/`)
    assert.deepEqual(single.body, { algorithm: "m.megolm.v1.aes-sha2" })
    const missing = await a.get<MatrixErrorBody>(`${room(roomId)}/state/m.room.avatar/`)
    assert.equal(missing.status, 404)
    assert.equal(missing.body.errcode, "M_NOT_FOUND")
  })

  it("publishes public rooms in the directory and resolves their alias", async () => {
    const a = await newUser(hs)
    const roomId = await a.createRoom({ visibility: "public", room_alias_name: "lobby", name: "Lobby" })
    const alias = await a.get<{ room_id: string; servers: Array<string> }>(`${V3}/directory/room/${encodeURIComponent("#lobby:localhost")}`)
    assert.deepEqual(alias.body, { room_id: roomId, servers: ["localhost"] })
    const list = await a.get<{ chunk: Array<{ room_id: string; name: string; num_joined_members: number; join_rule: string }> }>(`${V3}/publicRooms`)
    assert.deepEqual(
      list.body.chunk.map((r) => [r.room_id, r.name, r.num_joined_members, r.join_rule]),
      [[roomId, "Lobby", 1, "public"]]
    )
    const taken = await a.post<MatrixErrorBody>(`${V3}/createRoom`, { room_alias_name: "lobby" })
    assert.equal(taken.status, 400)
    assert.equal(taken.body.errcode, "M_ROOM_IN_USE")
    const privateRoom = await a.createRoom()
    const after = await a.get<{ chunk: Array<{ room_id: string }> }>(`${V3}/publicRooms`)
    assert.notInclude(
      after.body.chunk.map((r) => r.room_id),
      privateRoom
    )
    const unknownAlias = await a.get<MatrixErrorBody>(`${V3}/directory/room/${encodeURIComponent("#nope:localhost")}`)
    assert.equal(unknownAlias.status, 404)
  })

  it("refuses room versions it does not know", async () => {
    const a = await newUser(hs)
    const res = await a.post<MatrixErrorBody>(`${V3}/createRoom`, { room_version: "99" })
    assert.equal(res.status, 400)
    assert.equal(res.body.errcode, "M_UNSUPPORTED_ROOM_VERSION")
  })
})

describe("membership rules", () => {
  it("lets anyone join a public room, by id or alias", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const c = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat", room_alias_name: "open" })
    await b.join(roomId)
    await c.join("#open:localhost")
    const joined = await a.get<{ joined: Record<string, unknown> }>(`${room(roomId)}/joined_members`)
    assert.sameMembers(Object.keys(joined.body.joined), [a.userId, b.userId, c.userId])
    assert.deepEqual((await b.get(`${V3}/joined_rooms`)).body, { joined_rooms: [roomId] })
  })

  it("requires an invite for invite-only rooms", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const roomId = await a.createRoom({ preset: "private_chat" })
    const refused = await b.post<MatrixErrorBody>(`${room(roomId)}/join`)
    assert.equal(refused.status, 403)
    assert.equal(refused.body.errcode, "M_FORBIDDEN")
    assert.equal((await a.post(`${room(roomId)}/invite`, { user_id: b.userId })).status, 200)
    const invited = await b.sync()
    assert.property(invited.rooms.invite, roomId)
    assert.include(
      invited.rooms.invite[roomId]!.invite_state.events.map((e) => e.type),
      "m.room.join_rules"
    )
    assert.equal((await b.post(`${room(roomId)}/join`)).status, 200)
    const unknownUser = await a.post<MatrixErrorBody>(`${room(roomId)}/invite`, { user_id: "@ghost:localhost" })
    assert.equal(unknownUser.status, 404)
  })

  it("refuses to send, and to invite, when not joined; a left user can no longer send", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const c = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    const notJoined = await b.put<MatrixErrorBody>(`${room(roomId)}/send/m.room.message/x`, { body: "hi" })
    assert.equal(notJoined.status, 403)
    assert.equal(notJoined.body.errcode, "M_FORBIDDEN")
    assert.equal((await b.post(`${room(roomId)}/invite`, { user_id: c.userId })).status, 403)
    await b.join(roomId)
    await b.send(roomId, "hello")
    const before = await b.sync()
    assert.equal((await b.post(`${room(roomId)}/leave`)).status, 200)
    assert.equal((await b.put(`${room(roomId)}/send/m.room.message/y`, { body: "again" })).status, 403)
    await a.send(roomId, "after b left")
    const left = await b.sync({ since: before.next_batch })
    assert.notProperty(left.rooms.join, roomId)
    // The leave is reported once, with the leave event, and nothing after it.
    assert.deepEqual(
      left.rooms.leave[roomId]!.timeline.events.map((e) => [e.type, e.content.membership]),
      [["m.room.member", "leave"]]
    )
    assert.notProperty((await b.sync()).rooms.leave, roomId)
    assert.property((await b.sync({ filter: JSON.stringify({ room: { include_leave: true } }) })).rooms.leave, roomId)
  })

  it("enforces kick and ban power levels", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const c = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    await c.join(roomId)
    assert.equal((await b.post(`${room(roomId)}/kick`, { user_id: c.userId })).status, 403)
    assert.equal((await a.post(`${room(roomId)}/kick`, { user_id: c.userId, reason: "bye" })).status, 200)
    assert.equal((await a.post(`${room(roomId)}/ban`, { user_id: b.userId })).status, 200)
    const banned = await b.post<MatrixErrorBody>(`${room(roomId)}/join`)
    assert.equal(banned.status, 403)
    assert.equal((await a.post(`${room(roomId)}/unban`, { user_id: b.userId })).status, 200)
    assert.equal((await b.post(`${room(roomId)}/join`)).status, 200)
    const members = await a.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/members`)
    assert.deepEqual(
      Object.fromEntries(members.body.chunk.map((e) => [e.state_key, e.content.membership])),
      { [a.userId]: "join", [b.userId]: "join", [c.userId]: "leave" }
    )
    const onlyJoined = await a.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/members?membership=join`)
    assert.lengthOf(onlyJoined.body.chunk, 2)
  })
})
