/**
 * The crypto store's journal: the IndexedDB writes made since the last snapshot (crypto-store.ts),
 * one record per persisted round, appended and fsynced in order.
 *
 * Layout: a sequence of records, each `[payload length: u32 LE][crc32 of payload: u32 LE][payload]`,
 * the payload a `v8.serialize`d value. The first record is the {@link JournalHeader}; each later
 * one is a {@link JournalBatch}. A record is acknowledged once `append` resolves (after
 * `datasync`), so a crash can tear only the record being appended: the reader drops a torn last
 * record and keeps all before it. A bad record followed by a good one is not a torn append but
 * damage, and the reader refuses it rather than silently lose acknowledged writes.
 *
 * The header's `generation` names the snapshot the journal applies to. A compaction starts a new
 * journal segment for `g + 1` before it writes snapshot `g + 1`, so the loader can tell, for any
 * crash, which segments continue which snapshot (crypto-store-files.ts has the table).
 */
import { open, type FileHandle } from "node:fs/promises"
import { deserialize, serialize } from "node:v8"
import { crc32 } from "node:zlib"
import { writeFileDurably } from "./durable-file.ts"

export const JOURNAL_FORMAT = "widgethost-crypto-journal"

export interface JournalHeader {
  readonly format: typeof JOURNAL_FORMAT
  readonly version: 1
  readonly userId: string
  readonly deviceId: string
  /** The snapshot generation this journal continues. */
  readonly generation: number
}

/** A key range as plain data (an `IDBKeyRange` does not survive serialization). */
export interface KeyRangeData {
  readonly lower: IDBValidKey | undefined
  readonly upper: IDBValidKey | undefined
  readonly lowerOpen: boolean
  readonly upperOpen: boolean
}

/**
 * One IndexedDB write. `db` is the database name after the store name (e.g. `::matrix-sdk-crypto`);
 * `value` is the record `v8.serialize`d when it was written (so later changes to the caller's
 * object cannot leak in).
 */
export type JournalOp =
  | { readonly op: "put"; readonly db: string; readonly store: string; readonly key: IDBValidKey; readonly value: Uint8Array }
  | { readonly op: "delete"; readonly db: string; readonly store: string; readonly key: IDBValidKey }
  | { readonly op: "deleteRange"; readonly db: string; readonly store: string; readonly range: KeyRangeData }
  | { readonly op: "clear"; readonly db: string; readonly store: string }

/** The writes of one persisted round, in commit order. */
export type JournalBatch = ReadonlyArray<JournalOp>

const FRAME = 8

/** One record's bytes: length, checksum, payload. */
export const frameRecord = (value: unknown): Buffer => {
  const payload = serialize(value)
  const head = Buffer.alloc(FRAME)
  head.writeUInt32LE(payload.length, 0)
  head.writeUInt32LE(crc32(payload), 4)
  return Buffer.concat([head, payload])
}

/** The record at `offset`: its payload and where the next starts, or undefined if it is not whole and sound. */
const recordAt = (bytes: Buffer, offset: number): { readonly payload: Buffer; readonly end: number } | undefined => {
  if (offset + FRAME > bytes.length) return undefined
  const length = bytes.readUInt32LE(offset)
  const end = offset + FRAME + length
  // Zero-length records are never written (a v8 payload has a header): zeros are a torn tail.
  if (length === 0 || end > bytes.length) return undefined
  const payload = bytes.subarray(offset + FRAME, end)
  if (crc32(payload) !== bytes.readUInt32LE(offset + 4)) return undefined
  return { payload, end }
}

export interface ReadJournal {
  readonly header: JournalHeader
  readonly batches: ReadonlyArray<JournalBatch>
  /** Bytes of sound records; the file is cut back to this before the next append. */
  readonly validLength: number
  /** Bytes after them: a torn last record (a crash mid-append), dropped. */
  readonly tornBytes: number
}

/**
 * The sound records from `start` on: their payloads, and where they end. A bad record at the end
 * is a torn append and is dropped; a bad record followed by a sound one is damage: that throws.
 */
export const readRecords = (bytes: Buffer, start: number, name = "file"): { readonly payloads: ReadonlyArray<Buffer>; readonly validLength: number } => {
  const payloads: Array<Buffer> = []
  let offset = start
  while (offset < bytes.length) {
    const record = recordAt(bytes, offset)
    if (record === undefined) {
      if (soundRecordAfter(bytes, offset)) throw new Error(`crypto journal ${name}: damaged record at byte ${offset} with sound records after it; refusing to guess`)
      break
    }
    payloads.push(record.payload)
    offset = record.end
  }
  return { payloads, validLength: offset }
}

/** Parses a journal file's bytes (see the layout above); throws on a foreign file or damage. */
export const readJournal = (bytes: Buffer, name = "journal"): ReadJournal => {
  const first = recordAt(bytes, 0)
  // The header is written with the file, atomically (temp file and rename): it is never torn.
  if (first === undefined) throw new Error(`crypto journal ${name}: no readable header`)
  const header = deserialize(first.payload) as Partial<JournalHeader>
  if (header.format !== JOURNAL_FORMAT || header.version !== 1) throw new Error(`crypto journal ${name}: not a widgethost crypto journal`)
  const { payloads, validLength } = readRecords(bytes, first.end, name)
  const batches = payloads.map((p) => deserialize(p) as JournalBatch)
  return { header: header as JournalHeader, batches, validLength, tornBytes: bytes.length - validLength }
}

/** Whether the bad record at `offset` is followed by a sound one (damage, not a torn append). */
const soundRecordAfter = (bytes: Buffer, offset: number): boolean => {
  if (offset + FRAME > bytes.length) return false
  const declaredEnd = offset + FRAME + bytes.readUInt32LE(offset)
  return declaredEnd < bytes.length && recordAt(bytes, declaredEnd) !== undefined
}

/**
 * Appends batches to a journal file, each durable (`datasync`) before `append` resolves. One
 * writer per file, one append at a time (the store serializes its rounds).
 */
export class JournalWriter {
  private constructor(
    private readonly handle: FileHandle,
    /** Where the next record goes (the file's sound length). */
    private position: number,
    /** Batches in the file (the header not counted). */
    private count: number
  ) {}

  /** Writes a new journal holding only `header` (temp file, fsync, rename: never half a file). */
  static async create(path: string, header: JournalHeader): Promise<JournalWriter> {
    const bytes = frameRecord(header)
    await writeFileDurably(path, bytes)
    return new JournalWriter(await open(path, "r+"), bytes.length, 0)
  }

  /** Continues an existing journal of `batches` sound batches, first cutting off any torn tail after `validLength`. */
  static async resume(path: string, validLength: number, batches: number): Promise<JournalWriter> {
    const handle = await open(path, "r+")
    try {
      if ((await handle.stat()).size !== validLength) {
        await handle.truncate(validLength)
        await handle.sync()
      }
    } catch (e) {
      await handle.close()
      throw e
    }
    return new JournalWriter(handle, validLength, batches)
  }

  /** The file's length in bytes. */
  get bytes(): number {
    return this.position
  }
  /** Batches appended (this process or before). */
  get batches(): number {
    return this.count
  }

  /** Appends one batch; resolves once it is on disk. */
  async append(batch: JournalBatch): Promise<void> {
    const record = frameRecord(batch)
    let written = 0
    while (written < record.length) {
      const { bytesWritten } = await this.handle.write(record, written, record.length - written, this.position + written)
      written += bytesWritten
    }
    await this.handle.datasync()
    this.position += record.length
    this.count += 1
  }

  async close(): Promise<void> {
    await this.handle.close()
  }
}
