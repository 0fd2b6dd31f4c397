import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import * as fakeIdb from "fake-indexeddb"
import { mkdir, open, readFile, rename } from "node:fs/promises"
import { dirname } from "node:path"
import { deserialize, serialize } from "node:v8"
import { HomeserverError } from "../../core/src/homeserver-error.ts"
import type { RoomEvent, ToDeviceEvent } from "../../core/src/matrix.ts"
import { isCryptoInternalToDeviceType } from "../../core/src/crypto-types.ts"
import { type Clock, type HttpRequest, path, systemClock } from "./matrix-http.ts"

/**
 * End-to-end encryption for one account, on matrix-rust-sdk's `OlmMachine` (crypto-wasm).
 *
 * - The pull/push loop (`outgoingRequests()` → HTTP → `markRequestAsSent`) and every operation that
 *   changes Olm/Megolm sessions run one at a time under one lock, as matrix-rust-sdk does.
 * - {@link DecryptingTimeline} turns a room's timeline into decrypted events, holding an event whose
 *   room key has not arrived yet and releasing it, in order, when the key comes.
 * - The crypto store persists to one file (see {@link IdbSnapshotStore} for why this way).
 *
 * Models: matrix-org/matrix-rust-sdk `crates/matrix-sdk-crypto/src/machine/mod.rs`,
 * matrix-org/matrix-js-sdk `src/rust-crypto/` (`OutgoingRequestProcessor`, `RustCrypto`).
 */

/** The HTTP the crypto machinery needs: MatrixHttp satisfies it; tests plug an in-memory server in. */
export interface CryptoHttp {
  readonly request: <T>(req: HttpRequest) => Promise<T>
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

/** A request the machine hands out for the HTTP edge to send. */
export type OutgoingRequest =
  | sdk.KeysUploadRequest
  | sdk.KeysQueryRequest
  | sdk.KeysClaimRequest
  | sdk.ToDeviceRequest
  | sdk.SignatureUploadRequest
  | sdk.RoomMessageRequest
  | sdk.KeysBackupRequest

/** One-at-a-time lock: the crypto loop and session-changing calls never interleave. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve()
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn)
    this.tail = result.catch(() => undefined)
    return result
  }
}

/** Re-exported from core: the types the crypto machinery owns, never shown to widgets. */
export { isCryptoInternalToDeviceType }

/** Raw event JSON as it comes from the homeserver (untrusted shape). */
export type RawEvent = Readonly<Record<string, unknown>>

export type DecryptOutcome =
  | { readonly _tag: "Clear"; readonly event: RoomEvent }
  | { readonly _tag: "Decrypted"; readonly event: RoomEvent }
  /** The room key is missing (or only a later index is known): may still arrive. */
  | { readonly _tag: "Pending"; readonly sessionId: string; readonly reason: string }
  /** Will never decrypt (withheld, bad ciphertext, redacted, malformed). */
  | { readonly _tag: "Failed"; readonly reason: string }

export interface UndecryptableReport {
  readonly roomId: string
  readonly eventId: string
  /**
   * `held-too-long`: its key did not come within the hold bound; later events went ahead, and it
   * is still delivered (late) if the key comes. `failed`: it can never decrypt. `evicted`: it was
   * dropped from the late set, for good.
   */
  readonly kind: "held-too-long" | "failed" | "evicted"
  readonly reason: string
}

export interface ToDeviceUndecryptable {
  readonly sender: string
  readonly reason: string
}

export interface SyncCryptoInput {
  readonly toDevice: ReadonlyArray<unknown>
  readonly changed?: ReadonlyArray<string>
  readonly left?: ReadonlyArray<string>
  readonly oneTimeKeyCounts?: Readonly<Record<string, number>>
  /** `undefined` when the server did not say (then fallback keys are left alone). */
  readonly unusedFallbackKeyTypes?: ReadonlyArray<string>
}

export interface E2eeOptions {
  readonly userId: string
  readonly deviceId: string
  readonly http: CryptoHttp
  /** Where the crypto store lives; without it the keys die with the process. */
  readonly storeFile?: string
  /** Encrypts the store's values (crypto-wasm's store cipher). */
  readonly storePassphrase?: string
  /** Called for a to-device message that could not be decrypted (never delivered). */
  readonly onToDeviceUndecryptable?: (report: ToDeviceUndecryptable) => void
  /** Background failures of the outgoing-request loop (they are retried next round). */
  readonly onError?: (error: unknown) => void
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const toRoomEvent = (raw: RawEvent, roomId: string): RoomEvent | undefined => {
  if (typeof raw["type"] !== "string" || typeof raw["event_id"] !== "string" || typeof raw["sender"] !== "string") return undefined
  const event: Record<string, unknown> = {
    type: raw["type"],
    event_id: raw["event_id"],
    room_id: roomId,
    sender: raw["sender"],
    origin_server_ts: typeof raw["origin_server_ts"] === "number" ? raw["origin_server_ts"] : 0,
    content: isObject(raw["content"]) ? raw["content"] : {}
  }
  if (typeof raw["state_key"] === "string") event["state_key"] = raw["state_key"]
  if (typeof raw["redacts"] === "string") event["redacts"] = raw["redacts"]
  if (isObject(raw["unsigned"])) event["unsigned"] = raw["unsigned"]
  return event as unknown as RoomEvent
}

/**
 * One account's OlmMachine with its store and its outgoing-request loop.
 *
 * @example
 * const e2ee = await E2ee.open({ userId, deviceId, http, storeFile: "data/crypto.v8" })
 * await e2ee.processOutgoingRequests() // uploads device and one-time keys
 */
export class E2ee {
  private readonly lock = new Mutex()
  private readonly settings = new sdk.DecryptionSettings(sdk.TrustRequirement.Untrusted)
  /** One wasm RoomId per room, kept: decrypting made one per event, each waiting on a finalizer. */
  private readonly roomIds = new Map<string, sdk.RoomId>()

  private roomIdOf(roomId: string): sdk.RoomId {
    let id = this.roomIds.get(roomId)
    if (id === undefined) {
      if (this.roomIds.size >= 1024) this.roomIds.clear()
      this.roomIds.set(roomId, (id = new sdk.RoomId(roomId)))
    }
    return id
  }
  private readonly keyListeners = new Set<(keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>) => void>()
  private closed = false
  /** The key counts last handed to the machine (see `receiveSync`). */
  private lastKeyCounts: string | undefined
  /** Syncs that carried nothing for the crypto machine and were not handed to it. */
  syncsSkipped = 0

  private constructor(
    readonly machine: sdk.OlmMachine,
    private readonly store: IdbSnapshotStore,
    private readonly options: E2eeOptions
  ) {
    machine.registerRoomKeyUpdatedCallback(async (infos) => {
      const keys = infos.map((i) => ({ roomId: i.roomId.toString(), sessionId: i.sessionId }))
      for (const l of this.keyListeners) l(keys)
    })
  }

  /** Opens (or creates) the account's machine from `storeFile`. */
  static async open(options: E2eeOptions): Promise<E2ee> {
    await sdk.initAsync()
    const store = await IdbSnapshotStore.open(options.storeFile, { userId: options.userId, deviceId: options.deviceId })
    const machine = await sdk.OlmMachine.initialize(new sdk.UserId(options.userId), new sdk.DeviceId(options.deviceId), store.storeName, options.storePassphrase)
    const e2ee = new E2ee(machine, store, options)
    await store.persist()
    return e2ee
  }

  get userId(): string {
    return this.options.userId
  }
  get deviceId(): string {
    return this.options.deviceId
  }
  /** The in-process IndexedDB name prefix of this machine's store (fresh on every open). */
  get storeName(): string {
    return this.store.storeName
  }
  /** The device's public identity keys (unpadded base64). */
  identityKeys(): { readonly ed25519: string; readonly curve25519: string } {
    const k = this.machine.identityKeys
    return { ed25519: k.ed25519.toBase64(), curve25519: k.curve25519.toBase64() }
  }

  /** Listens for new room keys (to-device `m.room_key`, forwarded, imported). */
  onRoomKeys(listener: (keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>) => void): () => void {
    this.keyListeners.add(listener)
    return () => this.keyListeners.delete(listener)
  }

  /** Runs the outgoing-request loop until the machine has nothing left (bounded), then persists. */
  processOutgoingRequests(): Promise<void> {
    return this.lock.run(() => this.runOutgoing())
  }

  /**
   * Feeds one sync's crypto parts to the machine and returns the to-device events widgets may
   * see: decrypted ones with `encrypted: true`, clear ones with `encrypted: false`, never the
   * machinery's own types, never ciphertext.
   */
  receiveSync(input: SyncCryptoInput): Promise<ReadonlyArray<ToDeviceEvent>> {
    return this.lock.run(async () => {
      // Every receiveSyncChanges call loads and saves the Olm account (it updates the key counts
      // in a store transaction), and saving deep-clones it through a pickle: each of its one-time
      // keys' public halves is derived again, a curve25519 scalar multiplication apiece. That was
      // a third of all CPU in a clear room at 300 messages a second. A sync with no to-device
      // event, no device-list change and the key counts the machine already has tells it
      // nothing, so it is not handed over.
      const keyCounts = JSON.stringify([Object.entries(input.oneTimeKeyCounts ?? {}).sort(), input.unusedFallbackKeyTypes === undefined ? null : [...input.unusedFallbackKeyTypes].sort()])
      const nothingNew = input.toDevice.length === 0 && (input.changed ?? []).length === 0 && (input.left ?? []).length === 0 && keyCounts === this.lastKeyCounts
      if (nothingNew) {
        this.syncsSkipped++
        return []
      }
      this.lastKeyCounts = keyCounts
      const lists = new sdk.DeviceLists(
        (input.changed ?? []).map((u) => new sdk.UserId(u)),
        (input.left ?? []).map((u) => new sdk.UserId(u))
      )
      const counts = new Map(Object.entries(input.oneTimeKeyCounts ?? {}))
      const fallback = input.unusedFallbackKeyTypes === undefined ? undefined : new Set(input.unusedFallbackKeyTypes)
      // receiveSyncChanges takes ownership of (frees) the settings object: a fresh one each call.
      const settings = new sdk.DecryptionSettings(sdk.TrustRequirement.Untrusted)
      const processed = await this.machine.receiveSyncChanges(JSON.stringify(input.toDevice), lists, counts, fallback, settings)
      const out: Array<ToDeviceEvent> = []
      for (const p of processed) {
        if (p instanceof sdk.DecryptedToDeviceEvent) {
          const raw = JSON.parse(p.rawEvent) as RawEvent
          const type = raw["type"]
          if (typeof type !== "string" || isCryptoInternalToDeviceType(type)) continue
          out.push({ type, sender: p.encryptionInfo.sender.toString(), content: isObject(raw["content"]) ? raw["content"] : {}, encrypted: true })
        } else if (p instanceof sdk.PlainTextToDeviceEvent) {
          const raw = JSON.parse(p.rawEvent) as RawEvent
          const type = raw["type"]
          if (typeof type !== "string" || typeof raw["sender"] !== "string" || isCryptoInternalToDeviceType(type)) continue
          out.push({ type, sender: raw["sender"], content: isObject(raw["content"]) ? raw["content"] : {}, encrypted: false })
        } else if (p instanceof sdk.UTDToDeviceEvent) {
          const raw = JSON.parse(p.rawEvent) as RawEvent
          this.options.onToDeviceUndecryptable?.({
            sender: typeof raw["sender"] === "string" ? raw["sender"] : "",
            reason: sdk.ToDeviceUnableToDecryptReason[p.utdInfo.reason] ?? "unknown"
          })
        }
        // InvalidToDeviceEvent: malformed (no type…), dropped.
      }
      await this.runOutgoing()
      return out
    })
  }

  /** Starts tracking these users' devices (members of encrypted rooms, to-device targets). */
  trackUsers(userIds: ReadonlyArray<string>): Promise<void> {
    if (userIds.length === 0) return Promise.resolve()
    return this.lock.run(() => this.machine.updateTrackedUsers(userIds.map((u) => new sdk.UserId(u))))
  }

  /** Decrypts one timeline event; a clear event comes back as it is. */
  async decryptRoomEvent(roomId: string, raw: RawEvent): Promise<DecryptOutcome> {
    if (raw["type"] !== "m.room.encrypted") {
      const event = toRoomEvent(raw, roomId)
      return event === undefined ? { _tag: "Failed", reason: "malformed event" } : { _tag: "Clear", event }
    }
    const content = raw["content"]
    if (!isObject(content) || typeof content["ciphertext"] === "undefined") return { _tag: "Failed", reason: "redacted or malformed encrypted event" }
    const sessionId = typeof content["session_id"] === "string" ? content["session_id"] : ""
    let clearJson: string
    try {
      const decrypted = await this.machine.decryptRoomEvent(JSON.stringify({ ...raw, room_id: roomId }), this.roomIdOf(roomId), this.settings)
      clearJson = decrypted.event
      // Freed now rather than by a finalizer some collections later: one wasm object per event.
      decrypted.free()
    } catch (e) {
      if (e instanceof sdk.MegolmDecryptionError) {
        const transient = e.code === sdk.DecryptionErrorCode.MissingRoomKey || e.code === sdk.DecryptionErrorCode.UnknownMessageIndex
        if (transient && e.withheldCode === undefined) return { _tag: "Pending", sessionId, reason: sdk.DecryptionErrorCode[e.code] ?? "missing key" }
        return { _tag: "Failed", reason: e.withheldCode ?? sdk.DecryptionErrorCode[e.code] ?? e.description }
      }
      return { _tag: "Failed", reason: e instanceof Error ? e.message : String(e) }
    }
    const clear = JSON.parse(clearJson) as RawEvent
    const clearContent: Record<string, unknown> = isObject(clear["content"]) ? { ...clear["content"] } : {}
    // Relations stay in clear on the wire (so servers can aggregate them); put them back.
    if (clearContent["m.relates_to"] === undefined && content["m.relates_to"] !== undefined) clearContent["m.relates_to"] = content["m.relates_to"]
    const event = toRoomEvent({ ...raw, type: clear["type"], content: clearContent }, roomId)
    return event === undefined ? { _tag: "Failed", reason: "malformed decrypted event" } : { _tag: "Decrypted", event }
  }

  /**
   * Encrypts a room event for `members`: tracks them, queries their devices, claims one-time keys
   * for missing Olm sessions, shares the room key with their devices, then Megolm-encrypts.
   * Returns the `m.room.encrypted` content to send.
   */
  encryptRoomEvent(
    roomId: string,
    members: ReadonlyArray<string>,
    type: string,
    content: Readonly<Record<string, unknown>>,
    encryption: Readonly<Record<string, unknown>> = {}
  ): Promise<Record<string, unknown>> {
    return this.lock.run(async () => {
      await this.machine.updateTrackedUsers(members.map((u) => new sdk.UserId(u)))
      await this.runOutgoing({ strict: true })
      await this.claimMissingSessions(members)
      const settings = new sdk.EncryptionSettings()
      if (typeof encryption["rotation_period_ms"] === "number") settings.rotationPeriod = BigInt(Math.floor(encryption["rotation_period_ms"])) * 1000n
      if (typeof encryption["rotation_period_msgs"] === "number") settings.rotationPeriodMessages = BigInt(Math.floor(encryption["rotation_period_msgs"]))
      const shares = await this.machine.shareRoomKey(
        new sdk.RoomId(roomId),
        members.map((u) => new sdk.UserId(u)),
        settings
      )
      for (const r of shares) await this.send(r)
      const encrypted = await this.machine.encryptRoomEvent(new sdk.RoomId(roomId), type, JSON.stringify(content))
      await this.store.persist()
      return JSON.parse(encrypted) as Record<string, unknown>
    })
  }

  /**
   * Olm-encrypts a to-device message per target device (`*`: all the user's devices; our own
   * device is skipped). Returns the `m.room.encrypted` messages map and the targets with no known
   * device, which are skipped.
   */
  encryptToDevice(
    type: string,
    messages: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>
  ): Promise<{ readonly messages: Record<string, Record<string, Record<string, unknown>>>; readonly unknown: ReadonlyArray<string> }> {
    return this.lock.run(async () => {
      const users = Object.keys(messages)
      await this.machine.updateTrackedUsers(users.map((u) => new sdk.UserId(u)))
      await this.runOutgoing({ strict: true })
      await this.claimMissingSessions(users)
      const out: Record<string, Record<string, Record<string, unknown>>> = {}
      const unknown: Array<string> = []
      for (const user of users) {
        // Device handles keep the store open until freed (a close would then hang): free them all.
        const devices = await this.machine.getUserDevices(new sdk.UserId(user))
        try {
          for (const [target, content] of Object.entries(messages[user] ?? {})) {
            const targets = target === "*" ? devices.devices() : [devices.get(new sdk.DeviceId(target))]
            if (target !== "*" && targets[0] === undefined) unknown.push(`${user}/${target}`)
            for (const device of targets) {
              if (device === undefined) continue
              try {
                const deviceId = device.deviceId.toString()
                if (user === this.userId && deviceId === this.deviceId) continue
                const encrypted = await device.encryptToDeviceEvent(type, content)
                ;(out[user] ??= {})[deviceId] = JSON.parse(encrypted) as Record<string, unknown>
              } finally {
                device.free()
              }
            }
          }
        } finally {
          devices.free()
        }
      }
      // The Olm ratchets moved: persist before anything encrypted with them leaves the process.
      await this.store.persist()
      return { messages: out, unknown }
    })
  }

  /**
   * Runs `fn` on the machine under the crypto lock (no sync, encryption or request round runs
   * meanwhile), with `send` for the requests it makes (answers are marked as sent), then persists.
   * Cross-signing setup (`cross-signing.ts`) uses it.
   */
  exclusive<T>(fn: (machine: sdk.OlmMachine, send: (request: OutgoingRequest) => Promise<void>) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      try {
        return await fn(this.machine, (r) => this.send(r))
      } finally {
        await this.store.persist()
      }
    })
  }

  /** Writes the store to disk now (the sync loop calls it before saving its token). */
  persist(): Promise<void> {
    return this.lock.run(() => this.store.persist())
  }

  /** Persists, closes the machine and frees the in-memory store. */
  close(): Promise<void> {
    return this.lock.run(async () => {
      if (this.closed) return
      this.closed = true
      await this.store.persist()
      this.machine.close()
      await this.store.dispose()
    })
  }

  private async claimMissingSessions(users: ReadonlyArray<string>): Promise<void> {
    const claim = await this.machine.getMissingSessions(users.map((u) => new sdk.UserId(u)))
    if (claim !== null && claim !== undefined) await this.send(claim)
  }

  /** Requests until none are left (bounded: a misbehaving server must not spin us). */
  private async runOutgoing(options: { readonly strict?: boolean } = {}): Promise<void> {
    if (this.closed) return
    for (let round = 0; round < 8; round++) {
      const requests = await this.machine.outgoingRequests()
      if (requests.length === 0) break
      let failed = false
      for (const r of requests) {
        try {
          await this.send(r)
        } catch (e) {
          failed = true
          if (options.strict === true) {
            await this.store.persist()
            throw e
          }
          this.options.onError?.(e)
        }
      }
      await this.store.persist()
      if (failed) break // the machine hands failed requests back next time
    }
  }

  private async send(r: OutgoingRequest): Promise<void> {
    const http = this.options.http
    let response: unknown
    if (r instanceof sdk.KeysUploadRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/upload", body: r.body })
    else if (r instanceof sdk.KeysQueryRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/query", body: r.body })
    else if (r instanceof sdk.KeysClaimRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/claim", body: r.body })
    else if (r instanceof sdk.ToDeviceRequest)
      response = await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/${r.event_type}/${r.txn_id}`, body: r.body })
    else if (r instanceof sdk.SignatureUploadRequest) response = await http.request({ method: "POST", path: "/_matrix/client/v3/keys/signatures/upload", body: r.body })
    else if (r instanceof sdk.RoomMessageRequest)
      response = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${r.room_id}/send/${r.event_type}/${r.txn_id}`, body: r.body })
    else return // KeysBackup: server-side key backup is not enabled by this host
    if (r.id !== undefined) await this.machine.markRequestAsSent(r.id, r.type, JSON.stringify(response))
  }
}

// ---------------------------------------------------------------------------------------------
// The timeline
// ---------------------------------------------------------------------------------------------

/** What {@link DecryptingTimeline} needs of {@link E2ee}. */
export interface RoomDecrypter {
  readonly decryptRoomEvent: (roomId: string, raw: RawEvent) => Promise<DecryptOutcome>
  readonly onRoomKeys: (listener: (keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>) => void) => () => void
}

export interface HoldOptions {
  /** How long an undecryptable event may hold up its room's later events. Default 10 s. */
  readonly maxHoldMs?: number
  /** How many later events of its room it may hold up. Default 100. */
  readonly maxHeldBehind?: number
  /** Events that went past their hold bound are kept this many (oldest dropped) for late keys. Default 1000. */
  readonly maxLate?: number
}

interface Entry {
  readonly raw: RawEvent
  /** When it first failed to decrypt (the hold clock), or undefined until then. */
  heldSince: number | undefined
  /** The key generation it was last tried at, so a retry happens only when new keys came. */
  triedAt: number
  sessionId: string
}

/** Held events, as saved beside the sync token so a restart neither loses nor repeats them. */
export interface TimelineState {
  readonly rooms: Readonly<Record<string, ReadonlyArray<{ readonly raw: RawEvent }>>>
  readonly late: ReadonlyArray<{ readonly roomId: string; readonly raw: RawEvent }>
}

export interface TimelineStats {
  delivered: number
  decrypted: number
  /** Delivered after their hold bound expired, when their key finally came. */
  lateDelivered: number
  /** Reports of `held-too-long`, `failed` and `evicted`. */
  undecryptable: number
}

/**
 * Each room's timeline in order, decrypted: the only path by which room events reach widgets.
 *
 * Ordering choice: an event whose room key is missing holds back the later events of its room
 * (head-of-line), for at most `maxHoldMs` and at most `maxHeldBehind` later events. Keys usually
 * arrive in the same or the next sync, so this keeps the widget's view in order in the common
 * case. When a bound is hit the event is reported (`held-too-long`), the room moves on, and the
 * event waits in a bounded late set: if its key still comes it is delivered then, late and out of
 * order but exactly once. An event that can never decrypt is reported (`failed`), never delivered.
 * Clear events of other rooms are never held up. `deliver` is told which events come late (out
 * of timeline order), so a reader of positions can keep to the in-order ones.
 *
 * @example
 * const timeline = new DecryptingTimeline(e2ee, (event) => route(event), { onUndecryptable: log })
 * await timeline.push("!room:example.org", syncTimelineEvents)
 */
export class DecryptingTimeline {
  readonly stats: TimelineStats = { delivered: 0, decrypted: 0, lateDelivered: 0, undecryptable: 0 }
  private readonly rooms = new Map<string, Array<Entry>>()
  private late: Array<{ readonly roomId: string; readonly entry: Entry }> = []
  private keyGeneration = 0
  private chain: Promise<void> = Promise.resolve()
  private cancelTimer: (() => void) | undefined
  private readonly maxHoldMs: number
  private readonly maxHeldBehind: number
  private readonly maxLate: number
  private readonly clock: Clock
  private readonly onUndecryptable: ((report: UndecryptableReport) => void) | undefined
  private readonly unsubscribe: () => void

  constructor(
    private readonly decrypter: RoomDecrypter,
    private readonly deliver: (event: RoomEvent, late: boolean) => void,
    options: HoldOptions & { readonly clock?: Clock; readonly onUndecryptable?: (report: UndecryptableReport) => void } = {}
  ) {
    this.maxHoldMs = options.maxHoldMs ?? 10_000
    this.maxHeldBehind = options.maxHeldBehind ?? 100
    this.maxLate = options.maxLate ?? 1000
    this.clock = options.clock ?? systemClock
    this.onUndecryptable = options.onUndecryptable
    this.unsubscribe = decrypter.onRoomKeys((keys) => void this.keysArrived(keys))
  }

  /** Appends a room's new timeline events (oldest first) and delivers what can be. */
  push(roomId: string, events: ReadonlyArray<RawEvent>): Promise<void> {
    return this.serial(async () => {
      const queue = this.rooms.get(roomId) ?? []
      for (const raw of events) queue.push({ raw, heldSince: undefined, triedAt: -1, sessionId: "" })
      this.rooms.set(roomId, queue)
      await this.drain(roomId)
    })
  }

  /** Retries what waits on these keys (wired to the machine's room-key callback). */
  keysArrived(keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>): Promise<void> {
    this.keyGeneration += 1
    return this.serial(async () => {
      const rooms = new Set(keys.map((k) => k.roomId))
      for (const roomId of rooms) if (this.rooms.has(roomId)) await this.drain(roomId)
      const sessions = new Set(keys.map((k) => `${k.roomId}|${k.sessionId}`))
      const waiting = this.late.filter((l) => sessions.has(`${l.roomId}|${l.entry.sessionId}`))
      for (const l of waiting) {
        const outcome = await this.decrypter.decryptRoomEvent(l.roomId, l.entry.raw)
        if (outcome._tag === "Pending") continue
        this.late = this.late.filter((x) => x !== l)
        if (outcome._tag === "Failed") this.report(l.roomId, l.entry.raw, "failed", outcome.reason)
        else {
          this.stats.lateDelivered += 1
          this.emit(outcome, true)
        }
      }
    })
  }

  /** Applies the time bound now (also runs on its own timer). */
  expire(): Promise<void> {
    return this.serial(async () => {
      for (const roomId of Array.from(this.rooms.keys())) await this.drain(roomId)
    })
  }

  /** Events still waiting, in a form that survives a restart. */
  state(): TimelineState {
    const rooms: Record<string, Array<{ raw: RawEvent }>> = {}
    for (const [roomId, queue] of this.rooms) if (queue.length > 0) rooms[roomId] = queue.map((e) => ({ raw: e.raw }))
    return { rooms, late: this.late.map((l) => ({ roomId: l.roomId, raw: l.entry.raw })) }
  }

  /**
   * Re-adopts saved waiting events (before any new push) and tries them again. Their hold clock
   * starts afresh: keys cannot arrive while the process is down, so downtime does not count.
   */
  restore(state: TimelineState): Promise<void> {
    return this.serial(async () => {
      for (const [roomId, entries] of Object.entries(state.rooms))
        this.rooms.set(
          roomId,
          entries.map((e) => ({ raw: e.raw, heldSince: undefined, triedAt: -1, sessionId: "" }))
        )
      this.late = state.late.map((l) => ({ roomId: l.roomId, entry: { raw: l.raw, heldSince: undefined, triedAt: -1, sessionId: sessionIdOf(l.raw) } }))
      for (const roomId of Array.from(this.rooms.keys())) await this.drain(roomId)
    })
  }

  /** Number of events waiting (held heads and those behind them). */
  get waiting(): number {
    let n = 0
    for (const q of this.rooms.values()) n += q.length
    return n
  }

  /** Resolves when everything queued so far has been processed. */
  idle(): Promise<void> {
    return this.serial(async () => undefined)
  }

  close(): void {
    this.unsubscribe()
    this.cancelTimer?.()
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn)
    this.chain = next.catch(() => undefined)
    return next
  }

  private async drain(roomId: string): Promise<void> {
    const queue = this.rooms.get(roomId)
    if (queue === undefined) return
    while (queue.length > 0) {
      const head = queue[0]!
      if (head.triedAt !== this.keyGeneration || head.heldSince === undefined) {
        const generation = this.keyGeneration
        const outcome = await this.decrypter.decryptRoomEvent(roomId, head.raw)
        if (outcome._tag !== "Pending") {
          queue.shift()
          if (outcome._tag === "Failed") this.report(roomId, head.raw, "failed", outcome.reason)
          else this.emit(outcome)
          continue
        }
        head.triedAt = generation
        head.sessionId = outcome.sessionId
        head.heldSince ??= this.clock.now()
      }
      const overTime = this.clock.now() - (head.heldSince ?? 0) >= this.maxHoldMs
      const overCount = queue.length - 1 > this.maxHeldBehind
      if (!overTime && !overCount) break
      queue.shift()
      this.report(roomId, head.raw, "held-too-long", overTime ? `no room key after ${this.maxHoldMs} ms` : `more than ${this.maxHeldBehind} later events waiting`)
      this.late.push({ roomId, entry: head })
      while (this.late.length > this.maxLate) {
        const dropped = this.late.shift()
        if (dropped !== undefined) this.report(dropped.roomId, dropped.entry.raw, "evicted", "late set full")
      }
    }
    if (queue.length === 0) this.rooms.delete(roomId)
    this.armTimer()
  }

  private armTimer(): void {
    this.cancelTimer?.()
    this.cancelTimer = undefined
    let earliest = Infinity
    for (const q of this.rooms.values()) {
      const since = q[0]?.heldSince
      if (since !== undefined) earliest = Math.min(earliest, since + this.maxHoldMs)
    }
    if (earliest === Infinity) return
    this.cancelTimer = this.clock.setTimer(Math.max(0, earliest - this.clock.now()), () => {
      this.cancelTimer = undefined
      void this.expire()
    })
  }

  private emit(outcome: Extract<DecryptOutcome, { _tag: "Clear" | "Decrypted" }>, late = false): void {
    if (outcome._tag === "Decrypted") this.stats.decrypted += 1
    this.stats.delivered += 1
    this.deliver(outcome.event, late)
  }

  private report(roomId: string, raw: RawEvent, kind: UndecryptableReport["kind"], reason: string): void {
    this.stats.undecryptable += 1
    this.onUndecryptable?.({ roomId, eventId: typeof raw["event_id"] === "string" ? raw["event_id"] : "", kind, reason })
  }
}

const sessionIdOf = (raw: RawEvent): string => {
  const content = raw["content"]
  return isObject(content) && typeof content["session_id"] === "string" ? content["session_id"] : ""
}

/** A failure of the crypto layer, as the port reports it. */
export const cryptoError = (what: string, cause: unknown): HomeserverError =>
  cause instanceof HomeserverError ? cause : new HomeserverError({ message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })
