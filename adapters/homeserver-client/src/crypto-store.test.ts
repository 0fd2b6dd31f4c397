import { copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { serialize } from "node:v8"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { frameRecord, readJournal } from "./crypto-journal.ts"
import { type CryptoStoreCompaction, IdbSnapshotStore } from "./crypto-store.ts"
import { idbRequest } from "./idb-snapshot.ts"
import { readSnapshot } from "./snapshot-file.ts"

/**
 * The crypto store's persistence through the public IndexedDB API, the way crypto-wasm uses it:
 * a database under the store's name, written in read-write transactions, then `persist()`.
 */
const OWNER = { userId: "@bob:test", deviceId: "BOBDEV" }
const DB = "::test-db"

let dir: string
let file: string
const open: Array<IdbSnapshotStore> = []
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "widgethost-crypto-store-"))
  file = join(dir, "crypto.v8")
})
afterEach(async () => {
  for (const s of open.splice(0)) await s.dispose()
  await rm(dir, { recursive: true, force: true })
})

const openStore = async (compaction?: CryptoStoreCompaction): Promise<IdbSnapshotStore> => {
  const store = await IdbSnapshotStore.open(file, OWNER, compaction)
  open.push(store)
  return store
}

const connect = (store: IdbSnapshotStore, create = false): Promise<IDBDatabase> =>
  new Promise((resolve, reject) => {
    const req = create ? indexedDB.open(store.storeName + DB, 1) : indexedDB.open(store.storeName + DB)
    req.onupgradeneeded = () => {
      const db = req.result
      db.createObjectStore("core") // out-of-line keys, as crypto-wasm's stores
      db.createObjectStore("inline", { keyPath: "id" }).createIndex("by_room", "room")
    }
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error("open failed"))
  })

/** Runs `fn` in one read-write transaction over both object stores; resolves when it commits. */
const write = async (store: IdbSnapshotStore, fn: (core: IDBObjectStore, inline: IDBObjectStore) => void, create = false): Promise<void> => {
  const db = await connect(store, create)
  try {
    const tx = db.transaction(["core", "inline"], "readwrite")
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error ?? new Error("tx failed"))
    })
    fn(tx.objectStore("core"), tx.objectStore("inline"))
    await done
  } finally {
    db.close()
  }
}

/** Every record of the test database, as `{ store: [[key, value], …] }`. */
const contents = async (store: IdbSnapshotStore): Promise<Record<string, Array<[IDBValidKey, unknown]>>> => {
  const db = await connect(store)
  try {
    const tx = db.transaction(["core", "inline"], "readonly")
    const out: Record<string, Array<[IDBValidKey, unknown]>> = {}
    for (const name of ["core", "inline"]) {
      const os = tx.objectStore(name)
      const [keys, values] = await Promise.all([idbRequest(os.getAllKeys()), idbRequest(os.getAll())])
      out[name] = keys.map((k, i) => [k, values[i]])
    }
    return out
  } finally {
    db.close()
  }
}

/** A few rounds of the writes crypto-wasm makes: puts, adds, deletes (by key and range), a clear, cursor updates and deletes. */
const rounds: ReadonlyArray<(core: IDBObjectStore, inline: IDBObjectStore) => void> = [
  (core, inline) => {
    for (let i = 0; i < 10; i++) core.put({ pickle: new Uint8Array([i, 1, 2]), n: i }, `session-${i}`)
    core.put("account-v1", "account")
    inline.add({ id: "a", room: "!r1", body: "one" })
    inline.add({ id: "b", room: "!r2", body: "two" })
  },
  (core, inline) => {
    core.put("account-v2", "account")
    core.delete("session-3")
    core.delete(IDBKeyRange.bound("session-6", "session-8"))
    inline.put({ id: "a", room: "!r1", body: "one, edited" })
  },
  (core, inline) => {
    const req = core.openCursor(IDBKeyRange.bound("session-0", "session-2"))
    req.onsuccess = () => {
      const cursor = req.result
      if (cursor === null) return
      if (cursor.key === "session-1") cursor.delete()
      else cursor.update({ ...(cursor.value as object), touched: true })
      cursor.continue()
    }
    inline.clear()
    inline.put({ id: "c", room: "!r1", body: "after the clear" })
  }
]

describe("crypto store: snapshot and journal", () => {
  it("round trip: writes persisted round by round come back the same after a reopen, from the journal, the snapshot untouched", async () => {
    const store = await openStore()
    await write(store, () => undefined, true)
    await store.persist() // the new schema: a snapshot
    const snapshotAfterSchema = await readFile(file)
    for (const round of rounds) {
      await write(store, round)
      await store.persist()
    }
    // A transaction that aborts leaves nothing behind, in memory or on disk.
    await expect(
      write(store, (core) => {
        core.put("never", "account")
        core.transaction.abort()
      })
    ).rejects.toBeDefined()
    await store.persist()
    const before = await contents(store)
    expect(before["core"]?.find(([k]) => k === "account")?.[1]).toBe("account-v2")
    expect(before["core"]?.map(([k]) => k)).toEqual(["account", "session-0", "session-2", "session-4", "session-5", "session-9"])
    expect(before["core"]?.find(([k]) => k === "session-2")?.[1]).toEqual({ pickle: new Uint8Array([2, 1, 2]), n: 2, touched: true })
    expect(before["inline"]).toEqual([["c", { id: "c", room: "!r1", body: "after the clear" }]])

    expect(await readFile(file)).toEqual(snapshotAfterSchema)
    const journal = readJournal(await readFile(`${file}.journal`))
    expect(journal.batches).toHaveLength(rounds.length)
    expect(journal.header.generation).toBe(readSnapshot(snapshotAfterSchema, file).generation)

    const again = await openStore()
    expect(again.storeName).not.toBe(store.storeName)
    expect(await contents(again)).toEqual(before)
  })

  it("a torn last journal record is dropped and every round before it kept; the next round appends after the cut", async () => {
    const store = await openStore()
    await write(store, () => undefined, true)
    await store.persist()
    await write(store, rounds[0]!)
    await store.persist()
    const afterFirst = await contents(store)
    const journalFile = `${file}.journal`
    const lengthAfterFirst = (await stat(journalFile)).size
    await write(store, rounds[1]!)
    await store.persist()
    const lengthAfterSecond = (await stat(journalFile)).size
    await store.dispose()
    open.splice(open.indexOf(store), 1)

    // A crash mid-append: only part of the second round's record reached the disk.
    await truncate(journalFile, lengthAfterFirst + Math.floor((lengthAfterSecond - lengthAfterFirst) / 2))
    const reopened = await openStore()
    expect(await contents(reopened)).toEqual(afterFirst)
    expect((await stat(journalFile)).size).toBe(lengthAfterFirst)
    await write(reopened, rounds[2]!)
    await reopened.persist()
    const afterThird = await contents(reopened)
    expect(afterThird).not.toEqual(afterFirst)
    expect(readJournal(await readFile(journalFile)).tornBytes).toBe(0)
    expect(await contents(await openStore())).toEqual(afterThird)
  })

  it("compaction: past the bound the journal becomes a new snapshot generation, contents kept and the journal back to its header", async () => {
    const store = await openStore({ maxJournalRounds: 2 })
    await write(store, () => undefined, true)
    await store.persist()
    const journalFile = `${file}.journal`
    const generationOf = async () => readSnapshot(await readFile(file), file).generation
    const first = await generationOf()
    await write(store, rounds[0]!)
    await store.persist()
    const oneRound = (await stat(journalFile)).size
    const staleJournal = join(dir, "stale.journal")
    await copyFile(journalFile, staleJournal)
    await write(store, rounds[1]!)
    await store.persist() // the second round reaches the bound: compacted in the background
    await store.idle()
    expect(await generationOf()).toBe(first + 1)
    const compacted = await stat(journalFile)
    expect(compacted.size).toBeLessThan(oneRound)
    expect(compacted.size).toBe(frameRecord(readJournal(await readFile(journalFile)).header).length)
    expect(readJournal(await readFile(journalFile)).header.generation).toBe(first + 1)
    const state = await contents(store)
    expect(await contents(await openStore())).toEqual(state)

    // A crash after the new snapshot but before the new journal leaves the old generation's
    // journal beside it: the snapshot already holds it, so it is not replayed (its round 0 would
    // bring back the deleted session-3).
    await copyFile(staleJournal, journalFile)
    const afterCrash = await openStore()
    expect(await contents(afterCrash)).toEqual(state)
    await write(afterCrash, rounds[2]!)
    await afterCrash.persist()
    const later = await contents(afterCrash)
    expect(readJournal(await readFile(journalFile)).header.generation).toBe(first + 1)
    expect(await contents(await openStore())).toEqual(later)
  })

  it("a journal of another device, or without its snapshot, is not replayed", async () => {
    const store = await openStore()
    await write(store, () => undefined, true)
    await store.persist()
    await write(store, rounds[0]!)
    await store.persist()
    await expect(IdbSnapshotStore.open(file, { userId: OWNER.userId, deviceId: "ELSE" })).rejects.toThrow(/belongs to/)
    // A snapshot deleted to start over takes its journal with it.
    await rm(file)
    const fresh = await openStore()
    expect((await indexedDB.databases()).some((d) => d.name === fresh.storeName + DB)).toBe(false)
    await expect(stat(`${file}.journal`)).rejects.toThrow(/ENOENT/)
    await writeFile(`${file}.journal`, "junk")
    await write(fresh, () => undefined, true)
    await fresh.persist()
    expect(readJournal(await readFile(`${file}.journal`)).batches).toEqual([])
  })

  it("a snapshot from before the journal (format 1, no generation) opens, and the rounds after it are journaled", async () => {
    const store = await openStore()
    await write(store, () => undefined, true)
    await write(store, rounds[0]!)
    await store.persist() // the schema is new: all of it in a snapshot
    const state = await contents(store)
    const { generation: _, ...rest } = readSnapshot(await readFile(file), file)
    await writeFile(file, serialize({ ...rest, format: 1 }))
    await rm(`${file}.journal`)
    const legacy = await openStore()
    expect(await contents(legacy)).toEqual(state)
    await write(legacy, rounds[1]!)
    await legacy.persist()
    expect(readJournal(await readFile(`${file}.journal`))).toMatchObject({ header: { generation: 0 }, batches: [expect.any(Array)] })
    const later = await contents(legacy)
    expect(later).not.toEqual(state)
    expect(await contents(await openStore())).toEqual(later)
  })
})

describe("crypto store: compaction in the background, and what a crash leaves of it", () => {
  const journalFile = () => `${file}.journal`
  const nextFile = () => `${file}.journal.next`
  const generationOf = async () => readSnapshot(await readFile(file), file).generation
  const exists = (path: string) => stat(path).then(
    () => true,
    () => false
  )

  /** A store of `records` rows whose journal bound is `rounds`, compacting one row per step: a compaction spans many turns. */
  const bigStore = async (records: number, rounds: number): Promise<IdbSnapshotStore> => {
    const store = await openStore({ maxJournalRounds: rounds, pageRecords: 1 })
    await write(store, () => undefined, true)
    await store.persist()
    await write(store, (core) => {
      for (let i = 0; i < records; i++) core.put({ pickle: new Uint8Array(64).fill(i % 256), n: i }, `bulk-${String(i).padStart(5, "0")}`)
    })
    await store.persist()
    await store.idle()
    return store
  }

  it("the persist that crosses the bound does not wait for the snapshot: rounds go on into .journal.next while it is written, and the end state reopens", async () => {
    const store = await bigStore(300, 3)
    const first = await generationOf()
    await write(store, rounds[0]!)
    await store.persist() // the third round of the journal: crosses the bound
    let roundsWhileCompacting = 0
    for (let i = 0; i < 200 && (roundsWhileCompacting === 0 || store.compacting); i++) {
      await write(store, (core) => core.put(`during-${i}`, `during-${i}`))
      await store.persist()
      if (store.compacting) roundsWhileCompacting += 1
    }
    expect(roundsWhileCompacting).toBeGreaterThan(0)
    await store.idle()
    // More rounds than the bound went to the new segment: it may have been compacted again since.
    expect(await generationOf()).toBeGreaterThan(first)
    expect(await exists(nextFile())).toBe(false)
    expect(store.compactions).toBeGreaterThan(0)
    const state = await contents(store)
    expect(state["core"]?.some(([k]) => k === "during-0")).toBe(true)
    expect(await contents(await openStore())).toEqual(state)
  })

  it("a compaction stopped half-way leaves snapshot g, .journal g and .journal.next g + 1: that opens to the last round, and the compaction is redone after the next", async () => {
    const store = await bigStore(300, 3)
    const first = await generationOf()
    await write(store, rounds[0]!)
    await store.persist()
    await write(store, rounds[1]!)
    await store.persist() // crosses the bound
    await write(store, rounds[2]!)
    await store.persist() // appended to the new segment while the snapshot is written
    const state = await contents(store)
    await store.dispose() // stops the snapshot between two pages, as a crash would
    open.splice(open.indexOf(store), 1)
    expect(await generationOf()).toBe(first)
    expect(readJournal(await readFile(journalFile())).header.generation).toBe(first)
    const next = readJournal(await readFile(nextFile()))
    expect(next.header.generation).toBe(first + 1)
    expect(next.batches.length).toBeGreaterThan(0)
    expect((await readdir(dir)).filter((n) => n.endsWith(".tmp"))).toEqual([])

    const reopened = await openStore({ pageRecords: 64 })
    expect(await contents(reopened)).toEqual(state)
    await write(reopened, (core) => core.put("after", "after"))
    await reopened.persist()
    await reopened.idle()
    expect(await generationOf()).toBe(first + 1)
    expect(await exists(nextFile())).toBe(false)
    expect(await contents(await openStore())).toEqual(await contents(reopened))
  })

  it("snapshot g + 1 renamed in but the journal not switched: .journal.next is what continues it, the stale .journal is not replayed", async () => {
    const store = await openStore({ maxJournalRounds: 2 })
    await write(store, () => undefined, true)
    await store.persist()
    const first = await generationOf()
    await write(store, rounds[0]!)
    await store.persist()
    const stale = await readFile(journalFile()) // generation `first`, holding round 0
    await write(store, rounds[1]!)
    await store.persist() // crosses the bound
    await store.idle()
    await write(store, rounds[2]!)
    await store.persist() // into the journal of generation first + 1
    const state = await contents(store)
    await store.dispose()
    open.splice(open.indexOf(store), 1)
    await copyFile(journalFile(), nextFile())
    await writeFile(journalFile(), stale)

    const reopened = await openStore()
    expect(await generationOf()).toBe(first + 1)
    expect(await contents(reopened)).toEqual(state)
    expect(await exists(nextFile())).toBe(false)
    expect(readJournal(await readFile(journalFile())).header.generation).toBe(first + 1)
  })
})
