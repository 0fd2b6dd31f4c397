import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { RoomEvent } from "@widgethost/core"
import { startInEncryptedRoom } from "../src/engine-fixture.ts"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { readMissedEvents } from "@widgethost/homeserver-client"

/*
 * Reading what a widget missed, over HTTP against the real embedded homeserver, through the real
 * homeserver port (its room positions, its decryption).
 */

let hs: EmbeddedHomeserver
const ports: Array<MatrixHomeserver> = []
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  for (const port of ports.splice(0)) await port.stop()
  await hs.close()
})

const connect = async (user: string, dataDir?: string) => {
  await hs.ensureUser(user, `${user}-password`)
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user, password: `${user}-password` }, sync: { timeoutMs: 500 }, ...(dataDir === undefined ? {} : { dataDir }) })
  ports.push(port)
  return port
}

const say = async (port: MatrixHomeserver, roomId: string, body: string) =>
  (await Effect.runPromise(port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))).eventId!

/** Waits until the port has handed `eventId` to its subscribers in `roomId`. */
const reached = async (port: MatrixHomeserver, roomId: string, eventId: string) => {
  while (port.roomPositions().get(roomId) !== eventId) await port.nextSync()
}

const bodies = (events: ReadonlyArray<RoomEvent>) => events.map((e) => e.content["body"])
const messages = (e: RoomEvent) => e.type === "m.room.message"

describe("missed events", () => {
  it("the events after what the widget has, up to the port's position, oldest first; capped, with what was skipped", async () => {
    const alice = await connect("alice")
    const { room_id: roomId } = await alice.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
    const synced = alice.nextSync()
    alice.start()
    await synced
    const ids: Array<string> = []
    for (let n = 0; n < 12; n++) ids.push(await say(alice, roomId, `m${n}`))
    await reached(alice, roomId, ids[11]!)
    const upTo = alice.roomPositions().get(roomId)!
    const has = new Set(ids.slice(0, 4))
    const base = { roomId, upTo, seen: (id: string) => has.has(id), keep: messages }

    assert.deepEqual(bodies((await readMissedEvents(alice, base)).events), ["m4", "m5", "m6", "m7", "m8", "m9", "m10", "m11"])
    assert.deepEqual(await readMissedEvents(alice, { ...base, upTo: ids[3]! }), { events: [], skipped: 0, undecryptable: 0 }, "nothing missed")
    const capped = await readMissedEvents(alice, { ...base, maxEvents: 3 })
    assert.deepEqual(bodies(capped.events), ["m9", "m10", "m11"])
    assert.equal(capped.skipped, 5)
    const even = await readMissedEvents(alice, { ...base, keep: (e) => messages(e) && Number(String(e.content["body"]).slice(1)) % 2 === 0 })
    assert.deepEqual(bodies(even.events), ["m4", "m6", "m8", "m10"])
    const short = await readMissedEvents(alice, { ...base, maxScan: 2 })
    assert.deepEqual(bodies(short.events), ["m10", "m11"])
    assert.isNull(short.skipped, "stopped before what the widget has: how much is missing is unknown")
    const never = await readMissedEvents(alice, { ...base, seen: () => false })
    assert.equal(never.events.length, 12, "to the room's first event")
    assert.equal(never.skipped, 0)
  })

  it("the port's position: the newest history after its first sync, then each event it hands over, kept across a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "widgethost-positions-"))
    try {
      const alice = await connect("alice", dataDir)
      const { room_id: roomId } = await alice.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
      const history = await say(alice, roomId, "history")
      const synced = alice.nextSync()
      alice.start()
      await synced
      assert.equal(alice.roomPositions().get(roomId), history, "history is passed over, and the position is after it")
      const news = await say(alice, roomId, "news")
      await reached(alice, roomId, news)
      await alice.stop()
      const again = await connect("alice", dataDir)
      assert.equal(again.roomPositions().get(roomId), news)
    } finally {
      rmSync(dataDir, { recursive: true, force: true })
    }
  })

  it("in an encrypted room, decrypted", async () => {
    const alice = await connect("alice")
    const bob = await connect("bob")
    const roomId = await startInEncryptedRoom(alice, bob)
    const first = await say(bob, roomId, "seen")
    await say(bob, roomId, "secret 1")
    const upTo = await say(bob, roomId, "secret 2")
    await reached(alice, roomId, upTo)
    const raw = await alice.http.request<{ type: string }>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/event/${upTo}` })
    assert.equal(raw.type, "m.room.encrypted")
    const missed = await readMissedEvents(alice, { roomId, upTo, seen: (id) => id === first, keep: messages })
    assert.deepEqual(bodies(missed.events), ["secret 1", "secret 2"])
    assert.equal(missed.undecryptable, 0)
  })
})
