/**
 * Journal batches (crypto-journal.ts) applied to a snapshot's databases in memory, giving the
 * databases to restore (idb-snapshot.ts).
 *
 * Why in memory and not through IndexedDB: a snapshot read page by page while writes went on
 * (`readDatabasePieces`) is not one consistent state, only each key's own history is; replaying
 * the journal from the cut over it makes every key exact again, but in between a unique index
 * (crypto-wasm's `gossip_requests.by_info`) can see two records with the same value, which
 * IndexedDB would refuse. Maps by key care only about keys; the end state is a real one.
 */
import { deserialize } from "node:v8"
import type { JournalBatch, KeyRangeData } from "./crypto-journal.ts"
import type { SnapshotDatabase, SnapshotObjectStore } from "./idb-snapshot.ts"

/** One string per IndexedDB key, equal for equal keys (IndexedDB compares -0 and 0 equal). */
const keyId = (key: unknown): string => {
  if (typeof key === "number") return `n${Object.is(key, -0) ? 0 : key}`
  if (typeof key === "string") return `s${JSON.stringify(key)}`
  if (key instanceof Date) return `d${key.getTime()}`
  if (Array.isArray(key)) return `a[${key.map(keyId).join(",")}]`
  if (ArrayBuffer.isView(key)) return `b${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex")}`
  if (key instanceof ArrayBuffer) return `b${Buffer.from(key).toString("hex")}`
  throw new Error(`not an IndexedDB key: ${String(key)}`)
}

const keyRange = (r: KeyRangeData): IDBKeyRange =>
  r.lower === undefined
    ? IDBKeyRange.upperBound(r.upper, r.upperOpen)
    : r.upper === undefined
      ? IDBKeyRange.lowerBound(r.lower, r.lowerOpen)
      : IDBKeyRange.bound(r.lower, r.upper, r.lowerOpen, r.upperOpen)

type Rows = Map<string, { readonly key: IDBValidKey; readonly value: unknown }>

/**
 * `databases` with `batches` applied in order. A database or object store the snapshot does not
 * have means the files do not belong together: that throws.
 */
export const applyBatches = (databases: ReadonlyArray<SnapshotDatabase>, batches: ReadonlyArray<JournalBatch>): ReadonlyArray<SnapshotDatabase> => {
  if (batches.every((b) => b.length === 0)) return databases
  const rows = new Map<string, Map<string, Rows>>()
  const rowsOf = (suffix: string, store: string): Rows => {
    let stores = rows.get(suffix)
    if (stores === undefined) {
      const db = databases.find((d) => d.suffix === suffix)
      if (db === undefined) throw new Error(`crypto journal: writes to database ${suffix}, which the snapshot does not have`)
      stores = new Map(db.stores.map((s) => [s.name, new Map(s.keys.map((key, i) => [keyId(key), { key, value: s.values[i] }]))]))
      rows.set(suffix, stores)
    }
    const found = stores.get(store)
    if (found === undefined) throw new Error(`crypto journal: writes to object store ${store} of ${suffix}, which the snapshot does not have`)
    return found
  }
  for (const batch of batches)
    for (const op of batch) {
      const store = rowsOf(op.db, op.store)
      if (op.op === "put") store.set(keyId(op.key), { key: op.key, value: deserialize(op.value) })
      else if (op.op === "delete") store.delete(keyId(op.key))
      else if (op.op === "clear") store.clear()
      else {
        const range = keyRange(op.range)
        for (const [id, row] of store) if (range.includes(row.key)) store.delete(id)
      }
    }
  return databases.map((db) => {
    const stores = rows.get(db.suffix)
    if (stores === undefined) return db
    return {
      ...db,
      stores: db.stores.map((s): SnapshotObjectStore => {
        const r = Array.from(stores.get(s.name)!.values())
        return { ...s, keys: r.map((row) => row.key), values: r.map((row) => row.value) }
      })
    }
  })
}
