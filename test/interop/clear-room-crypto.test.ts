/**
 * No public-key work for a clear room (issue #17): a CPU profile of `widgethost simulate` in a
 * clear room once put 39 % of all CPU in curve25519 inside the crypto machine, because every
 * sync was handed to it (each call loads and re-pickles the Olm account). Here Alice's HTTP port
 * on the embedded homeserver sends and receives room messages in a clear room, and every call
 * into her OlmMachine and every `/keys/*` request she makes is counted: there must be none. The
 * same walk in an encrypted room shows the counters do count.
 */
import { Effect } from "effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import type { HomeserverUpdate } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type MatrixHomeserver, connectHomeserver, path } from "@widgethost/homeserver-client"
import { countCryptoWork } from "../src/crypto-counters.ts"
import { startInEncryptedRoom, waitUntil } from "../src/engine-fixture.ts"

const EACH_WAY = 10

let hs: EmbeddedHomeserver
const cleanups: Array<() => Promise<unknown>> = []
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined)
  await hs.close()
})

const port = async (localpart: string): Promise<MatrixHomeserver> => {
  await hs.ensureUser(localpart, `${localpart}-password`)
  const p = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: localpart, password: `${localpart}-password` }, sync: { timeoutMs: 1_000 } })
  cleanups.push(() => p.stop())
  return p
}

const startInClearRoom = async (alice: MatrixHomeserver, bob: MatrixHomeserver): Promise<string> => {
  const { room_id: roomId } = await alice.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: { preset: "public_chat" } })
  await bob.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
  const synced = [alice.nextSync(), bob.nextSync()]
  alice.start()
  bob.start()
  await Promise.all(synced)
  return roomId
}

/**
 * The first syncs do carry news: the server reports no fallback key, the machine makes one and
 * uploads it, and the next sync's key counts say so. Counting starts after the third sync.
 */
const settled = (p: MatrixHomeserver) => waitUntil(`${p.userId}'s third sync`, () => p.stats().syncs >= 3, 15_000)

const send = (p: MatrixHomeserver, roomId: string, body: string) =>
  Effect.runPromise(p.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))

/** Alice sends EACH_WAY messages and Bob EACH_WAY more; resolves once Alice's port delivered Bob's and ten more syncs ran. */
const exchange = async (alice: MatrixHomeserver, bob: MatrixHomeserver, roomId: string) => {
  const received: Array<string> = []
  alice.subscribe((u: HomeserverUpdate) => {
    if (u._tag === "RoomEvent" && u.event.sender === bob.userId && u.event.type === "m.room.message") received.push(String(u.event.content["body"]))
  })
  for (let i = 0; i < EACH_WAY; i++) {
    await send(alice, roomId, `from alice ${i}`)
    await send(bob, roomId, `from bob ${i}`)
  }
  await waitUntil("Alice to receive Bob's messages", () => received.length === EACH_WAY, 30_000, () => received)
  // Syncs with nothing new (the long-poll times out) are not handed to the machine either.
  const syncs = alice.stats().syncs
  await waitUntil("two more of Alice's syncs", () => alice.stats().syncs >= syncs + 2, 10_000)
  return received
}

describe("crypto work in a clear room", { timeout: 60_000 }, () => {
  it("none: no OlmMachine call and no /keys request for sending, receiving or idle syncs", async () => {
    const alice = await port("alice")
    const bob = await port("bob")
    const roomId = await startInClearRoom(alice, bob)
    await settled(alice)
    const counters = countCryptoWork(alice)
    const received = await exchange(alice, bob, roomId)
    expect(received).toEqual(Array.from({ length: EACH_WAY }, (_, i) => `from bob ${i}`))
    expect(Object.fromEntries(counters.machineCalls())).toEqual({})
    expect(Object.fromEntries(counters.keysRequests())).toEqual({})
  })

  it("the counters count: the same walk in an encrypted room calls the machine to encrypt and decrypt", async () => {
    const alice = await port("alice")
    const bob = await port("bob")
    const roomId = await startInEncryptedRoom(alice, bob)
    await settled(alice)
    const counters = countCryptoWork(alice)
    const received = await exchange(alice, bob, roomId)
    expect(received).toEqual(Array.from({ length: EACH_WAY }, (_, i) => `from bob ${i}`))
    expect(counters.machineCalls().get("encryptRoomEvent")).toBe(EACH_WAY)
    expect(counters.machineCalls().get("decryptRoomEvent")).toBeGreaterThanOrEqual(EACH_WAY)
  })
})
