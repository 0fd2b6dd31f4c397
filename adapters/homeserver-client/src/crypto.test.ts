/**
 * E2ee with two OlmMachines on an in-memory key server: keys uploaded, Megolm and Olm round trips,
 * what a sync hands the machine, what widgets never see. Late keys are in crypto.late-keys.test.ts,
 * restart from the store in crypto.restart.test.ts.
 */
import { describe, expect, it } from "vitest"
import type { ToDeviceEvent } from "@widgethost/core"
import { isCryptoInternalToDeviceType } from "./crypto.ts"
import { ALICE, BOB, encryptFromAlice, openAccount, ROOM, server, syncCrypto, timelineOf, useCryptoWorld, wire } from "./crypto.test-kit.ts"

useCryptoWorld()

describe("E2ee with two OlmMachines in memory", () => {
  it("uploads device and one-time keys at start", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    expect(server.deviceKeys.get(ALICE)?.has("ALICEDEV")).toBe(true)
    expect(server.otks.get(`${ALICE}|ALICEDEV`)?.size).toBeGreaterThan(0)
    expect(alice.identityKeys().ed25519).toMatch(/^[A-Za-z0-9+/]{43}$/)
  })

  it("megolm: a room message round-trips Alice → Bob, decrypted, with the wire envelope kept", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const event = wire(ALICE, "m.room.encrypted", await alice.encryptRoomEvent(ROOM, [ALICE, BOB], "m.room.message", { msgtype: "m.text", body: "hello" }), "$m1")
    expect(JSON.stringify(event)).not.toContain("hello")
    const { timeline, seen } = timelineOf(bob)
    await syncCrypto(bob)
    await timeline.push(ROOM, [event])
    expect(seen).toEqual([
      {
        type: "m.room.message",
        event_id: "$m1",
        room_id: ROOM,
        sender: ALICE,
        origin_server_ts: event["origin_server_ts"],
        content: { msgtype: "m.text", body: "hello" },
        unsigned: { age: 1 }
      }
    ])
    expect(timeline.stats).toMatchObject({ delivered: 1, decrypted: 1, undecryptable: 0 })
    timeline.close()
  })

  it("olm: an encrypted to-device message arrives decrypted with encrypted: true; a clear one with false", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    const { messages, unknown } = await alice.encryptToDevice("m.call.invite", { [BOB]: { "*": { call_id: "c-1" } }, [ALICE]: { "*": { call_id: "self" } } })
    expect(unknown).toEqual([])
    expect(Object.keys(messages)).toEqual([BOB]) // our own device is never a target
    expect(JSON.stringify(messages)).not.toContain("c-1") // "-" is not in base64: no accidental match
    server.deliverToDevice(ALICE, "m.room.encrypted", messages)
    // A clear message claiming to be encrypted in its payload stays encrypted: false.
    server.deliverToDevice(ALICE, "m.call.hangup", { [BOB]: { BOBDEV: { call_id: "c1", encrypted: true } } })
    const got = await syncCrypto(bob)
    expect(got).toEqual<Array<ToDeviceEvent>>([
      { type: "m.call.invite", sender: ALICE, content: { call_id: "c-1" }, encrypted: true },
      { type: "m.call.hangup", sender: ALICE, content: { call_id: "c1", encrypted: true }, encrypted: false }
    ])
  })

  it("a sync with nothing for the machine is not handed to it (no account load per sync); anything new is", async () => {
    const bob = await openAccount(BOB, "BOBDEV")
    await syncCrypto(bob) // first sync: the key counts are news
    const skippedBefore = bob.syncsSkipped
    for (let i = 0; i < 5; i++) expect(await syncCrypto(bob)).toEqual([])
    expect(bob.syncsSkipped - skippedBefore).toBe(5)
    // A device-list change is news: Alice's new device marks Bob's list changed.
    const alice = await openAccount(ALICE, "ALICEDEV")
    await syncCrypto(bob)
    expect(bob.syncsSkipped - skippedBefore).toBe(5)
    // So is a to-device message, and it still decrypts after the skipped syncs (claiming Bob's
    // one-time key also changes his key count).
    const { messages } = await alice.encryptToDevice("m.call.invite", { [BOB]: { BOBDEV: { call_id: "after-idle" } } })
    server.deliverToDevice(ALICE, "m.room.encrypted", messages)
    expect(await syncCrypto(bob)).toEqual([{ type: "m.call.invite", sender: ALICE, content: { call_id: "after-idle" }, encrypted: true }])
    expect(bob.syncsSkipped - skippedBefore).toBe(5)
    // A changed key count alone is news too.
    server.otks.get(`${BOB}|BOBDEV`)?.clear()
    await syncCrypto(bob)
    expect(bob.syncsSkipped - skippedBefore).toBe(5)
    await syncCrypto(bob) // the machine re-uploaded: counts change once more
    await syncCrypto(bob)
    expect(bob.syncsSkipped - skippedBefore).toBeGreaterThanOrEqual(6)
  })

  it("olm: a named unknown device is reported, not sent to", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    await openAccount(BOB, "BOBDEV")
    const { messages, unknown } = await alice.encryptToDevice("m.call.invite", { [BOB]: { NOPE: { a: 1 }, BOBDEV: { a: 2 } } })
    expect(unknown).toEqual([`${BOB}/NOPE`])
    expect(Object.keys(messages[BOB] ?? {})).toEqual(["BOBDEV"])
  })

  it("crypto-internal to-device types never reach widgets, in clear or encrypted", async () => {
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV")
    await encryptFromAlice(alice, ROOM, "x") // puts an olm-encrypted m.room_key in Bob's inbox
    const internal = ["m.room_key_request", "m.secret.request", "m.key.verification.request", "m.dummy", "m.room_key.withheld", "m.forwarded_room_key", "m.room_key_bundle"]
    for (const type of internal) server.deliverToDevice(ALICE, type, { [BOB]: { BOBDEV: { request_id: "r", action: "request" } } })
    const { messages } = await alice.encryptToDevice("m.key.verification.request", { [BOB]: { BOBDEV: { transaction_id: "t", methods: [] } } })
    server.deliverToDevice(ALICE, "m.room.encrypted", messages)
    server.deliverToDevice(ALICE, "org.example.visible", { [BOB]: { BOBDEV: { ok: true } } })
    const inbox = server.inbox.get(`${BOB}|BOBDEV`) ?? []
    expect(inbox.some((e) => e["type"] === "m.room.encrypted")).toBe(true)
    const got = await syncCrypto(bob)
    expect(got.map((e) => e.type)).toEqual(["org.example.visible"])
    for (const type of [...internal, "m.room_key", "m.secret.send", "m.key.verification.start", "m.room.encrypted"]) expect(isCryptoInternalToDeviceType(type)).toBe(true)
    expect(isCryptoInternalToDeviceType("m.call.invite")).toBe(false)
  })
})
