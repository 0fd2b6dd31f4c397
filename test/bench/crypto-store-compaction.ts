/**
 * What a compaction of the crypto store (crypto-store.ts) costs the rounds around it: for stores
 * of N inbound group sessions, rounds of one small write and one `persist()` each, at a sync-like
 * pace (a few ms apart), with the journal bound set so that a compaction starts at round
 * `--compact-at`; rounds go on until it is over and `--after` more have run. Reported: persist
 * latency p50, p99 and max over all rounds, the first compaction's duration (the slowest
 * persist, for a store that compacts inside persist), and the event loop's largest delay over the whole run
 * (`monitorEventLoopDelay`, 1 ms resolution), which is where a compaction that blocks shows.
 *
 * It uses only `IdbSnapshotStore.open(file, owner, { maxJournalRounds })`, `persist()` and
 * crypto-wasm's database, so the same file measures an older store too (`compacting` and `idle`
 * are used when there).
 *
 * Run: `node --conditions=@widgethost/source --import tsx test/bench/crypto-store-compaction.ts [--sizes 1000,10000,100000] [--json out.json]`.
 * Nothing is asserted.
 */
import { randomBytes } from "node:crypto"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { parseArgs } from "node:util"
import { type CryptoHttp, E2ee, IdbSnapshotStore } from "@widgethost/homeserver-client"
import { importSessions } from "./crypto-store-growth.ts"
import { percentile } from "./harness.ts"

const OWNER = { userId: "@bench:localhost", deviceId: "BENCHDEVICE" }
const offline: CryptoHttp = { request: () => Promise.reject(new Error("offline")) }

export interface CompactionRow {
  readonly sessions: number
  readonly rounds: number
  readonly persistP50Ms: number
  readonly persistP99Ms: number
  readonly persistMaxMs: number
  /** From the crossing persist to the new snapshot in place. */
  readonly compactionMs: number
  /** The event loop's largest delay over the run. */
  readonly loopMaxMs: number
}

/** What a newer store has; an older one has neither. */
interface Observable {
  readonly compacting?: boolean
  readonly idle?: () => Promise<void>
}

const putOne = (db: IDBDatabase, key: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const tx = db.transaction("core", "readwrite")
    // About one pickled inbound group session.
    tx.objectStore("core").put(new Uint8Array(randomBytes(1300)), key)
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error ?? new Error("write failed"))
  })

const measure = async (sessions: number, compactAt: number, after: number, paceMs: number): Promise<CompactionRow> => {
  const dir = await mkdtemp(join(tmpdir(), "widgethost-store-compaction-"))
  const storeFile = join(dir, "crypto.v8")
  try {
    const e2ee = await E2ee.open({ ...OWNER, http: offline, storeFile })
    await importSessions(e2ee, sessions)
    await e2ee.close()
    const store = await IdbSnapshotStore.open(storeFile, OWNER, { maxJournalRounds: compactAt })
    const observed = store as unknown as Observable
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(`${store.storeName}::matrix-sdk-crypto`)
      req.onsuccess = () => resolve(req.result)
      req.onerror = () => reject(req.error ?? new Error("open failed"))
    })
    const latencies: Array<number> = []
    const loop = monitorEventLoopDelay({ resolution: 1 })
    loop.enable()
    // A newer store says when it compacts; an older one compacts inside a persist, its slowest.
    const observable = observed.compacting !== undefined
    let previousStart = 0
    let compactionStart: number | undefined
    let compactionMs = Number.NaN
    for (let round = 0; ; round++) {
      await putOne(db, `bench-round-${round}`)
      const t = performance.now()
      await store.persist()
      const done = performance.now()
      latencies.push(done - t)
      if (observable) {
        // Started by the round before the one that first sees it (within one round).
        if (observed.compacting === true && compactionStart === undefined) compactionStart = previousStart
        if (observed.compacting === false && compactionStart !== undefined && Number.isNaN(compactionMs)) compactionMs = done - compactionStart
      }
      previousStart = t
      if (round >= compactAt - 1 + after && (!observable || !Number.isNaN(compactionMs))) break
      await sleep(paceMs)
    }
    if (!observable) compactionMs = Math.max(...latencies)
    await observed.idle?.()
    loop.disable()
    db.close()
    await store.dispose()
    return {
      sessions,
      rounds: latencies.length,
      persistP50Ms: percentile(latencies, 50),
      persistP99Ms: percentile(latencies, 99),
      persistMaxMs: Math.max(...latencies),
      compactionMs,
      loopMaxMs: loop.max / 1e6
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].split("/").pop() ?? "")
if (isMain) {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string", default: "1000,10000,100000" },
      "compact-at": { type: "string", default: "50" },
      after: { type: "string", default: "100" },
      pace: { type: "string", default: "3" },
      json: { type: "string" }
    }
  })
  const rows: Array<CompactionRow> = []
  process.stdout.write("sessions   rounds   persist p50 (ms)   p99 (ms)   max (ms)   compaction (ms)   event-loop max delay (ms)\n")
  for (const sessions of values.sizes.split(",").map(Number)) {
    const r = await measure(sessions, Number(values["compact-at"]), Number(values.after), Number(values.pace))
    rows.push(r)
    process.stdout.write(
      `${String(r.sessions).padStart(8)}   ${String(r.rounds).padStart(6)}   ${r.persistP50Ms.toFixed(2).padStart(16)}   ${r.persistP99Ms.toFixed(2).padStart(8)}   ${r.persistMaxMs.toFixed(1).padStart(8)}   ${r.compactionMs.toFixed(0).padStart(15)}   ${r.loopMaxMs.toFixed(1).padStart(25)}\n`
    )
  }
  if (values.json !== undefined) await writeFile(values.json, JSON.stringify(rows, null, 2))
}
