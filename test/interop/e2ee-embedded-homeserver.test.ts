/**
 * The HTTP + E2EE homeserver adapter against the embedded homeserver, end to end: two accounts,
 * each with its own `connectHomeserver`, in an encrypted room. Faults come from the homeserver's
 * own hook (429, 5xx, dropped connections, a restart on the same data directory) and from a small
 * proxy in front of Alice that can lose a response after the server acted on the request, or
 * hold a request back (a room key late in transit).
 */
import { Effect } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import type { HomeserverUpdate } from "@widgethost/core"
import type { RoomEvent, ToDeviceEvent } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { type HoldingProxy as Proxy, startHoldingProxy as startProxy, startInEncryptedRoom } from "../src/engine-fixture.ts"
import { MatrixHttp, path } from "@widgethost/homeserver-client"

const fast: Partial<ConnectOptions> = {
  retry: { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 5 },
  sync: { timeoutMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 400 },
  requestTimeoutMs: 10_000
}

let root: string
let hs: EmbeddedHomeserver
let hsDir: string
const cleanups: Array<() => Promise<unknown>> = []

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "widgethost-e2ee-"))
  hsDir = join(root, "hs")
  hs = await startEmbeddedHomeserver({ dataDir: hsDir, turn: { uris: ["turn:127.0.0.1:3478?transport=udp"], sharedSecret: "s3cret", ttlSeconds: 600 } })
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
  await hs.close()
  await rm(root, { recursive: true, force: true })
})

const waitFor = async (what: string, cond: () => boolean, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A started port with everything it hands to subscribers recorded. */
interface Account {
  readonly port: MatrixHomeserver
  readonly updates: Array<HomeserverUpdate>
  readonly errors: Array<unknown>
  readonly roomEvents: (roomId: string) => Array<RoomEvent>
  readonly toDevice: () => Array<ToDeviceEvent>
}

const connect = async (options: Omit<ConnectOptions, "baseUrl"> & { baseUrl?: string }): Promise<Account> => {
  const errors: Array<unknown> = []
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, ...fast, onError: (e) => errors.push(e), ...options })
  const updates: Array<HomeserverUpdate> = []
  port.subscribe((u) => updates.push(u))
  cleanups.push(() => port.stop())
  return {
    port,
    updates,
    errors,
    roomEvents: (roomId) => updates.flatMap((u) => (u._tag === "RoomEvent" && u.event.room_id === roomId ? [u.event] : [])),
    toDevice: () => updates.flatMap((u) => (u._tag === "ToDevice" ? [u.event] : []))
  }
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

/** Alice (token auth) and Bob (password auth, with a data dir) in an encrypted room, both synced. */
const setup = async (options: { readonly aliceVia?: Proxy } = {}) => {
  const aliceSession = await hs.ensureUser("alice", "alice-password")
  await hs.ensureUser("bob", "bob-password")
  const alice = await connect({
    ...(options.aliceVia === undefined ? {} : { baseUrl: options.aliceVia.baseUrl }),
    auth: { accessToken: aliceSession.accessToken, deviceId: aliceSession.deviceId },
    dataDir: join(root, "alice")
  })
  const bob = await connect({ auth: { user: "bob", password: "bob-password" }, dataDir: join(root, "bob") })
  const roomId = await startInEncryptedRoom(alice.port, bob.port)
  return { alice, bob, roomId }
}

const say = (account: Account, roomId: string, body: string) =>
  run(account.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))

const bodies = (events: ReadonlyArray<RoomEvent>) => events.filter((e) => e.type === "m.room.message").map((e) => e.content["body"])

/** What the homeserver itself stored, read with a raw client (no decryption). */
const rawTimeline = async (account: Account, roomId: string) => {
  const raw = new MatrixHttp({ baseUrl: hs.baseUrl })
  raw.accessToken = account.port.http.accessToken
  try {
    const res = await raw.request<{ chunk: Array<{ type: string; content: Record<string, unknown>; event_id: string }> }>({
      method: "GET",
      path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
      query: { dir: "b", limit: 100 }
    })
    return res.chunk
  } finally {
    await raw.close()
  }
}

describe("HTTP + E2EE adapter on the embedded homeserver", () => {
  it("Alice's port sends into the encrypted room; Bob's subscriber gets it decrypted; the server saw only ciphertext", async () => {
    const { alice, bob, roomId } = await setup()
    const sent = await say(alice, roomId, "hello bob")
    expect(sent.eventId).toMatch(/^\$/)
    await waitFor("bob's message", () => bodies(bob.roomEvents(roomId)).length === 1)
    const [got] = bob.roomEvents(roomId).filter((e) => e.type === "m.room.message")
    expect(got).toMatchObject({ type: "m.room.message", event_id: sent.eventId, room_id: roomId, sender: alice.port.userId, content: { msgtype: "m.text", body: "hello bob" } })
    const stored = (await rawTimeline(bob, roomId)).find((e) => e.event_id === sent.eventId)
    expect(stored?.type).toBe("m.room.encrypted")
    expect(JSON.stringify(stored)).not.toContain("hello bob")
    // Alice's own echo comes back decrypted too.
    await waitFor("alice's echo", () => bodies(alice.roomEvents(roomId)).includes("hello bob"))
    expect(bob.updates.some((u) => u._tag === "RoomEvent" && u.event.type === "m.room.encrypted")).toBe(false)
  })

  it("to-device: encrypted arrives decrypted with encrypted: true, clear with false, `*` reaches the device", async () => {
    const { alice, bob } = await setup()
    await run(alice.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.ping", encrypted: true, messages: { [bob.port.userId]: { "*": { n: 1 } } } }))
    await run(alice.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.ping", encrypted: false, messages: { [bob.port.userId]: { [bob.port.deviceId]: { n: 2, encrypted: true } } } }))
    await waitFor("two to-device messages", () => bob.toDevice().length >= 2)
    expect(bob.toDevice()).toEqual([
      { type: "org.example.ping", sender: alice.port.userId, content: { n: 1 }, encrypted: true },
      { type: "org.example.ping", sender: alice.port.userId, content: { n: 2, encrypted: true }, encrypted: false }
    ])
    // The room key and olm traffic stayed inside the crypto machinery.
    expect(bob.toDevice().some((e) => e.type.startsWith("m.room_key") || e.type === "m.room.encrypted")).toBe(false)
  })

  it("late room key: Bob holds the event and what follows in the room, then delivers them in order once the key arrives", async () => {
    const proxy = await startProxy(() => hs.baseUrl)
    cleanups.push(() => proxy.close())
    const { alice, bob, roomId } = await setup({ aliceVia: proxy })
    // Alice's room-key share to Bob is held in transit.
    proxy.rules.push({ method: "PUT", path: /\/sendToDevice\/m\.room\.encrypted\//, times: 1, action: "hold" })
    await say(alice, roomId, "first")
    await run(alice.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.topic", stateKey: "", content: { topic: "in clear, in between" } }))
    await say(alice, roomId, "second")
    expect(proxy.held).toHaveLength(1)
    await waitFor("bob holding three events", () => bob.port.stats().held === 3)
    expect(bob.roomEvents(roomId)).toEqual([])
    await proxy.release()
    await waitFor("the held events", () => bob.roomEvents(roomId).length === 3)
    expect(bob.roomEvents(roomId).map((e) => [e.type, e.content["body"] ?? e.content["topic"]])).toEqual([
      ["m.room.message", "first"],
      ["m.room.topic", "in clear, in between"],
      ["m.room.message", "second"]
    ])
    expect(bob.port.stats()).toMatchObject({ held: 0, undecryptable: 0 })
  })

  it("held events survive an adapter restart: saved with the sync token, delivered once after it", async () => {
    const proxy = await startProxy(() => hs.baseUrl)
    cleanups.push(() => proxy.close())
    const { alice, bob, roomId } = await setup({ aliceVia: proxy })
    proxy.rules.push({ method: "PUT", path: /\/sendToDevice\/m\.room\.encrypted\//, times: 1, action: "hold" })
    await say(alice, roomId, "held across a restart")
    await say(alice, roomId, "queued behind it")
    await waitFor("bob holding two events", () => bob.port.stats().held === 2)
    await bob.port.stop()
    await proxy.release()
    const bob2 = await connect({ auth: { user: "bob", password: "bob-password" }, dataDir: join(root, "bob") })
    bob2.port.start()
    await waitFor("the held events after the restart", () => bodies(bob2.roomEvents(roomId)).length >= 2)
    await say(alice, roomId, "after")
    await waitFor("after", () => bodies(bob2.roomEvents(roomId)).length >= 3)
    expect(bodies(bob.roomEvents(roomId))).toEqual([])
    expect(bodies(bob2.roomEvents(roomId))).toEqual(["held across a restart", "queued behind it", "after"])
  })

  it("delayed events, state events in clear, redactions", async () => {
    const { alice, bob, roomId } = await setup()
    const delayed = await run(alice.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body: "later" }, delayMs: 300 }))
    expect(delayed.delayId).toBeDefined()
    expect(delayed.eventId).toBeUndefined()
    await waitFor("the delayed message", () => bodies(bob.roomEvents(roomId)).includes("later"))
    const state = await run(alice.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.config", stateKey: "", content: { on: true } }))
    await waitFor("the state event", () => bob.roomEvents(roomId).some((e) => e.event_id === state.eventId))
    const storedState = (await rawTimeline(bob, roomId)).find((e) => e.event_id === state.eventId)
    expect(storedState).toMatchObject({ type: "org.example.config", content: { on: true } })
    const target = await say(alice, roomId, "regret")
    const redaction = await run(alice.port.redact({ _tag: "Redact", roomId, eventId: target.eventId ?? "", reason: "typo" }))
    expect(redaction.eventId).toMatch(/^\$/)
    await waitFor("the redaction", () => bob.roomEvents(roomId).some((e) => e.type === "m.room.redaction" && e.redacts === target.eventId))
  })

  it("faults (429 with Retry-After, 500s, dropped connections, a lost response): every event once, in order, no duplicate sends", async () => {
    const proxy = await startProxy(() => hs.baseUrl)
    cleanups.push(() => proxy.close())
    const { alice, bob, roomId } = await setup({ aliceVia: proxy })
    const sent: Array<string> = []
    const send = async (body: string) => {
      sent.push(body)
      return say(alice, roomId, body)
    }

    hs.injectFault({ path: /\/send\//, method: "PUT", times: 1, kind: { status: 429, retryAfterMs: 1000, retryAfterHeader: true } })
    const t0 = Date.now()
    await send("after a 429 with Retry-After")
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    hs.injectFault({ path: /\/send\//, method: "PUT", times: 1, kind: { status: 429, retryAfterMs: 200 } })
    await send("after a 429 with retry_after_ms")
    hs.injectFault({ path: /\/send\//, method: "PUT", times: 2, kind: { status: 500 } })
    await send("after two 500s")
    hs.injectFault({ path: /\/send\//, method: "PUT", times: 1, kind: "drop-connection" })
    await send("after a dropped connection")
    // The server stores this one but the answer never reaches Alice: the retry reuses the txn id.
    proxy.rules.push({ method: "PUT", path: /\/rooms\/[^/]+\/send\//, times: 1, action: "lose-response" })
    const before = proxy.log.length
    await send("after a lost response")
    const attempts = proxy.log.slice(before).filter((r) => r.method === "PUT" && /\/send\//.test(r.url))
    expect(attempts).toHaveLength(2)
    expect(attempts[0]?.url).toBe(attempts[1]?.url)
    // Sync survives 500s, 429s and dropped long-polls.
    hs.injectFault({ path: /\/sync$/, method: "GET", times: 3, kind: { status: 500 } })
    await send("while syncs fail with 500")
    hs.injectFault({ path: /\/sync$/, method: "GET", times: 2, kind: "drop-connection" })
    await send("while syncs are dropped")
    hs.injectFault({ path: /\/sync$/, method: "GET", times: 1, kind: { status: 429, retryAfterMs: 300, retryAfterHeader: true } })
    await send("while syncs are rate limited")

    await waitFor("all messages at bob", () => bodies(bob.roomEvents(roomId)).length >= sent.length)
    await bob.port.nextSync().catch(() => undefined)
    expect(bodies(bob.roomEvents(roomId))).toEqual(sent)
    const ids = bob.roomEvents(roomId).map((e) => e.event_id)
    expect(new Set(ids).size).toBe(ids.length)
    // The homeserver holds exactly one event per send.
    const stored = (await rawTimeline(bob, roomId)).filter((e) => e.type === "m.room.encrypted")
    expect(stored).toHaveLength(sent.length)
    // Every injected fault was met and retried: 6 on sends (the lost response among them), 6 on syncs.
    // A sync fault may land on a long-poll that starts after the last message arrived: wait for it.
    await waitFor("every injected fault retried", () => alice.port.http.stats.retries + bob.port.http.stats.retries >= 12)
  })

  it("a homeserver restart mid-sync on the same data directory: nothing lost, nothing repeated", async () => {
    const { alice, bob, roomId } = await setup()
    await say(alice, roomId, "before the restart")
    await waitFor("first message", () => bodies(bob.roomEvents(roomId)).length === 1)
    await new Promise((r) => setTimeout(r, 100)) // both long-polls are in flight now
    const port = Number(new URL(hs.baseUrl).port)
    await hs.close()
    // Down for longer than one call's retries last: the sync loops' own backoff carries them.
    await new Promise((r) => setTimeout(r, 1500))
    hs = await startEmbeddedHomeserver({ dataDir: hsDir, port })
    await say(alice, roomId, "after the restart")
    await run(alice.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.after", encrypted: true, messages: { [bob.port.userId]: { "*": { ok: 1 } } } }))
    await waitFor("second message", () => bodies(bob.roomEvents(roomId)).length >= 2)
    await waitFor("to-device after restart", () => bob.toDevice().length >= 1)
    await bob.port.nextSync()
    expect(bodies(bob.roomEvents(roomId))).toEqual(["before the restart", "after the restart"])
    expect(bob.toDevice()).toEqual([{ type: "org.example.after", sender: alice.port.userId, content: { ok: 1 }, encrypted: true }])
    expect(bob.port.stats().syncErrors).toBeGreaterThan(0)
  })

  it("Bob's adapter restarts on the same data directory: same device, old history decrypts, nothing repeated", async () => {
    const { alice, bob, roomId } = await setup()
    await say(alice, roomId, "one")
    await waitFor("one", () => bodies(bob.roomEvents(roomId)).length === 1)
    const deviceId = bob.port.deviceId
    await bob.port.stop()
    await say(alice, roomId, "two (while bob is away)")
    await say(alice, roomId, "three (while bob is away)")

    const bob2 = await connect({ auth: { user: "bob", password: "bob-password" }, dataDir: join(root, "bob") })
    expect(bob2.port.deviceId).toBe(deviceId)
    const synced = bob2.port.nextSync()
    bob2.port.start()
    await synced
    await waitFor("two and three", () => bodies(bob2.roomEvents(roomId)).length >= 2)
    await say(alice, roomId, "four")
    await waitFor("four", () => bodies(bob2.roomEvents(roomId)).length >= 3)
    expect(bodies(bob2.roomEvents(roomId))).toEqual(["two (while bob is away)", "three (while bob is away)", "four"])

    // History, newest first, decrypted with keys from before the restart, filtered after decryption.
    const page = await run(bob2.port.readEvents({ roomId, type: "m.room.message", msgtype: "m.text", limit: 3, dir: "b" }))
    expect(bodies(page.events)).toEqual(["four", "three (while bob is away)", "two (while bob is away)"])
    expect(page.end).toBeDefined()
    const rest = await run(bob2.port.readEvents({ roomId, type: "m.room.message", limit: 10, dir: "b", ...(page.end === undefined ? {} : { from: page.end }) }))
    expect(bodies(rest.events)).toEqual(["one"])
    expect(rest.end).toBeUndefined()
    // The olm session survived too.
    await run(alice.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.still", encrypted: true, messages: { [bob2.port.userId]: { [deviceId]: { x: 1 } } } }))
    await waitFor("to-device", () => bob2.toDevice().length === 1)
    expect(bob2.toDevice()[0]).toEqual({ type: "org.example.still", sender: alice.port.userId, content: { x: 1 }, encrypted: true })
  })

  /** Bob has seen one message, then is away while alice sends seven: what his next port must back-fill. */
  const bobAwayForSeven = async () => {
    const { alice, bob, roomId } = await setup()
    await say(alice, roomId, "seen")
    await waitFor("seen", () => bodies(bob.roomEvents(roomId)).length === 1)
    await bob.port.stop()
    const missed = Array.from({ length: 7 }, (_, i) => `missed ${i}`)
    for (const m of missed) await say(alice, roomId, m)
    return { roomId, missed }
  }

  it("a limited sync timeline is back-filled from /messages: no event lost across a long absence", async () => {
    const { roomId, missed } = await bobAwayForSeven()
    const bob2 = await connect({ auth: { user: "bob", password: "bob-password" }, dataDir: join(root, "bob"), sync: { ...fast.sync, timelineLimit: 2 } })
    bob2.port.start()
    await waitFor("the gap", () => bodies(bob2.roomEvents(roomId)).length >= missed.length)
    expect(bodies(bob2.roomEvents(roomId))).toEqual(missed)
    expect(bob2.port.stats()).toMatchObject({ gapsLeft: 0 })
  })

  it("a gap past maxGapEvents: the newest that many are back-filled, in pages of gapPageSize, and the older rest is given up and counted", async () => {
    const { roomId, missed } = await bobAwayForSeven()
    const bob2 = await connect({ auth: { user: "bob", password: "bob-password" }, dataDir: join(root, "bob"), sync: { ...fast.sync, timelineLimit: 2, maxGapEvents: 3, gapPageSize: 2 } })
    bob2.port.start()
    await waitFor("the gap", () => bodies(bob2.roomEvents(roomId)).length >= 5)
    expect(bodies(bob2.roomEvents(roomId))).toEqual(missed.slice(2))
    expect(bob2.port.stats()).toMatchObject({ gapsLeft: 1 })
  })

  it("reads: readEvents filters by msgtype and state key after decryption and pages; readState; turnServers; joinedRooms", async () => {
    const { alice, roomId } = await setup()
    for (let i = 0; i < 5; i++) {
      await say(alice, roomId, `text ${i}`)
      await run(alice.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.notice", body: `notice ${i}` } }))
    }
    await run(alice.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.state", stateKey: "k1", content: { v: 1 } }))
    const forward = await run(alice.port.readEvents({ roomId, type: "m.room.message", msgtype: "m.notice", limit: 2, dir: "f" }))
    expect(bodies(forward.events)).toEqual(["notice 0", "notice 1"])
    const next = await run(alice.port.readEvents({ roomId, type: "m.room.message", msgtype: "m.notice", limit: 10, dir: "f", ...(forward.end === undefined ? {} : { from: forward.end }) }))
    expect(bodies(next.events)).toEqual(["notice 2", "notice 3", "notice 4"])
    const states = await run(alice.port.readEvents({ roomId, type: "org.example.state", stateKey: "k1", limit: 5, dir: "b" }))
    expect(states.events.map((e) => e.content)).toEqual([{ v: 1 }])
    const messageLike = await run(alice.port.readEvents({ roomId, type: "org.example.state", limit: 5, dir: "b" }))
    expect(messageLike.events).toEqual([])
    const state = await run(alice.port.readState(roomId, "m.room.encryption"))
    expect(state.map((e) => e.content["algorithm"])).toEqual(["m.megolm.v1.aes-sha2"])
    expect(await run(alice.port.readState(roomId, "org.example.state", "k1"))).toHaveLength(1)
    const turn = await run(alice.port.turnServers())
    expect(turn.uris).toEqual(["turn:127.0.0.1:3478?transport=udp"])
    expect(turn.ttl).toBe(600)
    expect(await run(alice.port.joinedRooms())).toContain(roomId)
  })
})
