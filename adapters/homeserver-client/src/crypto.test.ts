import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { ManualClock } from "@widgethost/testing"
import type { RoomEvent, ToDeviceEvent } from "@widgethost/core"
import { type CryptoHttp, E2ee, type RawEvent, type UndecryptableReport, isCryptoInternalToDeviceType } from "./crypto.ts"
import { DecryptingTimeline } from "./decrypting-timeline.ts"
import type { HttpRequest } from "./matrix-http.ts"

type Json = Record<string, unknown>
type Messages = Record<string, Record<string, Json>>

/**
 * The parts of a homeserver that E2EE needs, in memory: device keys, one-time and fallback keys,
 * to-device inboxes and device-list changes. Each account talks to it through a {@link CryptoHttp}.
 */
class KeyServer {
  readonly deviceKeys = new Map<string, Map<string, Json>>()
  readonly otks = new Map<string, Map<string, Json>>()
  readonly fallback = new Map<string, Json>()
  readonly inbox = new Map<string, Array<Json>>()
  readonly changed = new Map<string, Set<string>>()
  readonly requests: Array<string> = []

  http(userId: string, deviceId: string): CryptoHttp {
    const me = `${userId}|${deviceId}`
    return {
      request: async <T>(req: HttpRequest): Promise<T> => {
        await Promise.resolve()
        this.requests.push(`${userId} ${req.method} ${req.path}`)
        const body = (typeof req.body === "string" ? JSON.parse(req.body) : req.body) as Json
        const route = req.path.replace("/_matrix/client/v3", "")
        if (route === "/keys/upload") {
          if (body["device_keys"] !== undefined) {
            const mine = this.deviceKeys.get(userId) ?? new Map<string, Json>()
            mine.set(deviceId, body["device_keys"] as Json)
            this.deviceKeys.set(userId, mine)
            for (const k of this.inbox.keys()) if (k !== me) this.markChanged(k, userId)
          }
          const otks = this.otks.get(me) ?? new Map<string, Json>()
          for (const [id, key] of Object.entries((body["one_time_keys"] ?? {}) as Json)) otks.set(id, key as Json)
          this.otks.set(me, otks)
          if (body["fallback_keys"] !== undefined) this.fallback.set(me, body["fallback_keys"] as Json)
          this.inbox.set(me, this.inbox.get(me) ?? [])
          return { one_time_key_counts: { signed_curve25519: otks.size } } as T
        }
        if (route === "/keys/query") {
          const out: Record<string, Json> = {}
          for (const user of Object.keys(body["device_keys"] as Json)) out[user] = Object.fromEntries(this.deviceKeys.get(user) ?? [])
          return { device_keys: out, failures: {} } as T
        }
        if (route === "/keys/claim") {
          const out: Record<string, Record<string, Json>> = {}
          for (const [user, devices] of Object.entries(body["one_time_keys"] as Record<string, Json>))
            for (const device of Object.keys(devices)) {
              const pool = this.otks.get(`${user}|${device}`)
              const first = pool?.keys().next().value
              if (pool !== undefined && first !== undefined) {
                ;(out[user] ??= {})[device] = { [first]: pool.get(first) }
                pool.delete(first)
              } else {
                const fb = this.fallback.get(`${user}|${device}`)
                if (fb !== undefined) (out[user] ??= {})[device] = fb
              }
            }
          return { one_time_keys: out, failures: {} } as T
        }
        const toDevice = /^\/sendToDevice\/([^/]+)\/([^/]+)$/.exec(route)
        if (toDevice !== null) {
          this.deliverToDevice(userId, decodeURIComponent(toDevice[1]!), (body["messages"] ?? {}) as Messages)
          return {} as T
        }
        if (route === "/keys/signatures/upload") return { failures: {} } as T
        throw new Error(`in-memory key server: no route for ${req.method} ${req.path}`)
      }
    }
  }

  deliverToDevice(sender: string, type: string, messages: Messages): void {
    for (const [user, devices] of Object.entries(messages))
      for (const [device, content] of Object.entries(devices)) {
        const targets = device === "*" ? Array.from(this.deviceKeys.get(user)?.keys() ?? []) : [device]
        for (const d of targets) this.inbox.get(`${user}|${d}`)?.push({ type, sender, content })
      }
  }

  /** What the next /sync would carry for this device's crypto, consumed. */
  sync(userId: string, deviceId: string) {
    const me = `${userId}|${deviceId}`
    const toDevice = this.inbox.get(me) ?? []
    this.inbox.set(me, [])
    const changed = Array.from(this.changed.get(me) ?? [])
    this.changed.delete(me)
    return { toDevice, changed, oneTimeKeyCounts: { signed_curve25519: this.otks.get(me)?.size ?? 0 }, unusedFallbackKeyTypes: ["signed_curve25519"] }
  }

  private markChanged(device: string, user: string) {
    const set = this.changed.get(device) ?? new Set<string>()
    set.add(user)
    this.changed.set(device, set)
  }
}

const ALICE = "@alice:test"
const BOB = "@bob:test"
const ROOM = "!room:test"
const ROOM2 = "!other:test"

let server: KeyServer
let dir: string
const opened: Array<E2ee> = []

const openAccount = async (userId: string, deviceId: string, storeFile?: string) => {
  const e2ee = await E2ee.open({ userId, deviceId, http: server.http(userId, deviceId), ...(storeFile === undefined ? {} : { storeFile }) })
  opened.push(e2ee)
  await e2ee.processOutgoingRequests()
  return e2ee
}

/** Feeds the device its pending sync crypto input; returns what widgets would see. */
const syncCrypto = (e2ee: E2ee) => e2ee.receiveSync(server.sync(e2ee.userId, e2ee.deviceId))

let eventCounter = 0
const wire = (sender: string, type: string, content: Json, id = `$ev${++eventCounter}`): RawEvent => ({
  type,
  event_id: id,
  sender,
  origin_server_ts: 1_700_000_000_000 + eventCounter,
  content,
  unsigned: { age: 1 }
})

/** Alice encrypts for Alice and Bob; the room key goes to Bob's to-device inbox. */
const encryptFromAlice = async (alice: E2ee, roomId: string, body: string, id?: string) =>
  wire(ALICE, "m.room.encrypted", await alice.encryptRoomEvent(roomId, [ALICE, BOB], "m.room.message", { msgtype: "m.text", body }), id)

const timelineOf = (bob: E2ee, options: ConstructorParameters<typeof DecryptingTimeline>[2] = {}) => {
  const seen: Array<RoomEvent> = []
  const reports: Array<UndecryptableReport> = []
  const timeline = new DecryptingTimeline(bob, (e) => seen.push(e), { onUndecryptable: (r) => reports.push(r), ...options })
  return { timeline, seen, reports }
}

beforeEach(async () => {
  server = new KeyServer()
  dir = await mkdtemp(join(tmpdir(), "widgethost-crypto-"))
})
afterEach(async () => {
  for (const e of opened.splice(0)) await e.close()
  await rm(dir, { recursive: true, force: true })
})

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

  it("restart: reopened from the persisted store, same device keys, old messages still decrypt, olm sessions kept", async () => {
    const file = join(dir, "bob", "crypto.v8")
    const alice = await openAccount(ALICE, "ALICEDEV")
    const bob = await openAccount(BOB, "BOBDEV", file)
    const keysBefore = bob.identityKeys()
    expect((await indexedDB.databases()).some((d) => d.name?.startsWith(`${bob.storeName}::`) === true)).toBe(true)
    const old = await encryptFromAlice(alice, ROOM, "from before the restart")
    await syncCrypto(bob)
    const before = timelineOf(bob)
    await before.timeline.push(ROOM, [old])
    expect(before.seen.map((e) => e.content["body"])).toEqual(["from before the restart"])
    before.timeline.close()
    await bob.close()
    opened.splice(opened.indexOf(bob), 1)
    // Nothing of the old store stays in memory: the reopened machine reads only the file.
    const leftovers = (await indexedDB.databases()).filter((d) => d.name?.startsWith(`${bob.storeName}::`) === true)
    expect(leftovers).toEqual([])

    const bob2 = await openAccount(BOB, "BOBDEV", file)
    expect(bob2.identityKeys()).toEqual(keysBefore)
    const after = timelineOf(bob2)
    await after.timeline.push(ROOM, [old])
    expect(after.seen.map((e) => e.content["body"])).toEqual(["from before the restart"])
    // The Olm session Alice built before the restart still works both ways.
    const { messages } = await alice.encryptToDevice("m.call.invite", { [BOB]: { BOBDEV: { call_id: "after" } } })
    server.deliverToDevice(ALICE, "m.room.encrypted", messages)
    expect(await syncCrypto(bob2)).toEqual([{ type: "m.call.invite", sender: ALICE, content: { call_id: "after" }, encrypted: true }])
    after.timeline.close()

    // A fresh in-memory machine for the same device is a different identity: the file mattered.
    const fresh = await E2ee.open({ userId: BOB, deviceId: "OTHERDEV", http: server.http(BOB, "OTHERDEV") })
    opened.push(fresh)
    expect(fresh.identityKeys().ed25519).not.toBe(keysBefore.ed25519)
  })

  it("a store file of another device is refused", async () => {
    const file = join(dir, "crypto.v8")
    const bob = await openAccount(BOB, "BOBDEV", file)
    await bob.close()
    opened.splice(opened.indexOf(bob), 1)
    await expect(E2ee.open({ userId: BOB, deviceId: "ELSE", http: server.http(BOB, "ELSE"), storeFile: file })).rejects.toThrow(/belongs to/)
    await writeFile(join(dir, "junk.v8"), "not a snapshot")
    await expect(E2ee.open({ userId: BOB, deviceId: "X", http: server.http(BOB, "X"), storeFile: join(dir, "junk.v8") })).rejects.toThrow()
  })
})
