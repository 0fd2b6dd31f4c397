/**
 * The account path's world: the embedded homeserver in this process over real HTTP on
 * 127.0.0.1, Alice and Bob in one room (clear or encrypted), both synced once, Alice then
 * offline with her sync position and crypto store saved. Shared by the catch-up, idle and live
 * measurements of `account-path.ts`.
 *
 * Only Alice keeps her data on disk (sync position and crypto store, written durably after each
 * sync, as a deployed host does). The homeserver and Bob run in memory: on this machine's disk
 * one durable write costs about 10 ms, and the homeserver's journal (one datasync per send) and
 * Bob's own saves would otherwise be timed as if they were Alice's client.
 */
import { Effect } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { startInEncryptedRoom } from "../src/engine-fixture.ts"

const PASSWORD = "correct horse battery staple"

export interface World {
  readonly hs: EmbeddedHomeserver
  readonly root: string
  readonly roomId: string
  readonly bob: MatrixHomeserver
  readonly aliceUser: string
  readonly encrypted: boolean
}

/** Alice's port on her saved data (call `start()` to sync). */
export const openAlice = (w: World, sync: ConnectOptions["sync"] = {}): Promise<MatrixHomeserver> => open(w.hs, w.aliceUser, join(w.root, "alice"), sync)

const open = (hs: EmbeddedHomeserver, user: string, dataDir: string | undefined, sync: ConnectOptions["sync"] = {}) =>
  connectHomeserver({ baseUrl: hs.baseUrl, auth: { user, password: PASSWORD }, ...(dataDir === undefined ? {} : { dataDir }), sync: { timeoutMs: 1_000, timelineLimit: 1_000, maxGapEvents: 25_000, ...sync } })

export const setUp = async (encrypted: boolean): Promise<World> => {
  const root = await mkdtemp(join(tmpdir(), "widgethost-account-path-"))
  const hs = await startEmbeddedHomeserver({})
  const alice = await hs.ensureUser("alice", PASSWORD)
  const bobUser = await hs.ensureUser("bob", PASSWORD)
  const a = await open(hs, alice.userId, join(root, "alice"))
  const bob = await open(hs, bobUser.userId, undefined)
  let roomId: string
  if (encrypted) roomId = await startInEncryptedRoom(a, bob)
  else {
    roomId = (await a.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: { preset: "public_chat" } })).room_id
    await bob.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
    const synced = [a.nextSync(), bob.nextSync()]
    a.start()
    bob.start()
    await Promise.all(synced)
  }
  await a.stop()
  return { hs, root, roomId, bob, aliceUser: alice.userId, encrypted }
}

export const tearDown = async (w: World): Promise<void> => {
  await w.bob.stop()
  await w.hs.close()
  await rm(w.root, { recursive: true, force: true })
}

/** Bob sends one message (encrypted where the room is). */
export const sendOne = (w: World, body: string): Promise<unknown> =>
  Effect.runPromise(w.bob.sendEvent({ _tag: "SendEvent", roomId: w.roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))
