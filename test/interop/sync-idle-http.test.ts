/**
 * An idle account does not rewrite its sync state: the HTTP port polling the embedded homeserver
 * with a zero long-poll in a clear room, where each answer has the same token and nothing in it,
 * leaves `sync.json` as it was (the sync loop machine's idle-batch rule, fed by the shell's
 * `unchanged`). A message that comes is saved as before.
 */
import { stat } from "node:fs/promises"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { clientApi, eventually } from "../src/homeserver-port-world.ts"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

describe("the HTTP port on an idle account", { timeout: 30_000 }, () => {
  it("does not rewrite sync.json for answers with nothing new, and saves the one that brings a message", async () => {
    const hs: EmbeddedHomeserver = await startEmbeddedHomeserver({})
    cleanups.push(() => hs.close())
    const root = await mkdtemp(join(tmpdir(), "widgethost-sync-idle-"))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const alice = await hs.createUser("alice", "alice-secret")
    const aliceApi = clientApi(hs.baseUrl, alice.accessToken)
    const { room_id: roomId } = await aliceApi<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset: "public_chat" })
    const dataDir = join(root, "alice")
    const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: alice, dataDir, sync: { timeoutMs: 0 } })
    cleanups.push(() => port.stop())
    const bodies: Array<string> = []
    port.subscribe((u) => {
      if (u._tag === "RoomEvent" && u.event.type === "m.room.message") bodies.push(String(u.event.content["body"]))
    })
    const first = port.nextSync()
    port.start()
    await first
    // The first answer moves the token and is saved; the ones after it are idle.
    await port.nextSync()
    const file = join(dataDir, "sync.json")
    const before = await stat(file)
    const syncs = port.stats().syncs
    for (let i = 0; i < 5; i++) await port.nextSync()
    assert.isAtLeast(port.stats().syncs, syncs + 5)
    const idle = await stat(file)
    assert.equal(idle.ino, before.ino, "sync.json was rewritten (written anew and renamed) for idle answers")
    assert.equal(idle.mtimeMs, before.mtimeMs)

    await aliceApi("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, { msgtype: "m.text", body: "hello" })
    await eventually("Alice to receive the message", () => bodies.includes("hello"))
    await port.nextSync()
    await eventually("the batch with the message to be saved", async () => (await stat(file)).ino !== before.ino)
  })
})
