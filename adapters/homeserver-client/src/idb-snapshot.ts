/**
 * IndexedDB databases as data, through the public IndexedDB API: dumped whole (a consistent cut,
 * one read-only transaction per database), restored into a fresh database, and journal batches
 * (crypto-journal.ts) replayed onto one. The crypto store (crypto-store.ts) persists these.
 */
import * as fakeIdb from "fake-indexeddb"
import { deserialize } from "node:v8"
import type { JournalBatch, KeyRangeData } from "./crypto-journal.ts"

export interface SnapshotIndex {
  readonly name: string
  readonly keyPath: string | ReadonlyArray<string>
  readonly unique: boolean
  readonly multiEntry: boolean
}
export interface SnapshotObjectStore {
  readonly name: string
  readonly keyPath: string | ReadonlyArray<string> | null
  readonly autoIncrement: boolean
  readonly indexes: ReadonlyArray<SnapshotIndex>
  readonly keys: ReadonlyArray<IDBValidKey>
  readonly values: ReadonlyArray<unknown>
}
export interface SnapshotDatabase {
  /** The database name after the store name, e.g. `::matrix-sdk-crypto`. */
  readonly suffix: string
  readonly version: number
  readonly stores: ReadonlyArray<SnapshotObjectStore>
}

/** Gives Node an IndexedDB (fake-indexeddb, in memory) unless the host already has one. */
export const ensureIndexedDb = () => {
  const g = globalThis as Record<string, unknown>
  if (g["indexedDB"] !== undefined) return
  const globals: Record<string, unknown> = {
    indexedDB: fakeIdb.indexedDB,
    IDBCursor: fakeIdb.IDBCursor,
    IDBCursorWithValue: fakeIdb.IDBCursorWithValue,
    IDBDatabase: fakeIdb.IDBDatabase,
    IDBFactory: fakeIdb.IDBFactory,
    IDBIndex: fakeIdb.IDBIndex,
    IDBKeyRange: fakeIdb.IDBKeyRange,
    IDBObjectStore: fakeIdb.IDBObjectStore,
    IDBOpenDBRequest: fakeIdb.IDBOpenDBRequest,
    IDBRequest: fakeIdb.IDBRequest,
    IDBTransaction: fakeIdb.IDBTransaction,
    IDBVersionChangeEvent: fakeIdb.IDBVersionChangeEvent
  }
  for (const [k, v] of Object.entries(globals)) if (g[k] === undefined) Object.defineProperty(g, k, { value: v, configurable: true, writable: true })
}

export const idbRequest = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"))
  })

const txDone = (tx: IDBTransaction): Promise<void> =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = () => reject(tx.error ?? new Error("IndexedDB transaction failed"))
    tx.onabort = () => reject(tx.error ?? new Error("IndexedDB transaction aborted"))
  })

const openDb = (name: string, version?: number, upgrade?: (db: IDBDatabase) => void): Promise<IDBDatabase> =>
  new Promise((resolve, reject) => {
    const req = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version)
    req.onupgradeneeded = () => upgrade?.(req.result)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error(`cannot open ${name}`))
    req.onblocked = () => reject(new Error(`opening ${name} is blocked`))
  })

export const dumpDatabase = async (name: string, suffix: string): Promise<SnapshotDatabase> => {
  const db = await openDb(name)
  try {
    const names = Array.from(db.objectStoreNames)
    if (names.length === 0) return { suffix, version: db.version, stores: [] }
    const tx = db.transaction(names, "readonly")
    const done = txDone(tx)
    const stores = await Promise.all(
      names.map(async (storeName): Promise<SnapshotObjectStore> => {
        const os = tx.objectStore(storeName)
        const [keys, values] = await Promise.all([idbRequest(os.getAllKeys()), idbRequest(os.getAll())])
        const indexes = Array.from(os.indexNames).map((indexName) => {
          const index = os.index(indexName)
          return { name: indexName, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry }
        })
        return { name: storeName, keyPath: os.keyPath, autoIncrement: os.autoIncrement, indexes, keys, values }
      })
    )
    await done
    return { suffix, version: db.version, stores }
  } finally {
    db.close()
  }
}

/** Records restored between two `onRecords` reports. */
const RESTORE_REPORT_EVERY = 256

/** `onRecords(n)`: `n` more records of this database are in (reported every few hundred, and at the end of each store). */
export const restoreDatabase = async (name: string, snapshot: SnapshotDatabase, onRecords?: (n: number) => void): Promise<void> => {
  const db = await openDb(name, snapshot.version, (db) => {
    for (const s of snapshot.stores) {
      const os = db.createObjectStore(s.name, { keyPath: s.keyPath as string | Array<string> | null, autoIncrement: s.autoIncrement })
      for (const i of s.indexes) os.createIndex(i.name, i.keyPath as string | Array<string>, { unique: i.unique, multiEntry: i.multiEntry })
    }
  })
  try {
    if (snapshot.stores.length === 0) return
    const tx = db.transaction(
      snapshot.stores.map((s) => s.name),
      "readwrite"
    )
    const done = txDone(tx)
    for (const s of snapshot.stores) {
      const os = tx.objectStore(s.name)
      let unreported = 0
      s.keys.forEach((key, i) => {
        const req = s.keyPath === null ? os.put(s.values[i], key) : os.put(s.values[i])
        unreported += 1
        if (onRecords === undefined || (unreported < RESTORE_REPORT_EVERY && i < s.keys.length - 1)) return
        const n = unreported
        unreported = 0
        req.onsuccess = () => onRecords(n)
      })
    }
    await done
  } finally {
    db.close()
  }
}

const keyRange = (r: KeyRangeData): IDBKeyRange =>
  r.lower === undefined
    ? IDBKeyRange.upperBound(r.upper, r.upperOpen)
    : r.upper === undefined
      ? IDBKeyRange.lowerBound(r.lower, r.lowerOpen)
      : IDBKeyRange.bound(r.lower, r.upper, r.lowerOpen, r.upperOpen)

/**
 * Applies `batches` in order to the databases `${storeName}${op.db}` (restored from the snapshot
 * they follow), one read-write transaction per database. A database or object store the
 * snapshot does not have means the files do not belong together: that throws.
 */
export const replayBatches = async (storeName: string, batches: ReadonlyArray<JournalBatch>): Promise<void> => {
  const byDb = new Map<string, Array<JournalBatch[number]>>()
  for (const batch of batches)
    for (const op of batch) {
      const ops = byDb.get(op.db)
      if (ops === undefined) byDb.set(op.db, [op])
      else ops.push(op)
    }
  for (const [suffix, ops] of byDb) {
    const known = (await indexedDB.databases()).some((d) => d.name === storeName + suffix)
    if (!known) throw new Error(`crypto journal: writes to database ${suffix}, which the snapshot does not have`)
    const db = await openDb(storeName + suffix)
    try {
      const names = Array.from(new Set(ops.map((o) => o.store)))
      for (const n of names) if (!db.objectStoreNames.contains(n)) throw new Error(`crypto journal: writes to object store ${n} of ${suffix}, which the snapshot does not have`)
      const tx = db.transaction(names, "readwrite")
      const done = txDone(tx)
      for (const op of ops) {
        const os = tx.objectStore(op.store)
        if (op.op === "put") {
          const value: unknown = deserialize(op.value)
          if (os.keyPath === null) os.put(value, op.key)
          else os.put(value)
        } else if (op.op === "delete") os.delete(op.key)
        else if (op.op === "deleteRange") os.delete(keyRange(op.range))
        else os.clear()
      }
      await done
    } finally {
      db.close()
    }
  }
}
