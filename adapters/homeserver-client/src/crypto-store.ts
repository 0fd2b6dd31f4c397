/**
 * The crypto store: crypto-wasm's IndexedDB store on Node (fake-indexeddb), persisted to a
 * snapshot file plus a journal of the writes since (see {@link IdbSnapshotStore}), and durable
 * writes.
 */
import { rename } from "node:fs/promises"
import { dirname } from "node:path"
import { type JournalBatch, type JournalHeader, type JournalOp, JOURNAL_FORMAT, JournalWriter } from "./crypto-journal.ts"
import { loadStore, type StoreFiles, storeFiles, type StoreOwner } from "./crypto-store-files.ts"
import { syncDirectory, writeFileDurably } from "./durable-file.ts"
import { captureWrites } from "./idb-write-capture.ts"
import { ensureIndexedDb, idbRequest, readDatabasePieces, restoreDatabase } from "./idb-snapshot.ts"
import { SnapshotWriter } from "./snapshot-file.ts"
import type { OnLoadProgress } from "./load-progress.ts"

export { writeFileDurably }

/** When the journal is folded into a new snapshot, and how. */
export interface CryptoStoreCompaction {
  /**
   * Compact once the journal is larger than this many bytes or than the snapshot, whichever is
   * more (so the writing a compaction costs is at most about what the rounds before wrote, and
   * opening replays at most a snapshot's worth). Default 1 MiB.
   */
  readonly minJournalBytes?: number
  /** Compact once the journal holds this many rounds (bounds replay work at open). Default 10,000. */
  readonly maxJournalRounds?: number
  /**
   * Records read, serialized and written per step of a compaction; between steps the event loop
   * runs (and rounds go on persisting). Default 256.
   */
  readonly pageRecords?: number
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
 * - When the journal outgrows its bound ({@link CryptoStoreCompaction}), a compaction starts in the
 *   background, not in the `persist` that crossed the bound: the journal is cut (between two
 *   rounds, the next ones append to a new segment), then the store is read page by page and
 *   written as snapshot `g + 1` while rounds go on, then the new segment becomes the journal
 *   (crypto-store-files.ts has the steps and what a crash at each leaves).
 * - Something a journal cannot say (an upgrade changed the schema, an append failed) makes the
 *   next `persist` do the whole compaction before it resolves.
 * - Opening reads the snapshot, applies the journal (both segments, mid-compaction), and restores
 *   that into a fresh, never-used database name. A torn last record (a crash mid-append: never
 *   acknowledged) is cut off. So a reopened machine reads only what reached the disk.
 *
 * With `passphrase`, crypto-wasm encrypts the values itself (its store cipher), so neither file
 * holds a private key in clear.
 */
export class IdbSnapshotStore {
  /** Writes committed since the last persisted round, in commit order. */
  private pending: Array<JournalOp> = []
  /** The next persist compacts before it resolves (the journal cannot say what happened). */
  private snapshotDue: boolean
  /** A compaction should start after the next round (a previous one failed, or one was under way at open). */
  private compactionDue = false
  /** The journal rounds append to: `.journal`, or `.journal.next` while cut. */
  private journal: JournalWriter | undefined
  /** The journal before the cut, closed once the compaction is done. */
  private previous: JournalWriter | undefined
  /** Cut: rounds go to `.journal.next`, for snapshot `nextGeneration`, not yet switched to. */
  private cut = false
  private nextGeneration = 0
  private snapshotBytes = 0
  /** Persist calls (and cuts) run one after another: records go to the journal in round order. */
  private queue: Promise<unknown> = Promise.resolve()
  /** The snapshot being written (outside the queue), if any. */
  private writing: Promise<void> | undefined
  private stopping = false
  private stopCapture: (() => void) | undefined
  /** Compactions finished by this instance. */
  compactions = 0
  /** Why the last background compaction failed (it is tried again after the next round). */
  lastCompactionError: unknown
  private readonly files: StoreFiles | undefined
  private constructor(
    /** The database name prefix given to crypto-wasm. */
    readonly storeName: string,
    file: string | undefined,
    private readonly owner: StoreOwner,
    private generation: number,
    private readonly compaction: Required<CryptoStoreCompaction>
  ) {
    this.files = file === undefined ? undefined : storeFiles(file)
    this.snapshotDue = generation < 0
  }

  /**
   * Restores `file` (if it exists) and its journal into a fresh store name; checks they belong to
   * `owner`. `compaction` tunes when and how the journal becomes a new snapshot.
   */
  static async open(file: string | undefined, owner: StoreOwner, compaction: CryptoStoreCompaction = {}, onProgress?: OnLoadProgress): Promise<IdbSnapshotStore> {
    ensureIndexedDb()
    storeCounter += 1
    const storeName = `widgethost-${process.pid}-${storeCounter}-${Math.random().toString(36).slice(2)}`
    const limits = { minJournalBytes: compaction.minJournalBytes ?? 1 << 20, maxJournalRounds: compaction.maxJournalRounds ?? 10_000, pageRecords: compaction.pageRecords ?? 256 }
    if (file === undefined) return new IdbSnapshotStore(storeName, file, owner, -1, limits)
    let done = 0
    let total = 0
    const report = (step: string) => onProgress?.({ task: "crypto-store", step, done, total, unit: "records", finished: false })
    // The journal is replayed in memory, onto the snapshot's records, before they are restored.
    const loaded = await loadStore(storeFiles(file), owner, () => report("replaying the journal"))
    const store = new IdbSnapshotStore(storeName, file, owner, loaded.generation, limits)
    store.snapshotBytes = loaded.snapshotBytes
    total = loaded.databases.reduce((sum, db) => sum + db.stores.reduce((n, s) => n + s.keys.length, 0), 0)
    report("restoring records")
    for (const db of loaded.databases)
      await restoreDatabase(storeName + db.suffix, db, (n) => {
        done += n
        report("restoring records")
      })
    if (loaded.live !== undefined) store.journal = await JournalWriter.resume(loaded.live.path, loaded.live.validLength, loaded.live.batches)
    store.cut = loaded.cut
    store.nextGeneration = loaded.generation + 1
    store.compactionDue = loaded.cut
    store.stopCapture = captureWrites(storeName, {
      committed: (ops) => {
        for (const op of ops) store.pending.push(op)
      },
      needsSnapshot: () => {
        store.snapshotDue = true
      }
    })
    return store
  }

  /** Writes what changed since the last call to disk (one journal record); resolves once it is durable. */
  persist(): Promise<void> {
    return this.enqueue(() => this.persistNow())
  }

  /** Resolves once no compaction is queued or being written (for tests and benchmarks). */
  async idle(): Promise<void> {
    for (;;) {
      const queue = this.queue
      const writing = this.writing
      await queue
      await writing?.catch(() => undefined)
      if (queue === this.queue && writing === this.writing) return
    }
  }

  /** Whether a snapshot is being written now. */
  get compacting(): boolean {
    return this.writing !== undefined
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step)
    this.queue = run.catch(() => undefined)
    return run
  }

  private async persistNow(): Promise<void> {
    if (this.files === undefined || this.stopping) return
    if (this.snapshotDue) return this.compactNow()
    if (this.pending.length === 0) return
    const files = this.files
    const batch: JournalBatch = this.pending
    this.pending = []
    try {
      this.journal ??= await JournalWriter.create(files.journal, this.header(this.generation))
      await this.journal.append(batch)
    } catch (e) {
      // These writes reached no file: only a whole snapshot can catch the disk up again.
      this.snapshotDue = true
      throw e
    }
    if (this.writing === undefined && (this.compactionDue || this.overBound())) this.compactInBackground()
  }

  private overBound(): boolean {
    const journal = this.journal
    return journal !== undefined && (journal.bytes > Math.max(this.compaction.minJournalBytes, this.snapshotBytes) || journal.batches >= this.compaction.maxJournalRounds)
  }

  /** Queues the cut after the current round; the snapshot is then written outside the queue. */
  private compactInBackground(): void {
    this.compactionDue = false
    void this.enqueue(async () => {
      if (this.writing !== undefined || this.stopping) return
      await this.cutJournal()
      void this.startWriting()
    }).catch((e: unknown) => this.failed(e))
  }

  private failed(e: unknown): void {
    if (this.stopping) return
    this.lastCompactionError = e
    this.compactionDue = true
  }

  /** The whole compaction, inside the queue: the round that needed it resolves once it is done. */
  private async compactNow(): Promise<void> {
    // A snapshot being written finishes first (it never waits on the queue, so this cannot deadlock).
    await this.writing?.catch(() => undefined)
    this.snapshotDue = false
    try {
      await this.cutJournal()
      // What was committed before the cut is in the snapshot read after it, and this round
      // resolves only once that is on disk. Dropped, not appended: such writes may name an object
      // store the upgrade that made this snapshot due has since deleted. Later writes stay pending.
      this.pending = []
      await this.startWriting()
    } catch (e) {
      this.snapshotDue = true
      throw e
    }
  }

  /** In the queue (between rounds): the next rounds go to a new segment for generation + 1. */
  private async cutJournal(): Promise<void> {
    if (this.cut || this.files === undefined) return
    const next = await JournalWriter.create(this.files.nextJournal, this.header(this.generation + 1))
    this.previous = this.journal
    this.journal = next
    this.nextGeneration = this.generation + 1
    this.cut = true
  }

  /** Starts `writeSnapshot` as `writing` (cleared when it settles; its failure is kept, never unhandled). */
  private startWriting(): Promise<void> {
    const run: Promise<void> = this.writeSnapshot().finally(() => {
      if (this.writing === run) this.writing = undefined
    })
    this.writing = run
    run.catch(() => undefined)
    return run
  }

  /**
   * Outside the queue: snapshot `generation + 1` from the databases as they are now (every write
   * since the cut is also in the new segment, see `readDatabasePieces`), then the new segment
   * becomes the journal. A retry after the snapshot was renamed in only redoes the switch.
   */
  private async writeSnapshot(): Promise<void> {
    const files = this.files
    try {
      if (files === undefined || !this.cut) return
      const generation = this.nextGeneration
      if (this.generation < generation) {
        const writer = await SnapshotWriter.create(files.snapshot, { format: 3, userId: this.owner.userId, deviceId: this.owner.deviceId, generation })
        try {
          for (const name of await this.databaseNames())
            for await (const piece of readDatabasePieces(name, name.slice(this.storeName.length), this.compaction.pageRecords, () => this.stopping)) await writer.append(piece)
        } catch (e) {
          await writer.abort()
          throw e
        }
        await writer.commit()
        this.generation = generation
        this.snapshotBytes = writer.bytes
      }
      // From here a crash opens snapshot g + 1 with `.journal.next`; the rename makes that `.journal`.
      await rename(files.nextJournal, files.journal)
      await syncDirectory(dirname(files.journal))
      this.cut = false
      this.compactions += 1
      const old = this.previous
      this.previous = undefined
      await old?.close()
    } catch (e) {
      this.failed(e)
      throw e
    }
  }

  private header(generation: number): JournalHeader {
    return { format: JOURNAL_FORMAT, version: 1, userId: this.owner.userId, deviceId: this.owner.deviceId, generation }
  }

  private async databaseNames(): Promise<ReadonlyArray<string>> {
    const names: Array<string> = []
    for (const info of await indexedDB.databases()) if (info.name !== undefined && info.name.startsWith(`${this.storeName}::`)) names.push(info.name)
    return names.sort()
  }

  /** Stops persisting (a compaction under way stops between pages), closes the journal and frees the in-memory databases. */
  async dispose(): Promise<void> {
    this.stopCapture?.()
    await this.queue
    this.stopping = true
    await this.writing?.catch(() => undefined)
    await this.journal?.close()
    await this.previous?.close()
    this.journal = undefined
    this.previous = undefined
    const all = await indexedDB.databases()
    for (const info of all) {
      if (info.name === undefined || !info.name.startsWith(`${this.storeName}::`)) continue
      const req = indexedDB.deleteDatabase(info.name)
      // A connection crypto-wasm failed to close would block the delete forever; memory is all we lose.
      await Promise.race([idbRequest(req), new Promise((r) => setTimeout(r, 1000).unref())])
    }
  }
}
