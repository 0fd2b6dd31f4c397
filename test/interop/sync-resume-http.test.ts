/**
 * Exactly once across a restart while delivery runs ahead of the disk: the HTTP port
 * (`connectHomeserver` with a data directory, `maxUnsavedBatches` above 1) on the embedded
 * homeserver, Bob sending with several sends in flight so Alice's batches come faster than her
 * saves, Alice stopped in the middle of the stream and reopened on her data. Every message
 * reaches her subscribers once over the two runs, in the room's timeline order.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import type { HomeserverUpdate } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { clientApi, eventually } from "../src/homeserver-port-world.ts"

const MESSAGES = 120
const IN_FLIGHT = 6

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

const bodiesIn = (updates: ReadonlyArray<HomeserverUpdate>, roomId: string): Array<string> =>
  updates.flatMap((u) => (u._tag === "RoomEvent" && u.event.room_id === roomId && u.event.type === "m.room.message" ? [String(u.event.content["body"])] : []))

describe("the HTTP port resumes exactly once with delivery ahead of its saves", { timeout: 60_000 }, () => {
  it("stopped mid-stream and reopened on its data: every message once, in timeline order", async () => {
    const hs: EmbeddedHomeserver = await startEmbeddedHomeserver({})
    cleanups.push(() => hs.close())
    const root = await mkdtemp(join(tmpdir(), "widgethost-sync-resume-"))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const alice = await hs.createUser("alice", "alice-secret")
    const bob = await hs.createUser("bob", "bob-secret")
    const aliceApi = clientApi(hs.baseUrl, alice.accessToken)
    const bobApi = clientApi(hs.baseUrl, bob.accessToken)
    const { room_id: roomId } = await aliceApi<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset: "public_chat" })
    await bobApi("POST", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {})

    const open = async (updates: Array<HomeserverUpdate>): Promise<MatrixHomeserver> => {
      const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: alice, dataDir: join(root, "alice"), sync: { timeoutMs: 1_000, maxUnsavedBatches: 4 } })
      port.subscribe((u) => updates.push(u))
      return port
    }
    const first: Array<HomeserverUpdate> = []
    const port1 = await open(first)
    const synced = port1.nextSync()
    port1.start()
    await synced

    let next = 0
    const sender = async () => {
      while (next < MESSAGES) {
        const i = next++
        await bobApi("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${i}`, { msgtype: "m.text", body: `m${i}` })
      }
    }
    const sending = Promise.all(Array.from({ length: IN_FLIGHT }, sender))
    await eventually("Alice's first run to see a third of the messages", () => bodiesIn(first, roomId).length >= MESSAGES / 3)
    const syncsBeforeStop = port1.stats().syncs
    await port1.stop()
    const seenFirst = bodiesIn(first, roomId)
    await sending

    const second: Array<HomeserverUpdate> = []
    const port2 = await open(second)
    cleanups.push(() => port2.stop())
    port2.start()
    await eventually("every message across the two runs", () => seenFirst.length + bodiesIn(second, roomId).length >= MESSAGES)
    // One more batch after the last message: a repeat would have come with it.
    await port2.nextSync()
    await port2.nextSync()

    const { chunk } = await bobApi<{ chunk: Array<{ type: string; content: { body?: string } }> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=f&limit=200`)
    const timeline = chunk.filter((e) => e.type === "m.room.message").map((e) => String(e.content.body))
    assert.lengthOf(timeline, MESSAGES)
    assert.isAbove(syncsBeforeStop, 1, "the first run took the stream in over several batches")
    assert.deepEqual([...seenFirst, ...bodiesIn(second, roomId)], timeline)
  })
})
