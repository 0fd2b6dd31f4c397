/**
 * How the crypto store's whole-snapshot persistence (crypto-store.ts) grows with the store: for
 * stores of N inbound group sessions (room keys), the snapshot file's size, the time of one
 * snapshot after a small write (what every sync round that brings one room key pays), and the
 * time to open the store again (restore the file into IndexedDB and start the machine).
 *
 * The sessions are real Megolm session exports (each its own Ed25519 key, so its own session id)
 * imported through `importExportedRoomKeys`, as a key-file import or a backup restore would.
 *
 * Run: `node --conditions=@widgethost/source --import tsx test/bench/crypto-store-growth.ts [--sizes 1000,10000,100000] [--json out.json]`.
 * Nothing is asserted.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { type CryptoHttp, E2ee } from "@widgethost/homeserver-client"
import { median } from "./harness.ts"

const ROOM = "!bench:localhost"
const USER = "@bench:localhost"
const DEVICE = "BENCHDEVICE"

/** Nothing leaves the process: the bench needs no server (no request is made without a sync). */
const offline: CryptoHttp = { request: () => Promise.reject(new Error("offline")) }

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64").replace(/=+$/, "")

/** One exported Megolm session (the spec's key export format): version 1, index 0, ratchet, signing key. */
const exportedSession = (senderKey: string) => {
  const { publicKey } = generateKeyPairSync("ed25519")
  const signing = publicKey.export({ format: "der", type: "spki" }).subarray(-32)
  const sessionKey = Buffer.concat([Buffer.from([1]), Buffer.alloc(4), randomBytes(128), signing])
  return {
    algorithm: "m.megolm.v1.aes-sha2",
    room_id: ROOM,
    sender_key: senderKey,
    session_id: b64(signing),
    session_key: b64(sessionKey),
    sender_claimed_keys: { ed25519: b64(signing) },
    forwarding_curve25519_key_chain: []
  }
}

export interface GrowthRow {
  readonly sessions: number
  readonly fileBytes: number
  /** One snapshot after one more room key (median). */
  readonly snapshotMs: number
  /** The machine storing that one room key, for scale (median). */
  readonly oneKeyMs: number
  /** Open: read the file, restore it into IndexedDB, start the machine. */
  readonly openMs: number
  readonly importMs: number
}

const importSessions = async (e2ee: E2ee, count: number): Promise<void> => {
  const senderKey = b64(randomBytes(32))
  for (let done = 0; done < count; ) {
    const n = Math.min(2000, count - done)
    const batch = Array.from({ length: n }, () => exportedSession(senderKey))
    const result = await e2ee.exclusive((machine) => machine.importExportedRoomKeys(JSON.stringify(batch), () => undefined))
    if (result.importedCount !== n) throw new Error(`imported ${result.importedCount} of ${n}`)
    result.free()
    done += n
  }
}

export const measureGrowth = async (sizes: ReadonlyArray<number>, rounds = 5): Promise<ReadonlyArray<GrowthRow>> => {
  const rows: Array<GrowthRow> = []
  for (const sessions of sizes) {
    const dir = await mkdtemp(join(tmpdir(), "widgethost-store-growth-"))
    const storeFile = join(dir, "crypto.v8")
    try {
      const e2ee = await E2ee.open({ userId: USER, deviceId: DEVICE, http: offline, storeFile })
      const t0 = performance.now()
      await importSessions(e2ee, sessions)
      const importMs = performance.now() - t0
      const snapshots: Array<number> = []
      const oneKey: Array<number> = []
      for (let r = 0; r < rounds; r++) {
        // The write a sync bringing one room key makes, then the snapshot the round ends with.
        const t = performance.now()
        const result = await e2ee.machine.importExportedRoomKeys(JSON.stringify([exportedSession(b64(randomBytes(32)))]), () => undefined)
        result.free()
        const written = performance.now()
        await e2ee.persist()
        snapshots.push(performance.now() - written)
        oneKey.push(written - t)
      }
      await e2ee.close()
      const fileBytes = (await stat(storeFile)).size
      const opens: Array<number> = []
      for (let r = 0; r < Math.min(rounds, 3); r++) {
        const t = performance.now()
        const again = await E2ee.open({ userId: USER, deviceId: DEVICE, http: offline, storeFile })
        opens.push(performance.now() - t)
        await again.close()
      }
      rows.push({ sessions, fileBytes, snapshotMs: median(snapshots), oneKeyMs: median(oneKey), openMs: median(opens), importMs })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  return rows
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "")
if (isMain) {
  const { values } = parseArgs({ options: { sizes: { type: "string", default: "1000,10000,100000" }, json: { type: "string" }, rounds: { type: "string", default: "5" } } })
  const sizes = values.sizes.split(",").map(Number)
  const rows = await measureGrowth(sizes, Number(values.rounds))
  process.stdout.write("sessions   file MB   storing one key (ms)   snapshot after it (ms)   open (ms)   import all (ms)\n")
  for (const r of rows)
    process.stdout.write(
      `${String(r.sessions).padStart(8)}   ${(r.fileBytes / 1e6).toFixed(2).padStart(7)}   ${r.oneKeyMs.toFixed(1).padStart(20)}   ${r.snapshotMs.toFixed(1).padStart(22)}   ${r.openMs.toFixed(0).padStart(9)}   ${r.importMs.toFixed(0).padStart(15)}\n`
    )
  if (values.json !== undefined) await writeFile(values.json, JSON.stringify(rows, null, 2))
}
