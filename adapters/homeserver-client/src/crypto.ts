/**
 * End-to-end encryption for one account, on matrix-rust-sdk's `OlmMachine` (crypto-wasm).
 *
 * - The pull/push loop (`outgoingRequests()` → HTTP → `markRequestAsSent`) and every operation that
 *   changes Olm/Megolm sessions run one at a time under one lock, as matrix-rust-sdk does.
 * - `DecryptingTimeline` (decrypting-timeline.ts) turns a room's timeline into decrypted events,
 *   holding an event whose room key has not arrived yet and releasing it, in order, when it comes.
 * - The crypto store persists to a snapshot file and a journal of the writes since (crypto-store.ts).
 *
 * Models: matrix-org/matrix-rust-sdk `crates/matrix-sdk-crypto/src/machine/mod.rs`,
 * matrix-org/matrix-js-sdk `src/rust-crypto/` (`OutgoingRequestProcessor`, `RustCrypto`).
 */
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import type { ToDeviceEvent } from "@widgethost/core"
import { isCryptoInternalToDeviceType } from "@widgethost/core"
import { IdbSnapshotStore } from "./crypto-store.ts"
import { Mutex } from "./crypto-lock.ts"
import { clearOutcome, decryptedOutcome, isObject, outcomeOfDecryptError, verificationEventsOf, visibleToDeviceEvents } from "./crypto-events.ts"
import type { VerificationEventSeen } from "./crypto-events.ts"
import type { DecryptOutcome, E2eeOptions, OutgoingRequest, RawEvent, SyncCryptoInput } from "./e2ee-types.ts"
import { sendOutgoingRequest } from "./outgoing-requests.ts"
import { countBackedUp, isWrongBackupVersion } from "./key-backup-upload.ts"
import type { LoadProgress } from "./load-progress.ts"

// The types E2ee takes and gives (e2ee-types.ts) and the event helpers its callers share (crypto-events.ts).
export type { VerificationEventSeen } from "./crypto-events.ts"
export type { CryptoHttp, DecryptOutcome, E2eeOptions, OutgoingRequest, RawEvent, SyncCryptoInput, ToDeviceUndecryptable, UndecryptableReport } from "./e2ee-types.ts"
export { isObject }

/** Re-exported from core: the types the crypto machinery owns, never shown to widgets. */
export { isCryptoInternalToDeviceType }

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
  /** Told of every `m.key.verification.*` to-device event a sync handed the machine (verification.ts). */
  private readonly verificationListeners = new Set<(events: ReadonlyArray<VerificationEventSeen>) => void>()
  private closed = false
  /** The key counts last handed to the machine (see `receiveSync`). */
  private lastKeyCounts: string | undefined
  /** Syncs that carried nothing for the crypto machine and were not handed to it. */
  syncsSkipped = 0
  /** Server-side key backup is on (key-backup.ts turned it on): new room keys go up after each round. */
  private backingUp = false
  /** Room keys came (or were made) since the last backup round. */
  private backupDue = false
  /** Room keys uploaded to the server-side backup by this process. */
  keysBackedUp = 0

  private constructor(
    readonly machine: sdk.OlmMachine,
    private readonly store: IdbSnapshotStore,
    private readonly options: E2eeOptions
  ) {
    machine.registerRoomKeyUpdatedCallback(async (infos) => {
      const keys = infos.map((i) => ({ roomId: i.roomId.toString(), sessionId: i.sessionId }))
      this.backupDue = true
      for (const l of this.keyListeners) l(keys)
    })
  }

  /** Opens (or creates) the account's machine from `storeFile`. */
  static async open(options: E2eeOptions): Promise<E2ee> {
    await sdk.initAsync()
    let last = { step: "reading the store", done: 0, total: 0, unit: "" }
    const progress = options.onProgress
    const report = progress === undefined ? undefined : (p: Omit<LoadProgress, "task" | "finished">) => progress({ task: "crypto-store", ...(last = p), finished: false })
    report?.(last)
    const store = await IdbSnapshotStore.open(options.storeFile, { userId: options.userId, deviceId: options.deviceId }, options.storeCompaction, report === undefined ? undefined : (p) => report(p))
    report?.({ ...last, step: "opening the crypto machine" })
    const machine = await sdk.OlmMachine.initialize(new sdk.UserId(options.userId), new sdk.DeviceId(options.deviceId), store.storeName, options.storePassphrase)
    progress?.({ task: "crypto-store", step: "loaded", done: last.total, total: last.total, unit: last.unit, finished: true })
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

  /**
   * Listens for the interactive-verification events the machine processed (it handles them
   * itself; this says which flows moved). Called under the crypto lock: schedule, never await.
   */
  onVerificationEvents(listener: (events: ReadonlyArray<VerificationEventSeen>) => void): () => void {
    this.verificationListeners.add(listener)
    return () => this.verificationListeners.delete(listener)
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
      const out = visibleToDeviceEvents(processed, this.options.onToDeviceUndecryptable)
      // The machine answers verification steps itself (queued as outgoing requests, sent below).
      await this.runOutgoing()
      if (this.verificationListeners.size > 0) {
        const seen = verificationEventsOf(processed)
        if (seen.length > 0) for (const l of this.verificationListeners) l(seen)
      }
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
    if (raw["type"] !== "m.room.encrypted") return clearOutcome(raw, roomId)
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
      return outcomeOfDecryptError(e, sessionId)
    }
    return decryptedOutcome(raw, roomId, content, clearJson)
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
      // The Olm ratchets moved sharing the key: on disk before the shares leave the process.
      await this.store.persist()
      for (const r of shares) await this.send(r)
      // A new outbound session is also an inbound one of ours, worth backing up (no callback tells).
      if (shares.length > 0) this.backupDue = true
      const encrypted = await this.machine.encryptRoomEvent(new sdk.RoomId(roomId), type, JSON.stringify(content))
      await this.store.persist()
      return JSON.parse(encrypted) as Record<string, unknown>
    })
  }

  /**
   * Olm-encrypts a to-device message per target device (`*`: all the user's devices; our own
   * device is skipped). Returns the `m.room.encrypted` messages map and the named targets with no
   * known device (the caller refuses the request when there are any).
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

  /**
   * Turns the upload of room keys to server-side backup `version` on or off (the machine must have
   * the version enabled: key-backup.ts does both under {@link exclusive}); on, every key not yet
   * backed up goes up in the next rounds.
   */
  setBackingUp(on: boolean): void {
    this.backingUp = on
    this.backupDue = on
  }

  /** Uploads what the machine has not backed up yet, until nothing is left (each call shares the lock). */
  backUpRoomKeys(): Promise<void> {
    return this.lock.run(async () => {
      this.backupDue = true
      await this.runBackup({ strict: true })
      await this.store.persist()
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
      // Write-ahead: the one-time keys an upload publishes (and any Olm ratchet a request
      // carries) are on disk before a server can hand them out. A journal record makes it cheap.
      await this.store.persist()
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
    // Never strict: a backup that fails must not fail the send or sync that came first.
    await this.runBackup()
  }

  /** Backup rounds (the machine hands out at most a batch of keys each) while keys wait to go up. */
  private async runBackup(options: { readonly strict?: boolean } = {}): Promise<void> {
    if (!this.backingUp || !this.backupDue || this.closed) return
    this.backupDue = false
    for (let round = 0; round < 64; round++) {
      const request = await this.machine.backupRoomKeys()
      if (request === undefined || request === null) return
      try {
        await this.send(request)
        this.keysBackedUp += countBackedUp(request.body)
      } catch (e) {
        this.backupDue = true
        if (isWrongBackupVersion(e)) {
          // Another client replaced the backup: stop encrypting keys to a key nobody may have.
          this.backingUp = false
          await this.machine.disableBackup()
        }
        if (options.strict === true) throw e
        this.options.onError?.(e)
        return
      } finally {
        await this.store.persist()
      }
    }
    this.backupDue = true
  }

  private send(r: OutgoingRequest): Promise<void> {
    return sendOutgoingRequest(this.options.http, this.machine, r)
  }
}
