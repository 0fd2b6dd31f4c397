/**
 * The crypto store's files (crypto-store.ts) and what a crash can leave of them, read back at open.
 *
 * - `<file>`: the snapshot of generation `g` (snapshot-file.ts).
 * - `<file>.journal`: the writes since snapshot `g` (crypto-journal.ts; its header says `g`).
 * - `<file>.journal.next`: only while a compaction runs: the writes since the compaction's cut,
 *   for snapshot `g + 1`, which is being written beside it as a temporary file.
 *
 * A compaction goes: create `.journal.next` (durable, header only); cut (the next round appends
 * there, never again to `.journal`); write snapshot `g + 1` to a temporary file, fsync, rename over
 * `<file>`, fsync the directory; rename `.journal.next` over `.journal`, fsync the directory. So a
 * crash leaves one of these, each opening to every acknowledged round:
 *
 * | snapshot | `.journal` | `.journal.next` | replayed                      |
 * | -------- | ---------- | --------------- | ----------------------------- |
 * | `g`      | `g`        | none            | `.journal`                    |
 * | `g`      | `g`        | `g + 1`         | `.journal`, then `.journal.next` (the compaction is redone) |
 * | `g + 1`  | `g` (stale)| `g + 1`         | `.journal.next` (then renamed over `.journal`) |
 * | `g + 1`  | `g + 1`    | none            | `.journal`                    |
 *
 * A `.journal` one generation behind its snapshot with no `.journal.next` is what the format
 * before this one left when it crashed between its snapshot and its new journal: already in the
 * snapshot, not replayed.
 */
import { readdir, readFile, rename, rm } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import { type JournalBatch, type ReadJournal, readJournal } from "./crypto-journal.ts"
import { syncDirectory } from "./durable-file.ts"
import type { SnapshotDatabase } from "./idb-snapshot.ts"
import { applyBatches } from "./journal-replay.ts"
import { readSnapshot } from "./snapshot-file.ts"

export interface StoreOwner {
  readonly userId: string
  readonly deviceId: string
}

export interface StoreFiles {
  readonly snapshot: string
  readonly journal: string
  readonly nextJournal: string
}

export const storeFiles = (file: string): StoreFiles => ({ snapshot: file, journal: `${file}.journal`, nextJournal: `${file}.journal.next` })

/** A journal to go on appending to: where, how much of it is sound, for which generation. */
export interface LiveJournal {
  readonly path: string
  readonly validLength: number
  readonly batches: number
}

export interface LoadedStore {
  /** The snapshot's generation; -1 without one. */
  readonly generation: number
  readonly snapshotBytes: number
  /** The snapshot with every sound journal record applied. */
  readonly databases: ReadonlyArray<SnapshotDatabase>
  /** The journal the next round appends to, if one continues the state (else a new one is made). */
  readonly live: LiveJournal | undefined
  /** A compaction was under way: `live` is `.journal.next` (generation + 1) and the compaction must be redone. */
  readonly cut: boolean
}

const readIfExists = async (file: string): Promise<Buffer | undefined> => {
  try {
    return await readFile(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

export const assertOwner = (file: string, found: StoreOwner, owner: StoreOwner): void => {
  if (found.userId !== owner.userId || found.deviceId !== owner.deviceId)
    throw new Error(`crypto store ${file} belongs to ${found.userId}/${found.deviceId}, not ${owner.userId}/${owner.deviceId}`)
}

const journalOf = async (path: string, owner: StoreOwner): Promise<ReadJournal | undefined> => {
  const bytes = await readIfExists(path)
  if (bytes === undefined) return undefined
  const journal = readJournal(bytes, path)
  assertOwner(path, journal.header, owner)
  return journal
}

const live = (path: string, journal: ReadJournal): LiveJournal => ({ path, validLength: journal.validLength, batches: journal.batches.length })

/** Temporary files a crashed process (another pid) left beside the store: never renamed, never acknowledged. */
const removeLeftovers = async (files: StoreFiles): Promise<void> => {
  const dir = dirname(files.snapshot)
  const prefix = `${basename(files.snapshot)}.`
  let names: ReadonlyArray<string>
  try {
    names = await readdir(dir)
  } catch {
    return
  }
  const mine = `.${process.pid}.tmp`
  for (const name of names) if (name.startsWith(prefix) && name.endsWith(".tmp") && !name.endsWith(mine)) await rm(join(dir, name), { force: true })
}

/** Reads the store's files into the state they hold (see the table above); finishes a half-done switch. */
/** `onReplay` is told before journal records are applied (none when there are none). */
export const loadStore = async (files: StoreFiles, owner: StoreOwner, onReplay?: () => void): Promise<LoadedStore> => {
  await removeLeftovers(files)
  const bytes = await readIfExists(files.snapshot)
  if (bytes === undefined) {
    // Journals without their snapshot (deleted to start over, or a first snapshot never made) continue nothing.
    await rm(files.journal, { force: true })
    await rm(files.nextJournal, { force: true })
    return { generation: -1, snapshotBytes: 0, databases: [], live: undefined, cut: false }
  }
  const snapshot = readSnapshot(bytes, files.snapshot)
  assertOwner(files.snapshot, snapshot, owner)
  const g = snapshot.generation
  const journal = await journalOf(files.journal, owner)
  const next = await journalOf(files.nextJournal, owner)
  const loaded = (batches: ReadonlyArray<JournalBatch>, current: LiveJournal | undefined, cut: boolean): LoadedStore => {
    if (batches.length > 0) onReplay?.()
    return { generation: g, snapshotBytes: bytes.length, databases: applyBatches(snapshot.databases, batches), live: current, cut }
  }
  if (next !== undefined && next.header.generation === g) {
    // The snapshot was renamed in, the journal switch was not: finish it.
    await rename(files.nextJournal, files.journal)
    await syncDirectory(dirname(files.journal))
    return loaded(next.batches, live(files.journal, next), false)
  }
  // A journal one generation behind, or none (no round since the snapshot): nothing to replay from it.
  const current = journal?.header.generation === g ? journal : undefined
  if (next !== undefined && next.header.generation === g + 1) return loaded([...(current?.batches ?? []), ...next.batches], live(files.nextJournal, next), true)
  if (next !== undefined) throw new Error(`crypto store ${files.nextJournal}: generation ${next.header.generation} beside snapshot ${g}; refusing to guess`)
  return loaded(current?.batches ?? [], current === undefined ? undefined : live(files.journal, current), false)
}
