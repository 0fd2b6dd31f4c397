/**
 * The crypto store: crypto-wasm's IndexedDB store on Node (fake-indexeddb), persisted to a
 * snapshot file plus a journal of the writes since (see {@link IdbSnapshotStore}), and durable
 * writes.
 */
import { readFile, rm } from "node:fs/promises"
import { deserialize, serialize } from "node:v8"
import { type JournalBatch, type JournalHeader, type JournalOp, JOURNAL_FORMAT, JournalWriter, readJournal } from "./crypto-journal.ts"
import { writeFileDurably } from "./durable-file.ts"
import { captureWrites } from "./idb-write-capture.ts"
import { dumpDatabase, ensureIndexedDb, idbRequest, replayBatches, restoreDatabase, type SnapshotDatabase } from "./idb-snapshot.ts"
import type { OnLoadProgress } from "./load-progress.ts"

export { writeFileDurably }

interface Snapshot {
  /** 1: before the journal (read as generation 0). */
  readonly format: 1 | 2
  readonly userId: string
  readonly deviceId: string
  /** Which journal continues it (see crypto-journal.ts). */
  readonly generation?: number
  readonly databases: ReadonlyArray<SnapshotDatabase>
}

/** When the journal is folded into a new snapshot. */
export interface CryptoStoreCompaction {
  /**
   * Compact once the journal is larger than this many bytes or than the snapshot, whichever is
   * more (so the writing a compaction costs is at most about what the rounds before wrote, and
   * opening replays at most a snapshot's worth). Default 1 MiB.
   */
  readonly minJournalBytes?: number
  /** Compact once the journal holds this many rounds (bounds replay work at open). Default 10,000. */
  readonly maxJournalRounds?: number
}

const readIfExists = async (file: string): Promise<Buffer | undefined> => {
  try {
    return await readFile(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

let storeCounter = 0

/**
 * The crypto store: crypto-wasm's IndexedDB store, on fake-indexeddb in memory, persisted as a
 * snapshot file and a journal (`<file>.journal`) of the writes since.
 *
 * Why: crypto-wasm 18.9 has exactly two stores, IndexedDB and memory (`StoreHandle.open(name)` /
 * `OlmMachine.initialize(…, storeName)`); `initFromStore` only takes such a handle, and Node has no
 * IndexedDB. The memory store loses the account on restart (a new device every time, old messages
 * undecryptable). So the IndexedDB store runs on fake-indexeddb, and its writes are persisted:
 *
 * - Every write committed to the store's databases is captured as it happens (idb-write-capture.ts).
 *   After each outgoing-request round, each sync batch and on close, `persist` appends the writes
 *   since the last round to the journal as one record and fsyncs it: O(what changed), not
 *   O(store). When `persist` resolves, the round is on disk.
 * - When the journal outgrows its bound ({@link CryptoStoreCompaction}), or something happened
 *   that a journal cannot say (an upgrade changed the schema), `persist` writes a whole snapshot
 *   (every database read in one read-only transaction, a consistent cut, `v8.serialize`d to a
 *   temporary file, fsynced, renamed over the old one, the directory fsynced) and starts a new
 *   empty journal: a crash leaves the previous or the next state, never half of one.
 * - Opening restores the snapshot into a fresh, never-used database name, replays the journal
 *   over it, and cuts off a torn last record (a crash mid-append: never acknowledged). So a
 *   reopened machine reads only what reached the disk.
 *
 * With `passphrase`, crypto-wasm encrypts the values itself (its store cipher), so neither file
 * holds a private key in clear.
 */
export class IdbSnapshotStore {
  /** Writes committed since the last persisted round, in commit order. */
  private pending: Array<JournalOp> = []
  /** The next persist writes a whole snapshot instead of a journal record. */
  private snapshotDue: boolean
  private journal: JournalWriter | undefined
  private snapshotBytes = 0
  /** Persist calls run one after another: records go to the journal in round order. */
  private queue: Promise<unknown> = Promise.resolve()
  private stopCapture: (() => void) | undefined
  private constructor(
    /** The database name prefix given to crypto-wasm. */
    readonly storeName: string,
    private readonly file: string | undefined,
    private readonly owner: { readonly userId: string; readonly deviceId: string },
    private generation: number,
    private readonly compaction: Required<CryptoStoreCompaction>
  ) {
    this.snapshotDue = generation < 0
  }

  /**
   * Restores `file` (if it exists) and its journal into a fresh store name; checks they belong to
   * `owner`. `compaction` tunes when the journal becomes a new snapshot.
   */
  static async open(
    file: string | undefined,
    owner: { readonly userId: string; readonly deviceId: string },
    compaction: CryptoStoreCompaction = {},
    onProgress?: OnLoadProgress
  ): Promise<IdbSnapshotStore> {
    ensureIndexedDb()
    storeCounter += 1
    const storeName = `widgethost-${process.pid}-${storeCounter}-${Math.random().toString(36).slice(2)}`
    const limits = { minJournalBytes: compaction.minJournalBytes ?? 1 << 20, maxJournalRounds: compaction.maxJournalRounds ?? 10_000 }
    if (file === undefined) return new IdbSnapshotStore(storeName, file, owner, -1, limits)
    const bytes = await readIfExists(file)
    if (bytes === undefined) {
      // A journal without its snapshot (the snapshot was deleted to start over) continues nothing.
      await rm(`${file}.journal`, { force: true })
      return IdbSnapshotStore.capturing(new IdbSnapshotStore(storeName, file, owner, -1, limits))
    }
    const snapshot = deserialize(bytes) as Snapshot
    if (snapshot.format !== 1 && snapshot.format !== 2) throw new Error(`crypto store ${file}: unknown format`)
    assertOwner(file, snapshot, owner)
    const store = new IdbSnapshotStore(storeName, file, owner, snapshot.generation ?? 0, limits)
    store.snapshotBytes = bytes.length
    const total = snapshot.databases.reduce((sum, db) => sum + db.stores.reduce((n, s) => n + s.keys.length, 0), 0)
    let done = 0
    const report = (step: string) => onProgress?.({ task: "crypto-store", step, done, total, unit: "records", finished: false })
    report("restoring records")
    for (const db of snapshot.databases)
      await restoreDatabase(storeName + db.suffix, db, (n) => {
        done += n
        report("restoring records")
      })
    const journalBytes = await readIfExists(store.journalFile)
    if (journalBytes !== undefined) {
      const journal = readJournal(journalBytes, store.journalFile)
      assertOwner(store.journalFile, journal.header, owner)
      // Another generation: a compaction wrote the snapshot and crashed before the new journal;
      // the snapshot holds everything this journal says. The next round starts a new one.
      if (journal.header.generation === store.generation) {
        report("replaying the journal")
        await replayBatches(storeName, journal.batches)
        store.journal = await JournalWriter.resume(store.journalFile, journal.validLength, journal.batches.length)
      }
    }
    return IdbSnapshotStore.capturing(store)
  }

  /** Starts capturing writes (after the restore, whose own writes are already on disk). */
  private static capturing(store: IdbSnapshotStore): IdbSnapshotStore {
    store.stopCapture = captureWrites(store.storeName, {
      committed: (ops) => {
        for (const op of ops) store.pending.push(op)
      },
      needsSnapshot: () => {
        store.snapshotDue = true
      }
    })
    return store
  }

  private get journalFile(): string {
    return `${this.file}.journal`
  }

  /** Writes what changed since the last call to disk (one journal record, or a snapshot); resolves once it is durable. */
  persist(): Promise<void> {
    const run = this.queue.then(() => this.persistNow())
    this.queue = run.catch(() => undefined)
    return run
  }

  private async persistNow(): Promise<void> {
    if (this.file === undefined) return
    if (this.snapshotDue) return this.compact()
    if (this.pending.length === 0) return
    const batch: JournalBatch = this.pending
    this.pending = []
    try {
      this.journal ??= await JournalWriter.create(this.journalFile, this.header())
      await this.journal.append(batch)
    } catch (e) {
      // These writes reached no file: only a whole snapshot can catch the disk up again.
      this.snapshotDue = true
      throw e
    }
    if (this.journal.bytes > Math.max(this.compaction.minJournalBytes, this.snapshotBytes) || this.journal.batches >= this.compaction.maxJournalRounds) await this.compact()
  }

  /** A whole snapshot of the next generation, then an empty journal for it. */
  private async compact(): Promise<void> {
    if (this.file === undefined) return
    // Writes committed before this point are in the dump; any committed during it stay pending
    // and go to the new journal (replaying a write the snapshot already has changes nothing).
    this.snapshotDue = false
    this.pending = []
    try {
      const generation = this.generation + 1
      const bytes = serialize({ format: 2, userId: this.owner.userId, deviceId: this.owner.deviceId, generation, databases: await this.dump() } satisfies Snapshot)
      await writeFileDurably(this.file, bytes)
      this.generation = generation
      this.snapshotBytes = bytes.length
      const old = this.journal
      this.journal = undefined
      await old?.close()
      this.journal = await JournalWriter.create(this.journalFile, this.header())
    } catch (e) {
      this.snapshotDue = true
      throw e
    }
  }

  private header(): JournalHeader {
    return { format: JOURNAL_FORMAT, version: 1, userId: this.owner.userId, deviceId: this.owner.deviceId, generation: this.generation }
  }

  private async dump(): Promise<Array<SnapshotDatabase>> {
    const databases: Array<SnapshotDatabase> = []
    for (const info of await indexedDB.databases()) {
      const name = info.name
      if (name === undefined || !name.startsWith(`${this.storeName}::`)) continue
      databases.push(await dumpDatabase(name, name.slice(this.storeName.length)))
    }
    return databases.sort((a, b) => (a.suffix < b.suffix ? -1 : 1))
  }

  /** Stops persisting, closes the journal and frees the in-memory databases (after the machine is closed). */
  async dispose(): Promise<void> {
    this.stopCapture?.()
    await this.queue
    await this.journal?.close()
    this.journal = undefined
    const all = await indexedDB.databases()
    for (const info of all) {
      if (info.name === undefined || !info.name.startsWith(`${this.storeName}::`)) continue
      const req = indexedDB.deleteDatabase(info.name)
      // A connection crypto-wasm failed to close would block the delete forever; memory is all we lose.
      await Promise.race([idbRequest(req), new Promise((r) => setTimeout(r, 1000).unref())])
    }
  }
}

const assertOwner = (file: string, found: { readonly userId: string; readonly deviceId: string }, owner: { readonly userId: string; readonly deviceId: string }): void => {
  if (found.userId !== owner.userId || found.deviceId !== owner.deviceId)
    throw new Error(`crypto store ${file} belongs to ${found.userId}/${found.deviceId}, not ${owner.userId}/${owner.deviceId}`)
}
