/**
 * The crypto store: crypto-wasm's IndexedDB store on Node (fake-indexeddb), persisted to one file
 * as a snapshot after writes (see {@link IdbSnapshotStore} for why this way), and durable writes.
 */
import * as fakeIdb from "fake-indexeddb"
import { mkdir, open, readFile, rename } from "node:fs/promises"
import { dirname } from "node:path"
import { deserialize, serialize } from "node:v8"

interface SnapshotIndex {
  readonly name: string
  readonly keyPath: string | ReadonlyArray<string>
  readonly unique: boolean
  readonly multiEntry: boolean
}
interface SnapshotObjectStore {
  readonly name: string
  readonly keyPath: string | ReadonlyArray<string> | null
  readonly autoIncrement: boolean
  readonly indexes: ReadonlyArray<SnapshotIndex>
  readonly keys: ReadonlyArray<IDBValidKey>
  readonly values: ReadonlyArray<unknown>
}
interface SnapshotDatabase {
  /** The database name after the store name, e.g. `::matrix-sdk-crypto`. */
  readonly suffix: string
  readonly version: number
  readonly stores: ReadonlyArray<SnapshotObjectStore>
}
interface Snapshot {
  readonly format: 1
  readonly userId: string
  readonly deviceId: string
  readonly databases: ReadonlyArray<SnapshotDatabase>
}

/** Gives Node an IndexedDB (fake-indexeddb, in memory) unless the host already has one. */
const ensureIndexedDb = () => {
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

/**
 * Counts write transactions opened on any IndexedDB database in this process, so a snapshot is
 * taken only when something could have changed: reading the whole store to find it unchanged
 * cost milliseconds on every sync, even in rooms without encryption.
 */
let idbWrites = 0
let countingWrites = false
const countIdbWrites = () => {
  if (countingWrites) return
  countingWrites = true
  const proto = (globalThis as { IDBDatabase?: { prototype: IDBDatabase } }).IDBDatabase?.prototype
  if (proto === undefined) return
  // The original method, taken as a plain value (not `proto.transaction`, an unbound method
  // reference) because it is called below with each database as `this`.
  const transaction = Reflect.get(proto, "transaction")
  proto.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase["transaction"]>) {
    if (args[1] !== undefined && args[1] !== "readonly") idbWrites += 1
    return transaction.apply(this, args)
  } as IDBDatabase["transaction"]
}

const idbRequest = <T>(req: IDBRequest<T>): Promise<T> =>
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

let storeCounter = 0

/**
 * The crypto store: crypto-wasm's IndexedDB store, on fake-indexeddb in memory, snapshotted whole
 * to one file.
 *
 * Why: crypto-wasm 18.9 has exactly two stores, IndexedDB and memory (`StoreHandle.open(name)` /
 * `OlmMachine.initialize(…, storeName)`); `initFromStore` only takes such a handle, and Node has no
 * IndexedDB. The memory store loses the account on restart (a new device every time, old messages
 * undecryptable). So the IndexedDB store runs on fake-indexeddb, and after each outgoing-request
 * round, each sync batch and on close every database under the store's name is read in one
 * read-only transaction (a consistent cut) through the public IndexedDB API and written with
 * `v8.serialize` to a temporary file, fsynced, renamed over the old one, and the directory fsynced:
 * a crash leaves the previous or the next snapshot, never half of one. Each open restores the file
 * into a fresh, never-used database name, so a reopened machine reads only what reached the disk.
 * Unchanged snapshots are not rewritten. With `passphrase`, crypto-wasm encrypts the values itself
 * (its store cipher), so the file holds no private key in clear.
 *
 * Cost: a snapshot reads the whole store (fine for one account's keys; it is O(store) per round).
 */
export class IdbSnapshotStore {
  private last: Buffer | undefined
  /** `idbWrites` when the file last matched the store; equal now means nothing to write. */
  private persistedAt = -1
  private constructor(
    /** The database name prefix given to crypto-wasm. */
    readonly storeName: string,
    private readonly file: string | undefined,
    private readonly owner: { readonly userId: string; readonly deviceId: string }
  ) {}

  /** Restores `file` (if it exists) into a fresh store name; checks it belongs to `owner`. */
  static async open(file: string | undefined, owner: { readonly userId: string; readonly deviceId: string }): Promise<IdbSnapshotStore> {
    ensureIndexedDb()
    countIdbWrites()
    storeCounter += 1
    const storeName = `widgethost-${process.pid}-${storeCounter}-${Math.random().toString(36).slice(2)}`
    const store = new IdbSnapshotStore(storeName, file, owner)
    if (file === undefined) return store
    let bytes: Buffer
    try {
      bytes = await readFile(file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return store
      throw e
    }
    const snapshot = deserialize(bytes) as Snapshot
    if (snapshot.format !== 1) throw new Error(`crypto store ${file}: unknown format`)
    if (snapshot.userId !== owner.userId || snapshot.deviceId !== owner.deviceId)
      throw new Error(`crypto store ${file} belongs to ${snapshot.userId}/${snapshot.deviceId}, not ${owner.userId}/${owner.deviceId}`)
    for (const db of snapshot.databases) await restoreDatabase(storeName + db.suffix, db)
    store.last = bytes
    return store
  }

  /** Writes the current state to the file (atomically, durably), unless it is unchanged. */
  async persist(): Promise<void> {
    if (this.file === undefined || this.persistedAt === idbWrites) return
    const at = idbWrites
    const databases: Array<SnapshotDatabase> = []
    const all = await indexedDB.databases()
    for (const info of all) {
      const name = info.name
      if (name === undefined || !name.startsWith(`${this.storeName}::`)) continue
      databases.push(await dumpDatabase(name, name.slice(this.storeName.length)))
    }
    databases.sort((a, b) => (a.suffix < b.suffix ? -1 : 1))
    const bytes = serialize({ format: 1, userId: this.owner.userId, deviceId: this.owner.deviceId, databases } satisfies Snapshot)
    if (this.last?.equals(bytes) !== true) {
      await writeFileDurably(this.file, bytes)
      this.last = bytes
    }
    this.persistedAt = at
  }

  /** Frees the in-memory databases (after the machine is closed). */
  async dispose(): Promise<void> {
    const all = await indexedDB.databases()
    for (const info of all) {
      if (info.name === undefined || !info.name.startsWith(`${this.storeName}::`)) continue
      const req = indexedDB.deleteDatabase(info.name)
      // A connection crypto-wasm failed to close would block the delete forever; memory is all we lose.
      await Promise.race([idbRequest(req), new Promise((r) => setTimeout(r, 1000).unref())])
    }
  }
}

const openDb = (name: string, version?: number, upgrade?: (db: IDBDatabase) => void): Promise<IDBDatabase> =>
  new Promise((resolve, reject) => {
    const req = version === undefined ? indexedDB.open(name) : indexedDB.open(name, version)
    req.onupgradeneeded = () => upgrade?.(req.result)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error(`cannot open ${name}`))
    req.onblocked = () => reject(new Error(`opening ${name} is blocked`))
  })

const dumpDatabase = async (name: string, suffix: string): Promise<SnapshotDatabase> => {
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

const restoreDatabase = async (name: string, snapshot: SnapshotDatabase): Promise<void> => {
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
      s.keys.forEach((key, i) => (s.keyPath === null ? os.put(s.values[i], key) : os.put(s.values[i])))
    }
    await done
  } finally {
    db.close()
  }
}

/** temp file, fsync, rename over, fsync the directory: the old or the new file survives a crash. */
export const writeFileDurably = async (file: string, bytes: Uint8Array | string, mode = 0o600): Promise<void> => {
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  const handle = await open(tmp, "w", mode)
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, file)
  const dir = await open(dirname(file), "r")
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
