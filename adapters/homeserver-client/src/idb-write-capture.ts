/**
 * Sees every write committed to the IndexedDB databases of a registered store, as journal ops
 * (crypto-journal.ts), by wrapping the IndexedDB write methods once per process.
 *
 * Why wrap: crypto-wasm writes through the public IndexedDB API and tells nobody what it wrote;
 * reading the whole store back after each round was the O(store) cost this replaces. The wrappers
 * only observe: each write still goes to the original method, and a write is recorded only when
 * its request succeeds, in its transaction's order, and handed over only when that transaction
 * commits (`complete`), so an aborted transaction leaves nothing behind.
 *
 * What a journal cannot express (a schema change in an upgrade, a write outside a read-write
 * transaction, a deleted database, a value v8 cannot serialize) is reported as `needsSnapshot`:
 * the store then writes a whole snapshot, which holds everything.
 */
import { serialize } from "node:v8"
import type { JournalOp, KeyRangeData } from "./crypto-journal.ts"

/** Where a store's committed writes go. */
export interface WriteSink {
  /** The ops of one committed transaction on the database `db` (name after the store name). */
  readonly committed: (ops: ReadonlyArray<JournalOp>) => void
  /** Something happened that only a whole snapshot captures. */
  readonly needsSnapshot: () => void
}

/** Sinks by store name (the database name before `::`). */
const sinks = new Map<string, WriteSink>()

const sinkOf = (databaseName: string): { readonly sink: WriteSink; readonly db: string } | undefined => {
  const at = databaseName.indexOf("::")
  if (at < 0) return undefined
  const sink = sinks.get(databaseName.slice(0, at))
  return sink === undefined ? undefined : { sink, db: databaseName.slice(at) }
}

/** A read-write transaction of a registered store: its ops so far, in request order. */
interface Tracked {
  readonly sink: WriteSink
  readonly db: string
  readonly ops: Array<JournalOp>
}
const tracked = new WeakMap<IDBTransaction, Tracked>()

/**
 * Sends the committed writes of the databases named `${storeName}::…` to `sink` until the
 * returned function is called.
 */
export const captureWrites = (storeName: string, sink: WriteSink): (() => void) => {
  install()
  sinks.set(storeName, sink)
  return () => {
    if (sinks.get(storeName) === sink) sinks.delete(storeName)
  }
}

/** The ops list of `tx`, or undefined (and a snapshot asked for) if `tx` writes a store's data untracked. */
const opsOf = (tx: IDBTransaction): Tracked | undefined => {
  const t = tracked.get(tx)
  if (t === undefined && tx.mode !== "readonly") sinkOf(tx.db.name)?.sink.needsSnapshot()
  return t
}

const rangeData = (range: IDBKeyRange): KeyRangeData => ({ lower: range.lower as IDBValidKey | undefined, upper: range.upper as IDBValidKey | undefined, lowerOpen: range.lowerOpen, upperOpen: range.upperOpen })

/** Records `op` (built from the request's result) when `req` succeeds. */
const onSuccess = (t: Tracked, req: IDBRequest, op: (result: unknown) => JournalOp): void => {
  req.addEventListener("success", () => t.ops.push(op(req.result)))
}

/** v8 bytes of a value being written, or undefined (and a snapshot asked for) if v8 cannot. */
const bytesOf = (t: Tracked, value: unknown): Uint8Array | undefined => {
  try {
    return serialize(value)
  } catch {
    t.sink.needsSnapshot()
    return undefined
  }
}

let installed = false

const install = (): void => {
  if (installed) return
  const g = globalThis as unknown as Record<string, { prototype: object } | undefined>
  const db = g["IDBDatabase"]?.prototype as IDBDatabase | undefined
  const store = g["IDBObjectStore"]?.prototype as IDBObjectStore | undefined
  const cursor = g["IDBCursor"]?.prototype as IDBCursor | undefined
  const factory = g["IDBFactory"]?.prototype as IDBFactory | undefined
  if (db === undefined || store === undefined || cursor === undefined || factory === undefined) return
  installed = true

  // The originals, taken as plain values (not `proto.method`, an unbound method reference)
  // because each is called with the instance as `this`.
  const transaction = Reflect.get(db, "transaction")
  db.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase["transaction"]>) {
    const tx = transaction.apply(this, args)
    const owner = args[1] === undefined || args[1] === "readonly" ? undefined : sinkOf(this.name)
    if (owner !== undefined) {
      const t: Tracked = { ...owner, ops: [] }
      tracked.set(tx, t)
      tx.addEventListener("complete", () => {
        if (t.ops.length > 0) t.sink.committed(t.ops)
      })
    }
    return tx
  } as IDBDatabase["transaction"]

  const put = Reflect.get(store, "put")
  const add = Reflect.get(store, "add")
  for (const [name, original] of [
    ["put", put],
    ["add", add]
  ] as const) {
    store[name] = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      const t = opsOf(this.transaction)
      const bytes = t === undefined ? undefined : bytesOf(t, value)
      const req = original.call(this, value, key)
      if (t !== undefined && bytes !== undefined) {
        const storeName = this.name
        onSuccess(t, req, (result) => ({ op: "put", db: t.db, store: storeName, key: result as IDBValidKey, value: bytes }))
      }
      return req
    }
  }

  const del = Reflect.get(store, "delete")
  store.delete = function (this: IDBObjectStore, query: IDBValidKey | IDBKeyRange) {
    const t = opsOf(this.transaction)
    const req = del.call(this, query)
    if (t !== undefined) {
      const storeName = this.name
      const op: JournalOp =
        query instanceof IDBKeyRange ? { op: "deleteRange", db: t.db, store: storeName, range: rangeData(query) } : { op: "delete", db: t.db, store: storeName, key: query }
      onSuccess(t, req, () => op)
    }
    return req
  }

  const clear = Reflect.get(store, "clear")
  store.clear = function (this: IDBObjectStore) {
    const t = opsOf(this.transaction)
    const req = clear.call(this)
    if (t !== undefined) {
      const storeName = this.name
      onSuccess(t, req, () => ({ op: "clear", db: t.db, store: storeName }))
    }
    return req
  }

  const cursorStore = (c: IDBCursor): IDBObjectStore => (c.source instanceof IDBIndex ? c.source.objectStore : c.source)
  const update = Reflect.get(cursor, "update")
  cursor.update = function (this: IDBCursor, value: unknown) {
    const os = cursorStore(this)
    const t = opsOf(os.transaction)
    const bytes = t === undefined ? undefined : bytesOf(t, value)
    const req = update.call(this, value)
    if (t !== undefined && bytes !== undefined) {
      const key = this.primaryKey
      onSuccess(t, req, () => ({ op: "put", db: t.db, store: os.name, key, value: bytes }))
    }
    return req
  }
  const cursorDelete = Reflect.get(cursor, "delete")
  cursor.delete = function (this: IDBCursor) {
    const os = cursorStore(this)
    const t = opsOf(os.transaction)
    const req = cursorDelete.call(this)
    if (t !== undefined) {
      const key = this.primaryKey
      onSuccess(t, req, () => ({ op: "delete", db: t.db, store: os.name, key }))
    }
    return req
  }

  // Schema changes happen in upgrades (no journal op says them); so does dropping a database.
  type Method = (...args: Array<unknown>) => unknown
  const schemaChange = (proto: object, name: string, databaseOf: (self: unknown, args: Array<unknown>) => string): void => {
    const original = Reflect.get(proto, name) as Method
    Reflect.set(proto, name, function (this: unknown, ...args: Array<unknown>) {
      const result = original.apply(this, args)
      sinkOf(databaseOf(this, args))?.sink.needsSnapshot()
      return result
    })
  }
  schemaChange(db, "createObjectStore", (d) => (d as IDBDatabase).name)
  schemaChange(db, "deleteObjectStore", (d) => (d as IDBDatabase).name)
  schemaChange(store, "createIndex", (s) => (s as IDBObjectStore).transaction.db.name)
  schemaChange(store, "deleteIndex", (s) => (s as IDBObjectStore).transaction.db.name)
  schemaChange(factory, "deleteDatabase", (_, args) => String(args[0]))
}
