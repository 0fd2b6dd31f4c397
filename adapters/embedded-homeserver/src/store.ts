import type { JsonObject } from "./decode.ts"
import { MatrixError } from "./errors.ts"
import type { Journal } from "./journal.ts"
import type { DelayedEvent, DelayedOutcome, JournalRecord, Txn } from "./records.ts"
import { isBackupRecord, KeyBackups } from "./key-backup-store.ts"
import { redact } from "./redaction.ts"
import { Room } from "./rooms.ts"
import type { Entry } from "./rooms.ts"

/**
 * The homeserver's whole state, in memory, as the fold of the journal's records. Handlers read
 * it freely and change it only through `commit`, which applies records and makes them durable;
 * a handler validates, builds its records and commits without awaiting in between, so two
 * requests can never interleave between a check and the write it guards.
 */
export interface Device {
  readonly deviceId: string
  displayName?: string
  readonly createdTs: number
  keys?: JsonObject
  readonly oneTimeKeys: Map<string, unknown>
  /** Fallback key per algorithm; `used` once claimed (it stays claimable, but the client should replace it). */
  readonly fallbackKeys: Map<string, { readonly keyId: string; readonly key: unknown; used: boolean }>
  readonly inbox: Array<{ readonly pos: number; readonly sender: string; readonly type: string; readonly content: JsonObject }>
}

export interface User {
  readonly userId: string
  passwordHash: string
  readonly createdTs: number
  displayname?: string
  avatar_url?: string
  readonly devices: Map<string, Device>
  readonly accountData: Map<string, Positioned<JsonObject>>
  readonly roomAccountData: Map<string, Map<string, Positioned<JsonObject>>>
  readonly filters: Map<string, JsonObject>
  readonly crossSigning: Map<string, JsonObject>
}

export interface Positioned<A> {
  readonly pos: number
  readonly value: A
}

export interface Receipt {
  readonly pos: number
  readonly userId: string
  readonly receiptType: string
  readonly eventId: string
  readonly threadId?: string
  readonly ts: number
}

export interface DelayedState {
  delayed: DelayedEvent
  finalised?: DelayedOutcome
}

export class Store {
  readonly users = new Map<string, User>()
  readonly tokens = new Map<string, { readonly userId: string; readonly deviceId: string }>()
  readonly rooms = new Map<string, Room>()
  /** Rooms in which a user has (or had) any membership: where `/sync` looks for them. */
  readonly userRooms = new Map<string, Set<string>>()
  readonly aliases = new Map<string, { readonly roomId: string; readonly creator: string }>()
  readonly publicRooms = new Set<string>()
  /** Result of an earlier request with the same access token, scope and transaction id. */
  readonly txns = new Map<string, string>()
  readonly receipts = new Map<string, Array<Receipt>>()
  /** Users whose device list or keys changed, in stream order (`device_lists.changed`). */
  readonly deviceListLog: Array<Positioned<string>> = []
  /**
   * Signatures uploaded through `/keys/signatures/upload`, by user, key id and signer. Kept apart
   * from the keys so a device re-uploading its keys does not drop others' signatures on them.
   */
  readonly signatures = new Map<string, Map<string, JsonObject>>()
  readonly openid = new Map<string, { readonly userId: string; readonly expiresAt: number }>()
  readonly delayed = new Map<string, DelayedState>()
  /** Server-side key backups (`/room_keys`). */
  readonly keyBackups = new KeyBackups()
  /** Last position handed out; the next record observable through a token gets `pos + 1`. */
  pos = 0
  /**
   * Highest position of an applied record. Positions handed out to a request that then failed
   * validation are never applied, so they are never exposed as a token either: after a restart
   * they may be handed out again without any client having seen them.
   */
  appliedPos = 0
  /** Last position known to be on disk: what `/sync` may hand out. */
  durablePos = 0
  private readonly waiters = new Set<{ after: number; wake: () => void }>()
  private closed = false
  /** Called after a record is applied (the delayed-event scheduler watches its records). */
  onApplied: (record: JournalRecord) => void = () => {}

  constructor(
    readonly serverName: string,
    readonly now: () => number,
    private readonly journal: Journal | undefined
  ) {}

  /** Rebuilds state from a journal's records (no journaling, no notifications). */
  replay(records: ReadonlyArray<JournalRecord>): void {
    for (const r of records) this.apply(r)
    this.pos = this.appliedPos
    this.durablePos = this.appliedPos
  }

  nextPos(): number {
    return ++this.pos
  }

  /**
   * Applies `records` now and resolves when they are durable. Must be called synchronously after
   * the checks that justify the records (no `await` in between).
   */
  commit(records: ReadonlyArray<JournalRecord>): Promise<void> {
    if (this.closed) return Promise.reject(new MatrixError({ status: 503, errcode: "M_UNKNOWN", error: "The homeserver is shutting down." }))
    for (const r of records) {
      this.apply(r)
      this.onApplied(r)
    }
    const upTo = this.appliedPos
    if (this.journal === undefined) {
      this.markDurable(upTo)
      return Promise.resolve()
    }
    return this.journal.append(records).then(() => this.markDurable(upTo))
  }

  /** Commits records whose loss in a crash is harmless (e.g. to-device acknowledgements): no wait for disk. */
  commitLazily(records: ReadonlyArray<JournalRecord>): void {
    this.commit(records).catch(() => {})
  }

  private markDurable(upTo: number): void {
    if (upTo <= this.durablePos) return
    this.durablePos = upTo
    for (const w of this.waiters) if (upTo > w.after) w.wake()
  }

  /**
   * Resolves when the durable position passes `after`, after `timeoutMs`, on `signal` abort, or
   * on close, whichever is first. Long-polling `/sync` waits here.
   */
  waitForChange(after: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.closed || this.durablePos > after || timeoutMs <= 0 || signal.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const waiter = { after, wake: () => done() }
      const timer = setTimeout(() => done(), timeoutMs)
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener("abort", done)
        this.waiters.delete(waiter)
        resolve()
      }
      signal.addEventListener("abort", done)
      this.waiters.add(waiter)
    })
  }

  /**
   * Resolves once position `pos` is durable. A retried request whose first attempt is still
   * waiting for its fsync must not be acknowledged before the first one could be.
   */
  whenDurable(pos: number): Promise<void> {
    if (this.closed || this.durablePos >= pos) return Promise.resolve()
    return new Promise((resolve) => {
      const waiter = { after: pos - 1, wake: () => (this.waiters.delete(waiter), resolve()) }
      this.waiters.add(waiter)
    })
  }

  /** Ends every long-poll and refuses later commits. */
  close(): void {
    this.closed = true
    for (const w of this.waiters) w.wake()
  }

  get isClosed(): boolean {
    return this.closed
  }

  txnKey(txn: Txn): string {
    return `${txn.tokenKey}\u0000${txn.scope}\u0000${txn.txnId}`
  }

  private apply(r: JournalRecord): void {
    if ("pos" in r && r.pos > this.appliedPos) this.appliedPos = r.pos
    if (isBackupRecord(r)) return this.keyBackups.apply(r)
    switch (r.t) {
      case "user":
        this.users.set(r.userId, {
          userId: r.userId,
          passwordHash: r.passwordHash,
          createdTs: r.ts,
          devices: new Map(),
          accountData: new Map(),
          roomAccountData: new Map(),
          filters: new Map(),
          crossSigning: new Map()
        })
        return
      case "password":
        this.user(r.userId).passwordHash = r.passwordHash
        return
      case "device": {
        const user = this.user(r.userId)
        const existing = user.devices.get(r.deviceId)
        if (existing !== undefined) {
          if (r.displayName !== undefined) existing.displayName = r.displayName
        } else {
          const device: Device = { deviceId: r.deviceId, createdTs: r.ts, oneTimeKeys: new Map(), fallbackKeys: new Map(), inbox: [] }
          if (r.displayName !== undefined) device.displayName = r.displayName
          user.devices.set(r.deviceId, device)
        }
        this.deviceListLog.push({ pos: r.pos, value: r.userId })
        return
      }
      case "device.deleted":
        this.user(r.userId).devices.delete(r.deviceId)
        for (const [key, t] of this.tokens) if (t.userId === r.userId && t.deviceId === r.deviceId) this.tokens.delete(key)
        this.deviceListLog.push({ pos: r.pos, value: r.userId })
        return
      case "token":
        this.tokens.set(r.tokenKey, { userId: r.userId, deviceId: r.deviceId })
        return
      case "token.revoked":
        this.tokens.delete(r.tokenKey)
        return
      case "profile": {
        const user = this.user(r.userId)
        if (r.displayname !== undefined) {
          if (r.displayname === null) delete user.displayname
          else user.displayname = r.displayname
        }
        if (r.avatar_url !== undefined) {
          if (r.avatar_url === null) delete user.avatar_url
          else user.avatar_url = r.avatar_url
        }
        return
      }
      case "event": {
        const { event } = r
        let room = this.rooms.get(event.room_id)
        if (room === undefined) {
          room = new Room(event.room_id)
          this.rooms.set(event.room_id, room)
        }
        const replaces = event.state_key === undefined ? undefined : room.current.get(`${event.type}\u0000${event.state_key}`)
        const entry: Entry = { pos: r.pos, event, ...(replaces && { replaces }), ...(r.txn && { txn: r.txn }) }
        room.append(entry)
        if (event.type === "m.room.member" && event.state_key !== undefined) {
          const set = this.userRooms.get(event.state_key) ?? new Set()
          set.add(event.room_id)
          this.userRooms.set(event.state_key, set)
        }
        if (r.txn !== undefined) this.txns.set(this.txnKey(r.txn), event.event_id)
        if (event.type === "m.room.redaction" && event.redacts !== undefined) {
          const target = room.byId.get(event.redacts)
          if (target !== undefined && target !== entry) {
            target.event = redact(target.event, room.version)
            target.redactedBy = entry
          }
        }
        return
      }
      case "room.visibility":
        if (r.visibility === "public") this.publicRooms.add(r.roomId)
        else this.publicRooms.delete(r.roomId)
        return
      case "alias":
        if (r.roomId === null) this.aliases.delete(r.alias)
        else this.aliases.set(r.alias, { roomId: r.roomId, creator: r.creator })
        return
      case "account_data": {
        const user = this.user(r.userId)
        let map = user.accountData
        if (r.roomId !== undefined) {
          map = user.roomAccountData.get(r.roomId) ?? new Map<string, Positioned<JsonObject>>()
          user.roomAccountData.set(r.roomId, map)
        }
        map.set(r.type, { pos: r.pos, value: r.content })
        return
      }
      case "receipt": {
        const list = this.receipts.get(r.roomId) ?? []
        this.receipts.set(r.roomId, list)
        // Only the latest receipt per user, type and thread matters; older ones are dropped.
        const i = list.findIndex((x) => x.userId === r.userId && x.receiptType === r.receiptType && x.threadId === r.threadId)
        if (i >= 0) list.splice(i, 1)
        list.push({ pos: r.pos, userId: r.userId, receiptType: r.receiptType, eventId: r.eventId, ts: r.ts, ...(r.threadId !== undefined && { threadId: r.threadId }) })
        return
      }
      case "filter":
        this.user(r.userId).filters.set(r.filterId, r.filter)
        return
      case "to_device":
        for (const m of r.messages) {
          this.users.get(m.userId)?.devices.get(m.deviceId)?.inbox.push({ pos: r.pos, sender: r.sender, type: r.type, content: m.content })
        }
        if (r.txn !== undefined) this.txns.set(this.txnKey(r.txn), "")
        return
      case "to_device.acked": {
        const inbox = this.users.get(r.userId)?.devices.get(r.deviceId)?.inbox
        if (inbox === undefined) return
        const keep = inbox.findIndex((m) => m.pos > r.upTo)
        inbox.splice(0, keep < 0 ? inbox.length : keep)
        return
      }
      case "keys.device": {
        const device = this.users.get(r.userId)?.devices.get(r.deviceId)
        if (device !== undefined) device.keys = r.keys
        this.deviceListLog.push({ pos: r.pos, value: r.userId })
        return
      }
      case "keys.otk": {
        const device = this.users.get(r.userId)?.devices.get(r.deviceId)
        if (device !== undefined) for (const [id, key] of Object.entries(r.keys)) device.oneTimeKeys.set(id, key)
        return
      }
      case "keys.otk.claimed":
        this.users.get(r.userId)?.devices.get(r.deviceId)?.oneTimeKeys.delete(r.keyId)
        return
      case "keys.fallback": {
        const device = this.users.get(r.userId)?.devices.get(r.deviceId)
        if (device === undefined) return
        for (const [keyId, key] of Object.entries(r.keys)) {
          device.fallbackKeys.set(keyId.slice(0, keyId.indexOf(":")), { keyId, key, used: false })
        }
        return
      }
      case "keys.fallback.used": {
        const device = this.users.get(r.userId)?.devices.get(r.deviceId)
        for (const fb of device?.fallbackKeys.values() ?? []) if (fb.keyId === r.keyId) fb.used = true
        return
      }
      case "keys.cross_signing":
        this.user(r.userId).crossSigning.set(r.usage, r.key)
        this.deviceListLog.push({ pos: r.pos, value: r.userId })
        return
      case "keys.signature": {
        const byKey = this.signatures.get(r.userId) ?? new Map<string, JsonObject>()
        this.signatures.set(r.userId, byKey)
        const bySigner = byKey.get(r.keyId) ?? {}
        byKey.set(r.keyId, { ...bySigner, [r.signer]: { ...(bySigner[r.signer] as JsonObject | undefined), ...r.signatures } })
        this.deviceListLog.push({ pos: r.pos, value: r.userId })
        return
      }
      case "openid":
        this.openid.set(r.tokenKey, { userId: r.userId, expiresAt: r.expiresAt })
        return
      case "delayed.scheduled":
        this.delayed.set(r.delayed.delayId, { delayed: r.delayed })
        if (r.txn !== undefined) this.txns.set(this.txnKey(r.txn), r.delayed.delayId)
        return
      case "delayed.restarted": {
        const d = this.delayed.get(r.delayId)
        if (d !== undefined) d.delayed = { ...d.delayed, runningSince: r.runningSince }
        return
      }
      case "delayed.finalised": {
        const d = this.delayed.get(r.delayId)
        if (d !== undefined) d.finalised = r.finalised
        return
      }
    }
  }

  /** The user a record names; records are only built for existing users, so absence is a bug. */
  private user(userId: string): User {
    const user = this.users.get(userId)
    if (user === undefined) throw new Error(`journal names unknown user ${userId}`)
    return user
  }
}

/**
 * `key` with the separately uploaded signatures for `keyId` merged into its `signatures`. With
 * `viewer`, only the owner's signatures and the viewer's own are merged: who else has verified a
 * user (a user-signing key's signature on their master key) is the signer's business alone.
 */
export const withSignatures = (store: Store, userId: string, keyId: string, key: JsonObject, viewer?: string): JsonObject => {
  const extra = store.signatures.get(userId)?.get(keyId)
  if (extra === undefined) return key
  const own = (typeof key.signatures === "object" && key.signatures !== null ? key.signatures : {}) as JsonObject
  const merged: JsonObject = { ...own }
  for (const [signer, sigs] of Object.entries(extra)) {
    if (viewer !== undefined && signer !== userId && signer !== viewer) continue
    merged[signer] = { ...(own[signer] as JsonObject | undefined), ...(sigs as JsonObject) }
  }
  return { ...key, signatures: merged }
}

/** `ed25519:<id>` key ids of a cross-signing key, which is what signatures address it by. */
export const keyIdsOf = (key: JsonObject): Array<string> => {
  const keys = key.keys
  if (typeof keys !== "object" || keys === null) return []
  return Object.keys(keys).map((id) => id.slice(id.indexOf(":") + 1))
}
