import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { frameRecord, JOURNAL_FORMAT, type JournalBatch, type JournalHeader, JournalWriter, readJournal } from "./crypto-journal.ts"

const header: JournalHeader = { format: JOURNAL_FORMAT, version: 1, userId: "@bob:test", deviceId: "BOBDEV", generation: 3 }
const batch = (n: number): JournalBatch => [
  { op: "put", db: "::db", store: "core", key: `k${n}`, value: new Uint8Array([n, n + 1, n + 2]) },
  { op: "delete", db: "::db", store: "core", key: ["a", n] },
  { op: "deleteRange", db: "::db", store: "s", range: { lower: n, upper: undefined, lowerOpen: true, upperOpen: false } },
  { op: "clear", db: "::db", store: "t" }
]

let dir: string
let file: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "widgethost-crypto-journal-"))
  file = join(dir, "crypto.v8.journal")
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const writeBatches = async (n: number): Promise<Buffer> => {
  const w = await JournalWriter.create(file, header)
  for (let i = 0; i < n; i++) await w.append(batch(i))
  await w.close()
  return readFile(file)
}

describe("crypto journal format", () => {
  it("reads back the header and every appended batch, in order, with nothing torn", async () => {
    const bytes = await writeBatches(3)
    const read = readJournal(bytes)
    expect(read.header).toEqual(header)
    expect(read.batches).toEqual([batch(0), batch(1), batch(2)])
    expect(read.validLength).toBe(bytes.length)
    expect(read.tornBytes).toBe(0)
  })

  it("a last record torn at any byte is dropped, and only it: the batches before it are kept", async () => {
    const whole = await writeBatches(3)
    const lastStart = whole.length - frameRecord(batch(2)).length
    for (let cut = lastStart + 1; cut < whole.length; cut++) {
      const read = readJournal(whole.subarray(0, cut))
      expect(read.batches).toEqual([batch(0), batch(1)])
      expect(read.validLength).toBe(lastStart)
      expect(read.tornBytes).toBe(cut - lastStart)
    }
  })

  it("a tail of zeros (a crash after the file grew but before its data landed) is a torn record", async () => {
    const whole = await writeBatches(2)
    const read = readJournal(Buffer.concat([whole, Buffer.alloc(100)]))
    expect(read.batches).toEqual([batch(0), batch(1)])
    expect(read.tornBytes).toBe(100)
  })

  it("a last record with a wrong checksum is torn; a damaged record with sound ones after it refuses to load", async () => {
    const whole = await writeBatches(3)
    const lastFlipped = Buffer.from(whole)
    lastFlipped[whole.length - 1] = (lastFlipped[whole.length - 1] ?? 0) ^ 0xff
    expect(readJournal(lastFlipped).batches).toEqual([batch(0), batch(1)])

    const middleFlipped = Buffer.from(whole)
    const secondStart = frameRecord(header).length + frameRecord(batch(0)).length
    middleFlipped[secondStart + 12] = (middleFlipped[secondStart + 12] ?? 0) ^ 0xff
    expect(() => readJournal(middleFlipped)).toThrow(/damaged record .* sound records after it/)
  })

  it("a file that is not a crypto journal is refused", async () => {
    expect(() => readJournal(Buffer.from("not a journal at all"))).toThrow(/no readable header/)
    expect(() => readJournal(frameRecord({ format: "something-else", version: 1 }))).toThrow(/not a widgethost crypto journal/)
  })

  it("resuming cuts the torn tail off before appending, so the next record is read back", async () => {
    const whole = await writeBatches(2)
    await writeFile(file, Buffer.concat([whole, frameRecord(batch(9)).subarray(0, 7)]))
    const torn = readJournal(await readFile(file))
    expect(torn.tornBytes).toBe(7)
    const w = await JournalWriter.resume(file, torn.validLength, torn.batches.length)
    expect(w.batches).toBe(2)
    await w.append(batch(5))
    await w.close()
    const after = readJournal(await readFile(file))
    expect(after.batches).toEqual([batch(0), batch(1), batch(5)])
    expect(after.tornBytes).toBe(0)
  })
})
