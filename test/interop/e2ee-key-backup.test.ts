/**
 * Server-side key backup (issue #18), end to end against the embedded homeserver's `/room_keys`:
 * a widgethost account bootstraps cross-signing and secret storage, creates a key backup with its
 * recovery key and backs up its room keys (its own and those a matrix-js-sdk peer with Rust crypto
 * shared). Then its crypto store is lost: the restarted host is a new device, which signs itself
 * from secret storage and restores the backup, and a widget reads the old history decrypted. Before
 * the restore the same read says the events are withheld.
 */
import { fromEffectPort } from "@widgethost/core/effect"
import { Effect } from "effect"
import { readFile, rm } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { WITHHELD_FIELD } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver, ensureCrossSigned, ensureKeyBackup, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { approveAll } from "@widgethost/testing"
import * as sdk from "matrix-js-sdk"
import { RealtimeWidget, roomWidget } from "../src/engine-fixture.ts"
import { useE2eeWorld } from "../src/e2ee-world.ts"
import { encryptedRoomWith, rustCryptoPeer, waitFor } from "../src/js-sdk-peer.ts"

const world = useE2eeWorld("widgethost-backup-")

const PASSWORD = "widgethost-password"

describe("key backup: a lost crypto store costs no history", { timeout: 120_000 }, () => {
  it("backs up room keys, and a new device restores them with the recovery key: the widget reads the old history decrypted", async () => {
    await world.hs.createUser("widgethost", PASSWORD)
    const dataDir = join(world.root, "widgethost")
    const connect = async (): Promise<MatrixHomeserver> => {
      const port = await connectHomeserver({ baseUrl: world.hs.baseUrl, auth: { user: "widgethost", password: PASSWORD }, dataDir, sync: { timeoutMs: 1_000 }, hold: { maxHoldMs: 1_000 } })
      world.cleanups.push(() => port.stop())
      return port
    }
    const first = await connect()
    const recoveryKeyFile = join(world.root, "recovery-key.txt")
    expect((await ensureCrossSigned({ e2ee: first.e2ee, http: first.http, password: PASSWORD, recoveryKeyFile }))._tag).toBe("Bootstrapped")
    const recoveryKey = (await readFile(recoveryKeyFile, "utf8")).trim()
    // Without the recovery key there is no backup to make.
    expect(await ensureKeyBackup({ e2ee: first.e2ee, http: first.http })).toMatchObject({ _tag: "Unavailable" })
    const created = await ensureKeyBackup({ e2ee: first.e2ee, http: first.http, recoveryKey })
    expect(created._tag).toBe("Created")

    const bob = await rustCryptoPeer("bob", world)
    const roomId = await encryptedRoomWith(first, bob)
    const { event_id: fromBob } = await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "bob's old message" })
    const { eventId: fromHost } = await Effect.runPromise(first.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body: "the host's old message" } }))
    await waitFor("the host decrypting bob's message", () => first.stats().decrypted > 0)
    await first.e2ee.backUpRoomKeys()
    const backup = await first.http.request<{ version: string; count: number }>({ method: "GET", path: "/_matrix/client/v3/room_keys/version" })
    expect(backup).toMatchObject({ version: (created as { version: string }).version, count: 2 })
    expect(first.e2ee.keysBackedUp).toBe(2)
    const oldDevice = first.deviceId
    await first.stop()

    // The disk failure: the crypto store is gone (the session file is still there).
    await rm(join(dataDir, "crypto.v8"))
    const second = await connect()
    expect(second.deviceId).not.toBe(oldDevice)
    const engine = createEngine({ homeserver: fromEffectPort(second), approver: approveAll })
    world.cleanups.push(() => engine.stop())
    second.start()
    const widget = new RealtimeWidget({ engine, widget: roomWidget("history", roomId), capabilities: ["m.receive.event:m.room.message"] })
    await widget.ready()
    // Before the restore the new device has no key for the old history, and the widget is told.
    expect(await widget.call("read_events", { type: "m.room.message" })).toEqual({ events: [], [WITHHELD_FIELD]: 2 })

    expect(await ensureCrossSigned({ e2ee: second.e2ee, http: second.http, recoveryKey })).toEqual({ _tag: "Trusted", restored: true })
    expect(await ensureKeyBackup({ e2ee: second.e2ee, http: second.http, recoveryKey })).toEqual({ _tag: "Enabled", version: backup.version, restored: { imported: 2, total: 2 } })

    const history = await widget.call("read_events", { type: "m.room.message", dir: "f" })
    expect(history).not.toHaveProperty(WITHHELD_FIELD)
    expect((history["events"] as Array<{ event_id: string; content: { body: string } }>).map((e) => [e.event_id, e.content.body])).toEqual([
      [fromBob, "bob's old message"],
      [fromHost, "the host's old message"]
    ])
    // The restored store knows the backup: a later start does not download it again.
    expect(await ensureKeyBackup({ e2ee: second.e2ee, http: second.http })).toEqual({ _tag: "Enabled", version: backup.version })
  })
})
