/**
 * E2ee across a restart: reopened from its persisted store, and a store of another device refused.
 */
import { describe, expect, it } from "vitest"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { E2ee } from "./crypto.ts"
import { ALICE, BOB, dir, encryptFromAlice, openAccount, opened, ROOM, server, syncCrypto, timelineOf, useCryptoWorld } from "./crypto.test-kit.ts"

useCryptoWorld()

describe("E2ee: restart from the store", () => {
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
