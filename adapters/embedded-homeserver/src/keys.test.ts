import * as Crypto from "@matrix-org/matrix-sdk-crypto-wasm"
import { afterEach, assert, beforeAll, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { Client, ClientEvent, MatrixErrorBody, SyncResponse } from "./testing.ts"
import { newUser, room, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  await hs.close()
})

const deviceKeys = (c: Client, suffix = "") => ({
  user_id: c.userId,
  device_id: c.session!.deviceId,
  algorithms: ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
  keys: { [`curve25519:${c.session!.deviceId}`]: `curve${suffix}`, [`ed25519:${c.session!.deviceId}`]: `ed${suffix}` },
  signatures: { [c.userId]: { [`ed25519:${c.session!.deviceId}`]: "sig" } }
})

const otk = (i: number) => ({ key: `otk${i}`, signatures: {} })

describe("keys", () => {
  it("uploads device and one-time keys, reports counts in the response and in sync", async () => {
    const a = await newUser(hs)
    const res = await a.post<{ one_time_key_counts: Record<string, number> }>(`${V3}/keys/upload`, {
      device_keys: deviceKeys(a),
      one_time_keys: { "signed_curve25519:AAAA": otk(1), "signed_curve25519:AAAB": otk(2) },
      fallback_keys: { "signed_curve25519:FB01": { key: "fb", fallback: true, signatures: {} } }
    })
    assert.equal(res.status, 200)
    assert.deepEqual(res.body.one_time_key_counts, { signed_curve25519: 2 })
    const sync = await a.sync()
    assert.deepEqual(sync.device_one_time_keys_count, { signed_curve25519: 2 })
    assert.deepEqual(sync.device_unused_fallback_key_types, ["signed_curve25519"])
    // Re-uploading the same key is fine; the same id with another key is not.
    assert.equal((await a.post(`${V3}/keys/upload`, { one_time_keys: { "signed_curve25519:AAAA": otk(1) } })).status, 200)
    const clash = await a.post<MatrixErrorBody>(`${V3}/keys/upload`, { one_time_keys: { "signed_curve25519:AAAA": otk(9) } })
    assert.equal(clash.status, 400)
    // Keys for another device are refused.
    const forged = await a.post<MatrixErrorBody>(`${V3}/keys/upload`, { device_keys: { ...deviceKeys(a), device_id: "OTHER" } })
    assert.equal(forged.status, 400)
  })

  it("answers queries with device keys (with display names) and cross-signing keys", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    await a.ok("POST", `${V3}/keys/upload`, { device_keys: deviceKeys(a) })
    const master = { user_id: a.userId, usage: ["master"], keys: { "ed25519:masterpub": "masterpub" } }
    const selfSigning = {
      user_id: a.userId,
      usage: ["self_signing"],
      keys: { "ed25519:sspub": "sspub" },
      signatures: { [a.userId]: { "ed25519:masterpub": "s" } }
    }
    assert.equal((await a.post(`${V3}/keys/device_signing/upload`, { master_key: master, self_signing_key: selfSigning })).status, 200)
    const signed = await a.post<{ failures: object }>(`${V3}/keys/signatures/upload`, {
      [a.userId]: { [a.session!.deviceId]: { ...deviceKeys(a), signatures: { [a.userId]: { "ed25519:sspub": "cross-sig" } } } }
    })
    assert.deepEqual(signed.body.failures, {})
    type Query = {
      device_keys: Record<string, Record<string, { keys: object; signatures: Record<string, Record<string, string>> }>>
      master_keys: Record<string, object>
      self_signing_keys: Record<string, object>
      user_signing_keys: Record<string, object>
    }
    const query = await b.post<Query>(`${V3}/keys/query`, { device_keys: { [a.userId]: [], "@nobody:localhost": [] } })
    const device = query.body.device_keys[a.userId]?.[a.session!.deviceId]
    assert.isDefined(device)
    assert.deepEqual(device.keys, deviceKeys(a).keys)
    assert.equal(device.signatures[a.userId]?.["ed25519:sspub"], "cross-sig")
    assert.equal(device.signatures[a.userId]?.[`ed25519:${a.session!.deviceId}`], "sig")
    assert.deepEqual(query.body.master_keys[a.userId], master)
    assert.deepEqual(query.body.self_signing_keys[a.userId], selfSigning)
    assert.deepEqual(query.body.device_keys["@nobody:localhost"], {})
    const badCrossSigning = await a.post(`${V3}/keys/device_signing/upload`, { master_key: { ...master, usage: ["self_signing"] } })
    assert.equal(badCrossSigning.status, 400)
  })

  it("device_signing/upload: the first identity without UIA, a replacement only with the account's password", async () => {
    const a = await newUser(hs)
    const key = (usage: string, pub: string) => ({ user_id: a.userId, usage: [usage], keys: { [`ed25519:${pub}`]: pub } })
    const first = { master_key: key("master", "m1"), self_signing_key: key("self_signing", "s1") }
    assert.equal((await a.post(`${V3}/keys/device_signing/upload`, first)).status, 200)
    // The same keys again change nothing: no UIA.
    assert.equal((await a.post(`${V3}/keys/device_signing/upload`, first)).status, 200)
    const replace = { master_key: key("master", "m2"), self_signing_key: key("self_signing", "s2") }
    const challenge = await a.post<{ flows: unknown; session: string; errcode?: string }>(`${V3}/keys/device_signing/upload`, replace)
    assert.equal(challenge.status, 401)
    assert.deepEqual(challenge.body.flows, [{ stages: ["m.login.password"] }])
    assert.isUndefined(challenge.body.errcode)
    const identifier = { type: "m.id.user", user: a.userId }
    const wrong = await a.post<{ errcode?: string }>(`${V3}/keys/device_signing/upload`, {
      ...replace,
      auth: { type: "m.login.password", identifier, password: "wrong", session: challenge.body.session }
    })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body.errcode, "M_FORBIDDEN")
    type Query = { master_keys: Record<string, { keys: object }> }
    const query = () => a.post<Query>(`${V3}/keys/query`, { device_keys: { [a.userId]: [] } })
    assert.deepEqual((await query()).body.master_keys[a.userId]?.keys, { "ed25519:m1": "m1" })
    const done = await a.post(`${V3}/keys/device_signing/upload`, {
      ...replace,
      auth: { type: "m.login.password", identifier, password: "correct horse battery staple", session: challenge.body.session }
    })
    assert.equal(done.status, 200)
    assert.deepEqual((await query()).body.master_keys[a.userId]?.keys, { "ed25519:m2": "m2" })
  })

  it("a signature on another user's master key is shown to its signer and the owner's own, not to third parties", async () => {
    const [a, b, c] = [await newUser(hs), await newUser(hs), await newUser(hs)]
    const master = { user_id: a.userId, usage: ["master"], keys: { "ed25519:am": "am" } }
    await a.ok("POST", `${V3}/keys/device_signing/upload`, { master_key: master })
    const signed = await b.post<{ failures: object }>(`${V3}/keys/signatures/upload`, {
      [a.userId]: { am: { ...master, signatures: { [b.userId]: { "ed25519:bu": "b-vouches-for-a" } } } }
    })
    assert.deepEqual(signed.body.failures, {})
    type Query = { master_keys: Record<string, { signatures?: Record<string, unknown> }> }
    const seenBy = async (viewer: typeof a) => (await viewer.post<Query>(`${V3}/keys/query`, { device_keys: { [a.userId]: [] } })).body.master_keys[a.userId]?.signatures ?? {}
    assert.deepEqual(await seenBy(b), { [b.userId]: { "ed25519:bu": "b-vouches-for-a" } })
    assert.deepEqual(await seenBy(c), {})
  })

  it("claims consume one-time keys, then fall back to the fallback key", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    await a.ok("POST", `${V3}/keys/upload`, {
      device_keys: deviceKeys(a),
      one_time_keys: { "signed_curve25519:K1": otk(1) },
      fallback_keys: { "signed_curve25519:FB": { key: "fb", fallback: true } }
    })
    type Claim = { one_time_keys: Record<string, Record<string, Record<string, object>>> }
    const claim = () => b.post<Claim>(`${V3}/keys/claim`, { one_time_keys: { [a.userId]: { [a.session!.deviceId]: "signed_curve25519" } } })
    const first = await claim()
    assert.deepEqual(first.body.one_time_keys[a.userId]?.[a.session!.deviceId], { "signed_curve25519:K1": otk(1) })
    const second = await claim()
    assert.deepEqual(second.body.one_time_keys[a.userId]?.[a.session!.deviceId], { "signed_curve25519:FB": { key: "fb", fallback: true } })
    const sync = await a.sync()
    assert.deepEqual(sync.device_one_time_keys_count, { signed_curve25519: 0 })
    assert.deepEqual(sync.device_unused_fallback_key_types, [])
  })

  it("reports device list changes of users sharing a room, in sync and /keys/changes", async () => {
    const a = await newUser(hs)
    const b = await newUser(hs)
    const c = await newUser(hs)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const before = await a.sync()
    await b.ok("POST", `${V3}/keys/upload`, { device_keys: deviceKeys(b) })
    await c.ok("POST", `${V3}/keys/upload`, { device_keys: deviceKeys(c) }) // shares no room with a
    const after = await a.sync({ since: before.next_batch })
    assert.deepEqual(after.device_lists.changed, [b.userId])
    const changes = await a.get<{ changed: Array<string>; left: Array<string> }>(`${V3}/keys/changes?from=${before.next_batch}&to=${after.next_batch}`)
    assert.deepEqual(changes.body, { changed: [b.userId], left: [] })
    await b.post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`)
    const left = await a.sync({ since: after.next_batch })
    assert.deepEqual(left.device_lists.left, [b.userId])
  })

  it("has no key backup", async () => {
    const a = await newUser(hs)
    const res = await a.get<MatrixErrorBody>(`${V3}/room_keys/version`)
    assert.equal(res.status, 404)
    assert.equal(res.body.errcode, "M_NOT_FOUND")
  })
})

/**
 * The real thing: matrix-sdk-crypto (the wasm build the widgethost crypto adapter uses) drives
 * its request loop against this server, establishes Olm sessions through claimed one-time keys,
 * shares a Megolm room key over to-device, and the receiving machine decrypts the message.
 */
describe("with matrix-sdk-crypto", () => {
  beforeAll(async () => {
    await Crypto.initAsync()
  })

  /** One turn of the crypto machine's outgoing-request loop: send each request over HTTP, report the answer. */
  const pump = async (machine: Crypto.OlmMachine, c: Client): Promise<void> => {
    for (const req of await machine.outgoingRequests()) {
      const r = req as { id: string; type: Crypto.RequestType; body: string; event_type?: string; txn_id?: string; room_id?: string }
      const body: unknown = JSON.parse(r.body)
      const path = {
        [Crypto.RequestType.KeysUpload]: `${V3}/keys/upload`,
        [Crypto.RequestType.KeysQuery]: `${V3}/keys/query`,
        [Crypto.RequestType.KeysClaim]: `${V3}/keys/claim`,
        [Crypto.RequestType.SignatureUpload]: `${V3}/keys/signatures/upload`,
        [Crypto.RequestType.ToDevice]: `${V3}/sendToDevice/${r.event_type}/${r.txn_id}`,
        [Crypto.RequestType.RoomMessage]: `${room(r.room_id ?? "")}/send/${r.event_type}/${r.txn_id}`,
        [Crypto.RequestType.KeysBackup]: undefined
      }[r.type]
      if (path === undefined) continue
      const method = r.type === Crypto.RequestType.ToDevice || r.type === Crypto.RequestType.RoomMessage ? "PUT" : "POST"
      const res = await c.request(method, path, { body })
      assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.body)}`)
      await machine.markRequestAsSent(r.id, r.type, JSON.stringify(res.body))
    }
  }

  const feed = async (machine: Crypto.OlmMachine, c: Client, since?: string): Promise<SyncResponse> => {
    const sync = await c.sync(since === undefined ? {} : { since, timeout: "0" })
    await machine.receiveSyncChanges(
      JSON.stringify(sync.to_device.events),
      new Crypto.DeviceLists(
        sync.device_lists.changed.map((u) => new Crypto.UserId(u)),
        sync.device_lists.left.map((u) => new Crypto.UserId(u))
      ),
      new Map(Object.entries(sync.device_one_time_keys_count)),
      new Set(sync.device_unused_fallback_key_types)
    )
    return sync
  }

  it("two machines exchange an encrypted message through the server", async () => {
    const alice = await newUser(hs, "alice")
    const bob = await newUser(hs, "bob")
    const machineOf = (c: Client) => Crypto.OlmMachine.initialize(new Crypto.UserId(c.userId), new Crypto.DeviceId(c.session!.deviceId))
    const aliceMachine = await machineOf(alice)
    const bobMachine = await machineOf(bob)
    const roomId = await alice.createRoom({
      preset: "public_chat",
      initial_state: [{ type: "m.room.encryption", content: { algorithm: "m.megolm.v1.aes-sha2" } }]
    })
    await bob.join(roomId)

    // Both upload device and one-time keys (the machines top up as sync reports counts).
    const aliceSince = (await feed(aliceMachine, alice)).next_batch
    const bobSince = (await feed(bobMachine, bob)).next_batch
    await pump(aliceMachine, alice)
    await pump(bobMachine, bob)
    const bobCounts = (await bob.sync()).device_one_time_keys_count
    assert.isAbove(bobCounts.signed_curve25519 ?? 0, 0)

    // Alice learns bob's devices, claims a one-time key, and shares the room key over to-device.
    await feed(aliceMachine, alice, aliceSince)
    await aliceMachine.updateTrackedUsers([new Crypto.UserId(bob.userId)])
    await pump(aliceMachine, alice)
    const claim = await aliceMachine.getMissingSessions([new Crypto.UserId(bob.userId)])
    assert.isNotNull(claim)
    const claimed = await alice.post(`${V3}/keys/claim`, JSON.parse(claim.body))
    await aliceMachine.markRequestAsSent(claim.id, Crypto.RequestType.KeysClaim, JSON.stringify(claimed.body))
    const settings = new Crypto.EncryptionSettings()
    for (const req of await aliceMachine.shareRoomKey(new Crypto.RoomId(roomId), [new Crypto.UserId(bob.userId)], settings)) {
      const res = await alice.put(`${V3}/sendToDevice/${req.event_type}/${req.txn_id}`, JSON.parse(req.body))
      assert.equal(res.status, 200)
      await aliceMachine.markRequestAsSent(req.id, Crypto.RequestType.ToDevice, JSON.stringify(res.body))
    }
    const encrypted = await aliceMachine.encryptRoomEvent(new Crypto.RoomId(roomId), "m.room.message", JSON.stringify({ msgtype: "m.text", body: "top secret" }))
    await alice.ok("PUT", `${room(roomId)}/send/m.room.encrypted/e1`, JSON.parse(encrypted))

    // Bob's sync brings the Olm-encrypted room key and the Megolm-encrypted message.
    const sync = await feed(bobMachine, bob, bobSince)
    assert.isAbove(sync.to_device.events.length, 0)
    const event = sync.rooms.join[roomId]!.timeline.events.find((e: ClientEvent) => e.type === "m.room.encrypted")!
    const decrypted = await bobMachine.decryptRoomEvent(
      JSON.stringify({ ...event, room_id: roomId }),
      new Crypto.RoomId(roomId),
      new Crypto.DecryptionSettings(Crypto.TrustRequirement.Untrusted)
    )
    const plain = JSON.parse(decrypted.event) as { content: { body: string } }
    assert.equal(plain.content.body, "top secret")
    assert.equal(decrypted.sender.toString(), alice.userId)
    // The claimed one-time key is gone; bob's machine replaces it on its next turn.
    assert.equal(sync.device_one_time_keys_count.signed_curve25519, (bobCounts.signed_curve25519 ?? 0) - 1)
    await pump(bobMachine, bob)
    assert.equal((await bob.sync()).device_one_time_keys_count.signed_curve25519, bobCounts.signed_curve25519)
    aliceMachine.close()
    bobMachine.close()
  })
})
