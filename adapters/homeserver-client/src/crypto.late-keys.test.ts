/**
 * E2ee with a decrypting timeline: events whose room key comes late are held, then delivered in
 * order; the hold bounds; an event that can never decrypt; held events across a restore.
 */
import { describe, expect, it } from "vitest"
import { ManualClock } from "@widgethost/testing"
import { ALICE, BOB, encryptFromAlice, openAccount, ROOM, ROOM2, server, syncCrypto, timelineOf, useCryptoWorld, wire } from "./crypto.test-kit.ts"

useCryptoWorld()

describe("E2ee: late room keys", () => {
  it("late room key: the event and the ones behind it are held, then delivered in order once the key arrives", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const clock = new ManualClock(1_000_000)
    const { timeline, seen, reports } = timelineOf(bob, { clock, maxHoldMs: 60_000 })
    const e1 = await encryptFromAlice(alice, ROOM, "one")
    const c2 = wire(ALICE, "m.room.member", { membership: "join" })
    const e3 = await encryptFromAlice(alice, ROOM, "three")
    const other = wire(ALICE, "m.room.message", { msgtype: "m.text", body: "other room, clear" })
    // The key is still in Bob's inbox: nothing of ROOM can be delivered yet.
    await timeline.push(ROOM, [e1, c2, e3])
    await timeline.push(ROOM2, [other])
    expect(seen.map((e) => e.event_id)).toEqual([other["event_id"]])
    expect(timeline.waiting).toBe(3)
    clock.advance(30_000)
    await timeline.idle()
    expect(seen).toHaveLength(1)
    // The key arrives by to-device; the callback releases the room, in order, once each.
    await syncCrypto(bob)
    await timeline.idle()
    expect(seen.map((e) => [e.event_id, e.type, e.content["body"]])).toEqual([
      [other["event_id"], "m.room.message", "other room, clear"],
      [e1["event_id"], "m.room.message", "one"],
      [c2["event_id"], "m.room.member", undefined],
      [e3["event_id"], "m.room.message", "three"]
    ])
    expect(reports).toEqual([])
    // Pushing the same events again is the sync layer's business (it dedupes); a second key
    // callback must not deliver anything twice.
    await timeline.keysArrived([{ roomId: ROOM, sessionId: "whatever" }])
    expect(seen).toHaveLength(4)
    timeline.close()
  })

  it("a key that comes after the hold bound: reported, later events go ahead, then delivered late exactly once", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const clock = new ManualClock(1_000_000)
    const { timeline, seen, reports } = timelineOf(bob, { clock, maxHoldMs: 5_000, maxHeldBehind: 100 })
    const e1 = await encryptFromAlice(alice, ROOM, "late")
    const withheldKey = server.sync(BOB, "BOBDEV") // Bob does not get the key yet
    const c2 = wire(ALICE, "m.room.topic", { topic: "t" })
    await timeline.push(ROOM, [e1, c2])
    expect(seen).toEqual([])
    clock.advance(5_000) // the timer fires: bound reached
    await timeline.idle()
    expect(seen.map((e) => e.event_id)).toEqual([c2["event_id"]])
    expect(reports).toEqual([{ roomId: ROOM, eventId: e1["event_id"], kind: "held-too-long", reason: "no room key after 5000 ms" }])
    await bob.receiveSync(withheldKey)
    await timeline.idle()
    expect(seen.map((e) => [e.event_id, e.content["body"]])).toEqual([
      [c2["event_id"], undefined],
      [e1["event_id"], "late"]
    ])
    expect(timeline.stats.lateDelivered).toBe(1)
    timeline.close()
  })

  it("the count bound releases a room held up by too many later events", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const { timeline, seen, reports } = timelineOf(bob, { clock: new ManualClock(1_000_000), maxHoldMs: 1e9, maxHeldBehind: 2 }) // at most 2 wait behind it
    const e1 = await encryptFromAlice(alice, ROOM, "never")
    server.sync(BOB, "BOBDEV") // the key is lost
    const later = [1, 2, 3].map((i) => wire(ALICE, "m.room.message", { msgtype: "m.text", body: `clear ${i}` }))
    await timeline.push(ROOM, [e1, ...later.slice(0, 2)])
    expect(seen).toEqual([])
    await timeline.push(ROOM, [later[2]!])
    expect(seen.map((e) => e.content["body"])).toEqual(["clear 1", "clear 2", "clear 3"])
    expect(reports.map((r) => [r.eventId, r.kind])).toEqual([[e1["event_id"], "held-too-long"]])
    timeline.close()
  })

  it("an event that can never decrypt is reported, never delivered as ciphertext", async () => {
    const bob = await openAccount(BOB, "BOBDEV")
    const { timeline, seen, reports } = timelineOf(bob)
    const redacted = wire(ALICE, "m.room.encrypted", {})
    const garbage = wire(ALICE, "m.room.encrypted", { algorithm: "m.megolm.v1.aes-sha2", ciphertext: 42, session_id: "s", sender_key: "k", device_id: "D" })
    const clear = wire(ALICE, "m.room.message", { body: "fine" })
    await timeline.push(ROOM, [redacted, garbage, clear])
    expect(seen.map((e) => e.event_id)).toEqual([clear["event_id"]])
    expect(reports.map((r) => [r.eventId, r.kind])).toEqual([
      [redacted["event_id"], "failed"],
      [garbage["event_id"], "failed"]
    ])
    timeline.close()
  })

  it("held events survive in the timeline's saved state and are delivered after a restore", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const first = timelineOf(bob)
    const e1 = await encryptFromAlice(alice, ROOM, "kept")
    await first.timeline.push(ROOM, [e1])
    const state = first.timeline.state()
    first.timeline.close()
    expect(state.rooms[ROOM]).toHaveLength(1)
    const second = timelineOf(bob)
    await second.timeline.restore(JSON.parse(JSON.stringify(state)) as typeof state)
    expect(second.seen).toEqual([])
    await syncCrypto(bob)
    await second.timeline.idle()
    expect(second.seen.map((e) => e.content["body"])).toEqual(["kept"])
    expect(first.seen).toEqual([])
    second.timeline.close()
  })
})
