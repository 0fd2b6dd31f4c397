/**
 * IndexedDB databases as data, through the public IndexedDB API: read page by page as snapshot
 * pieces (snapshot-file.ts), and restored into a fresh database. The crypto store
 * (crypto-store.ts) persists these.
 */
import * as fakeIdb from "fake-indexeddb"
import type { SnapshotPiece } from "./snapshot-file.ts"

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

/**
 * Reads database `name` as snapshot pieces (snapshot-file.ts): the database, then each object
 * store and its rows, `pageRecords` at a time, each page in its own read-only transaction.
 *
 * Why pages in separate transactions: one transaction over 100k records holds the event loop
 * for its whole `getAll`, and a long read-only transaction would hold back crypto-wasm's writes
 * until it ends. The price is that the pages are not one consistent cut: a write committed
 * between two pages may be in one and not another. The store cuts its journal before it starts
 * reading (crypto-store.ts), so every such write is also in the journal after the cut, and
 * replaying that journal over these pages (journal-replay.ts) gives each key its exact value:
 * a put, delete or clear sets a key whatever it was before, and a key no write touched since the
 * cut reads the same in every page.
 *
 * `stopped` is checked between pages; when it says so, the read ends with an error.
 */
export async function* readDatabasePieces(name: string, suffix: string, pageRecords: number, stopped: () => boolean): AsyncGenerator<SnapshotPiece> {
  const db = await openDb(name)
  let closed = false
  // An upgrade or a delete waits for every connection: this one gives way, and the read fails.
  db.onversionchange = () => {
    closed = true
    db.close()
  }
  try {
    yield { kind: "database", suffix, version: db.version }
    for (const storeName of Array.from(db.objectStoreNames)) {
      let after: IDBValidKey | undefined
      for (let first = true; ; first = false) {
        if (stopped() || closed) throw new Error(`reading ${suffix} for a snapshot: stopped`)
        const tx = db.transaction(storeName, "readonly")
        const done = txDone(tx)
        const os = tx.objectStore(storeName)
        // Both requests go out before anything yields: a transaction with none pending commits.
        const range = after === undefined ? null : IDBKeyRange.lowerBound(after, true)
        const page = Promise.all([idbRequest(os.getAllKeys(range, pageRecords)), idbRequest(os.getAll(range, pageRecords))])
        const indexes = Array.from(os.indexNames).map((indexName) => {
          const index = os.index(indexName)
          return { name: indexName, keyPath: index.keyPath, unique: index.unique, multiEntry: index.multiEntry }
        })
        const [keys, values] = await page
        await done
        if (first) yield { kind: "store", name: storeName, keyPath: os.keyPath, autoIncrement: os.autoIncrement, indexes }
        if (keys.length > 0) yield { kind: "rows", keys, values }
        if (keys.length < pageRecords) break
        after = keys.at(-1)
      }
    }
  } finally {
    if (!closed) db.close()
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
