/**
 * The crypto store's snapshot file (crypto-store.ts), written in pieces so that no step holds the
 * event loop for long: a whole store of 100k room keys is tens of megabytes, and one
 * `v8.serialize` of all of it blocks for seconds.
 *
 * Format 3: the 8 bytes {@link SNAPSHOT_MAGIC}, then records framed as the journal's
 * (crypto-journal.ts: length, crc32, v8 payload): one {@link SnapshotHeader}, then
 * {@link SnapshotPiece}s in order (a database, its object stores, each store's rows in pages), then
 * one `end` piece with the row count. The file is written to a temporary name, fsynced and renamed
 * over the old one, so it is whole or absent; the `end` piece still guards against a truncated
 * copy. Formats 1 and 2 (one `v8.serialize`d object, from before) are still read.
 */
import { open, rename, rm, type FileHandle } from "node:fs/promises"
import { dirname } from "node:path"
import { deserialize } from "node:v8"
import { frameRecord, readRecords } from "./crypto-journal.ts"
import { syncDirectory } from "./durable-file.ts"
import type { SnapshotDatabase, SnapshotIndex, SnapshotObjectStore } from "./idb-snapshot.ts"

export const SNAPSHOT_MAGIC = Buffer.from("WHCSNAP3", "latin1")

export interface SnapshotHeader {
  readonly format: 3
  readonly userId: string
  readonly deviceId: string
  /** Which journal continues it (see crypto-journal.ts). */
  readonly generation: number
}

/** One piece of a snapshot stream; `rows` belong to the store named last. */
export type SnapshotPiece =
  | { readonly kind: "database"; readonly suffix: string; readonly version: number }
  | {
      readonly kind: "store"
      readonly name: string
      readonly keyPath: string | ReadonlyArray<string> | null
      readonly autoIncrement: boolean
      readonly indexes: ReadonlyArray<SnapshotIndex>
    }
  | { readonly kind: "rows"; readonly keys: ReadonlyArray<IDBValidKey>; readonly values: ReadonlyArray<unknown> }
  | { readonly kind: "end"; readonly rows: number }

export interface ReadSnapshot {
  readonly userId: string
  readonly deviceId: string
  readonly generation: number
  readonly databases: ReadonlyArray<SnapshotDatabase>
}

/** Before format 3: the whole snapshot as one v8 value (format 1 had no generation: 0). */
interface LegacySnapshot {
  readonly format: 1 | 2
  readonly userId: string
  readonly deviceId: string
  readonly generation?: number
  readonly databases: ReadonlyArray<SnapshotDatabase>
}

/** Parses a snapshot file of any format; throws on a foreign, damaged or truncated file. */
export const readSnapshot = (bytes: Buffer, name: string): ReadSnapshot => {
  if (!bytes.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) {
    const legacy = deserialize(bytes) as Partial<LegacySnapshot>
    if ((legacy.format !== 1 && legacy.format !== 2) || legacy.databases === undefined) throw new Error(`crypto store ${name}: unknown format`)
    return { userId: String(legacy.userId), deviceId: String(legacy.deviceId), generation: legacy.generation ?? 0, databases: legacy.databases }
  }
  const { payloads, validLength } = readRecords(bytes, SNAPSHOT_MAGIC.length)
  if (validLength !== bytes.length) throw new Error(`crypto store ${name}: damaged at byte ${validLength}`)
  const [first, ...rest] = payloads.map((p) => deserialize(p) as unknown)
  const header = first as Partial<SnapshotHeader> | undefined
  if (header?.format !== 3) throw new Error(`crypto store ${name}: unknown format`)
  const databases: Array<{ suffix: string; version: number; stores: Array<SnapshotObjectStore & { keys: Array<IDBValidKey>; values: Array<unknown> }> }> = []
  let rows = 0
  let ended = false
  for (const value of rest) {
    const piece = value as SnapshotPiece
    if (ended) throw new Error(`crypto store ${name}: data after the end`)
    if (piece.kind === "database") databases.push({ suffix: piece.suffix, version: piece.version, stores: [] })
    else if (piece.kind === "store") {
      const db = databases.at(-1)
      if (db === undefined) throw new Error(`crypto store ${name}: an object store outside a database`)
      db.stores.push({ name: piece.name, keyPath: piece.keyPath, autoIncrement: piece.autoIncrement, indexes: piece.indexes, keys: [], values: [] })
    } else if (piece.kind === "rows") {
      const store = databases.at(-1)?.stores.at(-1)
      if (store === undefined || piece.keys.length !== piece.values.length) throw new Error(`crypto store ${name}: rows outside an object store`)
      for (let i = 0; i < piece.keys.length; i++) {
        store.keys.push(piece.keys[i]!)
        store.values.push(piece.values[i])
      }
      rows += piece.keys.length
    } else if (piece.kind === "end") {
      if (piece.rows !== rows) throw new Error(`crypto store ${name}: ${rows} rows, the end says ${piece.rows}`)
      ended = true
    } else throw new Error(`crypto store ${name}: unknown piece`)
  }
  if (!ended) throw new Error(`crypto store ${name}: truncated (no end)`)
  return { userId: String(header.userId), deviceId: String(header.deviceId), generation: Number(header.generation), databases }
}

/** How much of a snapshot may sit unflushed while it is written. */
const SYNC_EVERY = 256 * 1024

/**
 * Writes a snapshot piece by piece to a temporary file beside `file`; `commit` makes it durable
 * and renames it over `file` (then fsyncs the directory), `abort` removes it. A crash before the
 * rename leaves `file` as it was.
 */
export class SnapshotWriter {
  private rows = 0
  /** Bytes known flushed to disk. */
  private synced = 0
  private constructor(
    private readonly file: string,
    private readonly temp: string,
    private readonly handle: FileHandle,
    private position: number
  ) {}

  /** The temporary name: `<file>.snapshot.<pid>.tmp` (a crashed process's leftovers name their pid). */
  static tempName(file: string, pid = process.pid): string {
    return `${file}.snapshot.${pid}.tmp`
  }

  static async create(file: string, header: SnapshotHeader): Promise<SnapshotWriter> {
    const temp = SnapshotWriter.tempName(file)
    const handle = await open(temp, "w", 0o600)
    const writer = new SnapshotWriter(file, temp, handle, 0)
    try {
      await writer.write(Buffer.concat([SNAPSHOT_MAGIC, frameRecord(header)]))
    } catch (e) {
      await writer.abort()
      throw e
    }
    return writer
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.position
  }

  /**
   * Appends one piece (not yet durable). Every {@link SYNC_EVERY} bytes the file is flushed:
   * a journal append's fsync on the same file system also waits for other files' dirty pages
   * (ext4's ordered mode), so a snapshot left dirty in the page cache would slow every round that
   * persists while it is written.
   */
  async append(piece: SnapshotPiece): Promise<void> {
    if (piece.kind === "rows") this.rows += piece.keys.length
    await this.write(frameRecord(piece))
    if (this.position - this.synced >= SYNC_EVERY) {
      await this.handle.datasync()
      this.synced = this.position
    }
  }

  /** Ends the stream, fsyncs, renames over the snapshot and fsyncs the directory. */
  async commit(): Promise<void> {
    try {
      await this.write(frameRecord({ kind: "end", rows: this.rows } satisfies SnapshotPiece))
      await this.handle.sync()
    } catch (e) {
      await this.abort()
      throw e
    }
    await this.handle.close()
    await rename(this.temp, this.file)
    await syncDirectory(dirname(this.file))
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined)
    await rm(this.temp, { force: true })
  }

  private async write(bytes: Buffer): Promise<void> {
    let written = 0
    while (written < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, this.position + written)
      written += bytesWritten
    }
    this.position += bytes.length
  }
}
