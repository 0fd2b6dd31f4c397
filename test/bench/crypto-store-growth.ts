/**
 * How the crypto store's persistence (crypto-store.ts: snapshot plus journal) grows with the
 * store: for stores of N inbound group sessions (room keys), the snapshot file's size, the time
 * of one persist after a small write (what every sync round that brings one room key pays: one
 * journal record), the time of one compaction (a whole snapshot, paid once the journal outgrows
 * the snapshot), and the time to open the store again (restore the snapshot, replay the journal,
 * start the machine).
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
import { type CryptoHttp, E2ee, IdbSnapshotStore } from "@widgethost/homeserver-client"
import { median } from "./harness.ts"

const ROOM = "!bench:localhost"
const USER = "@bench:localhost"
const DEVICE = "BENCHDEVICE"

/** Nothing leaves the process: the bench needs no server (no request is made without a sync). */
const offline: CryptoHttp = { request: () => Promise.reject(new Error("offline")) }

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64").replace(/=+$/, "")

/** One exported Megolm session (the spec's key export format): version 1, index 0, ratchet, signing key. */
export const exportedSession = (senderKey: string) => {
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
  /** The snapshot file. */
  readonly fileBytes: number
  /** The journal after the measured rounds. */
  readonly journalBytes: number
  /** One persist after one more room key (median): a journal record, appended and fsynced. */
  readonly persistMs: number
  /** One compaction: the whole store written as a new snapshot. */
  readonly compactMs: number
  /** The machine storing that one room key, for scale (median). */
  readonly oneKeyMs: number
  /** Open: read the file, restore it into IndexedDB, start the machine. */
  readonly openMs: number
  readonly importMs: number
}

export const importSessions = async (e2ee: E2ee, count: number): Promise<void> => {
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

/**
 * One compaction of the store in `storeFile`: opened with a journal bound of one round, one write
 * in crypto-wasm's database, then the persist that crosses the bound, until the background
 * compaction it starts is done (crypto-store-compaction.ts measures what it costs the rounds).
 */
const timeCompaction = async (storeFile: string): Promise<number> => {
  const store = await IdbSnapshotStore.open(storeFile, { userId: USER, deviceId: DEVICE }, { maxJournalRounds: 1 })
  try {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(`${store.storeName}::matrix-sdk-crypto`)
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error ?? new Error("open failed"))
    })
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction("core", "readwrite")
      tx.objectStore("core").put("bench", "bench-compaction-marker")
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error ?? new Error("write failed"))
    })
    db.close()
    const t = performance.now()
    await store.persist()
    // The compaction runs after that persist, in the background: timed until it is done.
    await store.idle()
    return performance.now() - t
  } finally {
    await store.dispose()
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
      const persists: Array<number> = []
      const oneKey: Array<number> = []
      for (let r = 0; r < rounds; r++) {
        // The write a sync bringing one room key makes, then the persist the round ends with.
        const t = performance.now()
        const result = await e2ee.machine.importExportedRoomKeys(JSON.stringify([exportedSession(b64(randomBytes(32)))]), () => undefined)
        result.free()
        const written = performance.now()
        await e2ee.persist()
        persists.push(performance.now() - written)
        oneKey.push(written - t)
      }
      await e2ee.close()
      const fileBytes = (await stat(storeFile)).size
      const journalBytes = (await stat(`${storeFile}.journal`)).size
      const compactMs = await timeCompaction(storeFile)
      const opens: Array<number> = []
      for (let r = 0; r < Math.min(rounds, 3); r++) {
        const t = performance.now()
        const again = await E2ee.open({ userId: USER, deviceId: DEVICE, http: offline, storeFile })
        opens.push(performance.now() - t)
        await again.close()
      }
      rows.push({ sessions, fileBytes, journalBytes, persistMs: median(persists), compactMs, oneKeyMs: median(oneKey), openMs: median(opens), importMs })
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
  process.stdout.write("sessions   snapshot MB   journal KB   storing one key (ms)   persist after it (ms)   compaction (ms)   open (ms)   import all (ms)\n")
  for (const r of rows)
    process.stdout.write(
      `${String(r.sessions).padStart(8)}   ${(r.fileBytes / 1e6).toFixed(2).padStart(11)}   ${(r.journalBytes / 1e3).toFixed(1).padStart(10)}   ${r.oneKeyMs.toFixed(1).padStart(20)}   ${r.persistMs.toFixed(1).padStart(21)}   ${r.compactMs.toFixed(0).padStart(15)}   ${r.openMs.toFixed(0).padStart(9)}   ${r.importMs.toFixed(0).padStart(15)}\n`
    )
  if (values.json !== undefined) await writeFile(values.json, JSON.stringify(rows, null, 2))
}
