import { Effect } from "effect"
import { access, readFile } from "node:fs/promises"
import { join } from "node:path"
import type { Dispatcher } from "undici"
import { HomeserverError, HomeserverPortTypeId, matchesReadEventsQuery, pageCursors } from "@widgethost/core"
import type { HomeserverPort, HomeserverRequest, HomeserverUpdate, ReadEventsPage, ReadEventsQuery, SendEventResult } from "@widgethost/core"
import type { RoomEvent } from "@widgethost/core"
import { E2ee, type RawEvent, type ToDeviceUndecryptable, type UndecryptableReport } from "./crypto.ts"
import { writeFileDurably } from "./crypto-store.ts"
import { mediaCalls } from "./media-calls.ts"
import { delayedEventsCalls, noDelayedEvents } from "./delayed-events.ts"
import { accountCalls, roomAccountDataReader, tryPromise } from "./account-calls.ts"
import { openIdTokens } from "./openid-token.ts"
import { relationsReader } from "./relations-read.ts"
import { DecryptingTimeline, type HoldOptions, type TimelineState, type TimelineStats } from "./decrypting-timeline.ts"
import { type Clock, realClock, setTimer, sleep } from "@widgethost/core"
import { MatrixHttp, type RetryPolicy, type Session, login, path } from "./matrix-http.ts"

/**
 * The {@link HomeserverPort} over the Matrix client-server API: a `/sync` long-poll loop that
 * decrypts and hands each event to subscribers once, in timeline order per room; sends that
 * encrypt into encrypted rooms; reads that decrypt before they filter.
 *
 * Durability (all under `dataDir`):
 * - `session.json`: user, device and access token, so a restart is the same device;
 * - `crypto.v8`: the OlmMachine's store (see `IdbSnapshotStore` in crypto.ts);
 * - `sync.json`: the `since` token with the events still held for a room key, the recent event
 *   ids and the encrypted rooms. It is written (atomically) only after the batch it follows was
 *   handed to subscribers and the crypto store was saved, so a restart resumes after the last
 *   batch delivered: nothing is lost; a crash between delivery and write repeats at most that
 *   one batch (at-least-once there; the recent-id filter drops what it still remembers). With it,
 *   per room, the position: the last event handed to subscribers in timeline order (or, for the
 *   history before the first sync, the newest event passed over). Saved with `since`, it splits
 *   a room's timeline exactly: what follows it is (re)delivered to subscribers after a restart.
 *
 * Sync errors never stop the loop (except an invalid token): it retries with exponential backoff
 * and jitter, so it rides out homeserver restarts. Models: matrix-org/matrix-rust-sdk
 * `crates/matrix-sdk/src/sync.rs`, matrix-js-sdk `src/sync.ts`.
 */

export type HomeserverAuth =
  | { readonly accessToken: string; readonly deviceId: string; readonly userId?: string }
  | { readonly user: string; readonly password: string; readonly deviceId?: string }

export interface ConnectOptions {
  readonly baseUrl: string
  readonly auth: HomeserverAuth
  /** Where session, crypto store and sync position live; without it nothing survives a restart. */
  readonly dataDir?: string
  /** Encrypts the crypto store's values at rest. */
  readonly storePassphrase?: string
  readonly dispatcher?: Dispatcher
  readonly clock?: Clock
  readonly random?: () => number
  readonly requestTimeoutMs?: number
  readonly retry?: Partial<RetryPolicy>
  readonly sync?: {
    /** Long-poll `timeout` (default 30 s). */
    readonly timeoutMs?: number
    /** Timeline events per room per sync (default 50); a gap beyond it is back-filled. */
    readonly timelineLimit?: number
    /** Backoff of the loop between failed syncs (defaults 500 ms doubling to 30 s). */
    readonly backoffBaseMs?: number
    readonly backoffMaxMs?: number
    /** Deliver the first sync's timelines (old history) too; default false: only what is new. */
    readonly deliverInitialTimeline?: boolean
    /** Pages of `/messages` to close a `limited` gap (default 5). */
    readonly maxGapPages?: number
  }
  readonly hold?: HoldOptions
  readonly readEvents?: {
    /** `/messages` pages one `readEvents` may fetch (default 10). */
    readonly maxServerPages?: number
    /** Events per `/messages` page (default 50). */
    readonly pageSize?: number
  }
  /** An event that did not (yet) decrypt: reported, never delivered as ciphertext. */
  readonly onUndecryptable?: (report: UndecryptableReport) => void
  readonly onToDeviceUndecryptable?: (report: ToDeviceUndecryptable) => void
  /** Each failure the background loops survive (sync retries, key uploads). */
  readonly onError?: (error: unknown) => void
}

export interface HomeserverStats extends TimelineStats {
  /** Room events waiting (an undecryptable one and those queued behind it). */
  readonly held: number
  readonly syncs: number
  readonly syncErrors: number
  readonly toDevice: number
  /** Duplicates the recent-id filter dropped. */
  readonly duplicatesDropped: number
  /** `limited` timelines whose gap could not be closed within `maxGapPages`. */
  readonly gapsLeft: number
}

export interface MatrixHomeserver extends HomeserverPort {
  /** Starts the sync loop (held events from the last run are retried first). */
  readonly start: () => void
  /** Stops the loop after the batch in hand, saves everything, closes the crypto machine and sockets. */
  readonly stop: () => Promise<void>
  /** Resolves when the next sync batch has been handed to subscribers and saved. */
  readonly nextSync: () => Promise<void>
  readonly stats: () => HomeserverStats
  /**
   * Per room, the last event handed to subscribers in timeline order (events decrypted late, out
   * of order, do not move it), or the newest of the history before the first sync: everything
   * after it reaches subscribers from now on. Persisted across restarts. A copy.
   */
  readonly roomPositions: () => ReadonlyMap<string, string>
  readonly e2ee: E2ee
  readonly http: MatrixHttp
}

interface SavedSession extends Session {
  readonly baseUrl: string
}

interface SyncStateFile {
  readonly version: 1
  readonly since?: string
  readonly timeline: TimelineState
  readonly recent: ReadonlyArray<string>
  readonly encrypted: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /** Per room, the last timeline event taken in: where a `limited` gap fill stops. */
  readonly lastSeen?: Readonly<Record<string, string>>
  /** Per room, the last event handed to subscribers in timeline order (see `roomPositions`). */
  readonly positions?: Readonly<Record<string, string>>
}

const RECENT_KEPT = 2000
const RECENT_SAVED = 1000

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const arrayOf = (v: unknown): ReadonlyArray<unknown> => (Array.isArray(v) ? v : [])
const eventsOf = (section: unknown): ReadonlyArray<RawEvent> => (isObject(section) ? arrayOf(section["events"]).filter(isObject) : [])
const stringsOf = (v: unknown): ReadonlyArray<string> => arrayOf(v).filter((x): x is string => typeof x === "string")

const readJson = async <T>(file: string): Promise<T | undefined> => {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

const isUnknownToken = (e: unknown) => e instanceof HomeserverError && e.http?.status === 401

// Our tokens are base64url JSON in both encodings, so tokens issued before this change still decode.
const cursors = pageCursors("whp1_")
const encodeCursor = cursors.encode
const decodeCursor = cursors.decode

/**
 * Signs in (or resumes the saved session), opens the crypto store, uploads keys and returns the
 * port; call `start()` to begin syncing.
 *
 * @example
 * const hs = await connectHomeserver({ baseUrl, auth: { user: "alice", password }, dataDir: "data/alice" })
 * hs.subscribe((update) => console.log(update))
 * hs.start()
 */
export const connectHomeserver = async (options: ConnectOptions): Promise<MatrixHomeserver> => {
  const clock = options.clock ?? realClock
  const random = options.random ?? Math.random
  const http = new MatrixHttp({
    baseUrl: options.baseUrl,
    clock,
    random,
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    ...(options.retry === undefined ? {} : { retry: options.retry })
  })
  const delayedEvents = delayedEventsCalls(http)
  const dataDir = options.dataDir
  const file = (name: string) => (dataDir === undefined ? undefined : join(dataDir, name))
  const syncCfg = {
    timeoutMs: options.sync?.timeoutMs ?? 30_000,
    timelineLimit: options.sync?.timelineLimit ?? 50,
    backoffBaseMs: options.sync?.backoffBaseMs ?? 500,
    backoffMaxMs: options.sync?.backoffMaxMs ?? 30_000,
    deliverInitialTimeline: options.sync?.deliverInitialTimeline ?? false,
    maxGapPages: options.sync?.maxGapPages ?? 5
  }
  const readCfg = { maxServerPages: options.readEvents?.maxServerPages ?? 10, pageSize: options.readEvents?.pageSize ?? 50 }
  const onError = (e: unknown) => options.onError?.(e)

  let session: Session
  try {
    // A saved device whose crypto store is gone (a disk failure) has lost its keys: its id must
    // not come back with new ones (peers would see a known device change keys), so log in anew.
    const storeFile = file("crypto.v8")
    const storeLost = storeFile !== undefined && !(await fileExists(storeFile))
    session = await establishSession(http, options, file("session.json"), storeLost)
  } catch (e) {
    await http.close()
    throw e
  }
  http.accessToken = session.accessToken

  const cryptoFile = file("crypto.v8")
  let e2ee: E2ee
  try {
    e2ee = await E2ee.open({
      userId: session.userId,
      deviceId: session.deviceId,
      http,
      ...(cryptoFile === undefined ? {} : { storeFile: cryptoFile }),
      ...(options.storePassphrase === undefined ? {} : { storePassphrase: options.storePassphrase }),
      ...(options.onToDeviceUndecryptable === undefined ? {} : { onToDeviceUndecryptable: options.onToDeviceUndecryptable }),
      onError
    })
  } catch (e) {
    await http.close()
    throw e
  }
  // Publish device and one-time keys now, so others can encrypt to us before our first sync.
  await e2ee.processOutgoingRequests().catch(onError)

  const syncFile = file("sync.json")
  const saved = syncFile === undefined ? undefined : await readJson<SyncStateFile>(syncFile)
  let since = saved?.since
  const recent = new Set<string>(saved?.recent ?? [])
  const encrypted = new Map<string, Readonly<Record<string, unknown>>>(Object.entries(saved?.encrypted ?? {}))
  const lastSeen = new Map<string, string>(Object.entries(saved?.lastSeen ?? {}))
  const positions = new Map<string, string>(Object.entries(saved?.positions ?? {}))
  /** Rooms known not to be encrypted (memory only: re-asked after a restart). */
  const clearRooms = new Set<string>()
  /** Joined and invited members per room, when known (from sync, or fetched on first send). */
  const members = new Map<string, Set<string>>()
  /** Users already handed to `updateTrackedUsers` in this run. */
  const tracked = new Set<string>()

  const listeners = new Set<(update: HomeserverUpdate) => void>()
  const emit = (update: HomeserverUpdate) => {
    for (const l of listeners) {
      try {
        l(update)
      } catch (e) {
        onError(e)
      }
    }
  }
  const counters = { syncs: 0, syncErrors: 0, toDevice: 0, duplicatesDropped: 0, gapsLeft: 0 }
  let dirtyAfterBatch = false
  const timeline = new DecryptingTimeline(
    e2ee,
    (event, late) => {
      dirtyAfterBatch = true
      if (!late) positions.set(event.room_id, event.event_id)
      emit({ _tag: "RoomEvent", event })
    },
    { clock, ...options.hold, ...(options.onUndecryptable === undefined ? {} : { onUndecryptable: options.onUndecryptable }) }
  )

  const remember = (eventId: string) => {
    recent.delete(eventId)
    recent.add(eventId)
    if (recent.size > RECENT_KEPT) for (const id of recent) if (recent.size > RECENT_KEPT) recent.delete(id)
  }

  // One writer for sync.json: batches and timer-driven releases of held events.
  let stateChain: Promise<unknown> = Promise.resolve()
  const underStateLock = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = stateChain.then(fn, fn)
    stateChain = next.catch(() => undefined)
    return next
  }
  const saveState = async () => {
    await timeline.idle()
    await e2ee.persist()
    if (syncFile === undefined) return
    const state: SyncStateFile = {
      version: 1,
      ...(since === undefined ? {} : { since }),
      timeline: timeline.state(),
      recent: Array.from(recent).slice(-RECENT_SAVED),
      encrypted: Object.fromEntries(encrypted),
      lastSeen: Object.fromEntries(lastSeen),
      positions: Object.fromEntries(positions)
    }
    await writeFileDurably(syncFile, JSON.stringify(state))
    dirtyAfterBatch = false
  }

  const noteRoomEvent = (roomId: string, raw: RawEvent) => {
    const type = raw["type"]
    const content = raw["content"]
    if (typeof raw["state_key"] !== "string" || !isObject(content)) return
    if (type === "m.room.encryption" && typeof content["algorithm"] === "string") {
      encrypted.set(roomId, content)
      clearRooms.delete(roomId)
    } else if (type === "m.room.member") {
      const set = members.get(roomId) ?? new Set<string>()
      members.set(roomId, set)
      const m = content["membership"]
      if (m === "join" || m === "invite") set.add(raw["state_key"])
      else set.delete(raw["state_key"])
    }
  }

  /**
   * Walks back from `prevBatch` to the last event taken in from this room; returns the missed
   * ones, oldest first. Past `maxGapPages` the older part of the gap is given up (counted).
   */
  const fillGap = async (roomId: string, prevBatch: string, last: string): Promise<Array<RawEvent>> => {
    const missed: Array<RawEvent> = []
    let from: string | undefined = prevBatch
    for (let page = 0; page < syncCfg.maxGapPages && from !== undefined; page++) {
      const res: Record<string, unknown> = await http.request<Record<string, unknown>>({
        method: "GET",
        path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
        query: { dir: "b", from, limit: 100 }
      })
      const chunk = arrayOf(res["chunk"]).filter(isObject)
      for (const raw of chunk) {
        if (raw["event_id"] === last || (typeof raw["event_id"] === "string" && recent.has(raw["event_id"]))) return missed.reverse()
        missed.push(raw)
      }
      from = chunk.length === 0 || typeof res["end"] !== "string" ? undefined : res["end"]
      if (from === undefined) return missed.reverse()
    }
    counters.gapsLeft += 1
    return missed.reverse()
  }

  const processRoom = async (roomId: string, room: Record<string, unknown>, first: boolean, joined: boolean) => {
    for (const raw of eventsOf(room["state"])) noteRoomEvent(roomId, raw)
    const timelineSection = isObject(room["timeline"]) ? room["timeline"] : {}
    let events = eventsOf(timelineSection)
    for (const raw of events) noteRoomEvent(roomId, raw)
    if (encrypted.has(roomId)) {
      const untracked = Array.from(members.get(roomId) ?? []).filter((u) => !tracked.has(u))
      for (const u of untracked) tracked.add(u)
      await e2ee.trackUsers(untracked)
    }
    const newest = events.findLast((raw) => typeof raw["event_id"] === "string")?.["event_id"]
    const last = lastSeen.get(roomId)
    if (typeof newest === "string") lastSeen.set(roomId, newest)
    if (first && !syncCfg.deliverInitialTimeline) {
      for (const raw of events) if (typeof raw["event_id"] === "string") remember(raw["event_id"])
      if (typeof newest === "string") positions.set(roomId, newest)
      return
    }
    // A room we never took events from has no gap: what precedes is history, not news.
    if (joined && last !== undefined && timelineSection["limited"] === true && typeof timelineSection["prev_batch"] === "string") {
      try {
        events = [...(await fillGap(roomId, timelineSection["prev_batch"], last)), ...events]
      } catch (e) {
        counters.gapsLeft += 1
        onError(e)
      }
    }
    const fresh: Array<RawEvent> = []
    for (const raw of events) {
      const id = raw["event_id"]
      if (typeof id !== "string") continue
      if (recent.has(id)) {
        counters.duplicatesDropped += 1
        continue
      }
      remember(id)
      fresh.push(raw)
    }
    if (fresh.length > 0) await timeline.push(roomId, fresh)
  }

  const processBatch = async (res: Record<string, unknown>) => {
    const first = since === undefined
    const deviceLists = isObject(res["device_lists"]) ? res["device_lists"] : {}
    const counts = isObject(res["device_one_time_keys_count"]) ? res["device_one_time_keys_count"] : {}
    const fallback = res["device_unused_fallback_key_types"] ?? res["org.matrix.msc2732.device_unused_fallback_key_types"]
    const toDevice = await e2ee.receiveSync({
      toDevice: eventsOf(res["to_device"]),
      changed: stringsOf(deviceLists["changed"]),
      left: stringsOf(deviceLists["left"]),
      oneTimeKeyCounts: Object.fromEntries(Object.entries(counts).filter((kv): kv is [string, number] => typeof kv[1] === "number")),
      ...(Array.isArray(fallback) ? { unusedFallbackKeyTypes: stringsOf(fallback) } : {})
    })
    for (const event of toDevice) {
      counters.toDevice += 1
      emit({ _tag: "ToDevice", event })
    }
    const rooms = isObject(res["rooms"]) ? res["rooms"] : {}
    for (const [section, joined] of [
      ["join", true],
      ["leave", false]
    ] as const) {
      const byRoom = isObject(rooms[section]) ? rooms[section] : {}
      for (const [roomId, room] of Object.entries(byRoom)) if (isObject(room)) await processRoom(roomId, room, first, joined)
    }
    await timeline.idle()
    if (typeof res["next_batch"] === "string") since = res["next_batch"]
    await saveState()
  }

  let running = false
  let stopped = false
  let loop: Promise<void> | undefined
  let abort = new AbortController()
  let waiters: Array<() => void> = []
  let cancelFlush: (() => void) | undefined

  // Held events released by the hold timer (outside a batch) must be saved too, or a restart
  // would deliver them again: a short debounce folds them into one write.
  const flushSoon = () => {
    if (!dirtyAfterBatch || cancelFlush !== undefined) return
    cancelFlush = setTimer(clock, 50, () => {
      cancelFlush = undefined
      void underStateLock(async () => (dirtyAfterBatch ? saveState() : undefined)).catch(onError)
    })
  }

  const syncLoop = async () => {
    let failures = 0
    // Held events from the last run: their keys may be in the store by now.
    if (saved?.timeline !== undefined) await underStateLock(() => timeline.restore(saved.timeline).then(saveState))
    while (running) {
      let res: Record<string, unknown>
      try {
        res = await http.request<Record<string, unknown>>({
          method: "GET",
          path: "/_matrix/client/v3/sync",
          query: {
            since,
            timeout: since === undefined ? 0 : syncCfg.timeoutMs,
            filter: JSON.stringify({ room: { timeline: { limit: syncCfg.timelineLimit } } })
          },
          timeoutMs: syncCfg.timeoutMs + 30_000,
          signal: abort.signal
        })
      } catch (e) {
        if (!running) break
        counters.syncErrors += 1
        onError(e)
        if (isUnknownToken(e)) {
          running = false
          break
        }
        failures += 1
        const cap = Math.min(syncCfg.backoffMaxMs, syncCfg.backoffBaseMs * 2 ** Math.min(failures - 1, 30))
        await sleep(clock, Math.round(cap / 2 + (random() * cap) / 2), abort.signal).catch(() => undefined)
        continue
      }
      failures = 0
      try {
        await underStateLock(() => processBatch(res))
      } catch (e) {
        // Not saved: the same batch comes again from the same `since`; the recent-id filter and
        // the timeline's saved state keep that from repeating what was delivered.
        counters.syncErrors += 1
        onError(e)
        await sleep(clock, syncCfg.backoffBaseMs, abort.signal).catch(() => undefined)
        continue
      }
      counters.syncs += 1
      const done = waiters
      waiters = []
      for (const w of done) w()
    }
  }

  const roomEncryption = async (roomId: string, signal: AbortSignal): Promise<Readonly<Record<string, unknown>> | undefined> => {
    const known = encrypted.get(roomId)
    if (known !== undefined || clearRooms.has(roomId)) return known
    try {
      const content = await http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/state/m.room.encryption/`, signal })
      if (typeof content["algorithm"] === "string") {
        encrypted.set(roomId, content)
        return content
      }
    } catch (e) {
      if (!(e instanceof HomeserverError && e.http?.status === 404)) throw e
    }
    clearRooms.add(roomId)
    return undefined
  }

  const roomMembers = async (roomId: string, signal: AbortSignal): Promise<ReadonlyArray<string>> => {
    const known = members.get(roomId)
    if (known !== undefined && known.has(session.userId)) return Array.from(known)
    const res = await http.request<{ chunk?: unknown }>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/members`, signal })
    const set = new Set<string>()
    for (const raw of arrayOf(res.chunk).filter(isObject)) {
      const content = raw["content"]
      const m = isObject(content) ? content["membership"] : undefined
      if (typeof raw["state_key"] === "string" && (m === "join" || m === "invite")) set.add(raw["state_key"])
    }
    set.add(session.userId)
    members.set(roomId, set)
    return Array.from(set)
  }

  const sendEvent = (request: Extract<HomeserverRequest, { _tag: "SendEvent" }>): Effect.Effect<SendEventResult, HomeserverError> =>
    tryPromise("send event", async (signal) => {
      const delayed = request.delayMs !== undefined || request.parentDelayId !== undefined
      // Refused before anything is encrypted or sent (Synapse 1.67 would ignore the delay and send).
      if (delayed && (await delayedEvents.revision()) === undefined) throw noDelayedEvents()
      let type = request.type
      let content: Readonly<Record<string, unknown>> = request.content
      // State events go in clear: servers must read them to authorise the room.
      const encryption = request.stateKey === undefined ? await roomEncryption(request.roomId, signal) : undefined
      if (encryption !== undefined) {
        const to = await roomMembers(request.roomId, signal)
        content = await e2ee.encryptRoomEvent(request.roomId, to, request.type, request.content, encryption)
        type = "m.room.encrypted"
      }
      // One transaction id for every retry of this send: the homeserver dedupes on it.
      const txnId = http.txnId()
      let res: { event_id?: unknown; delay_id?: unknown }
      if (delayed) {
        res = await delayedEvents.schedule({ ...request, type, content }, txnId, signal)
        // Never a success without its delay id: the widget would believe its event is scheduled.
        if (typeof res.delay_id !== "string") throw new HomeserverError({ message: "The homeserver did not schedule the event (no delay_id in its answer); it may have been sent at once" })
      } else if (request.stateKey !== undefined) {
        res = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${request.roomId}/state/${request.type}/${request.stateKey}`, body: content, signal })
      } else {
        res = await http.request({ method: "PUT", path: path`/_matrix/client/v3/rooms/${request.roomId}/send/${type}/${txnId}`, body: content, signal })
      }
      return {
        roomId: request.roomId,
        ...(typeof res.event_id === "string" ? { eventId: res.event_id } : {}),
        ...(typeof res.delay_id === "string" ? { delayId: res.delay_id } : {})
      }
    })

  const redact = (request: Extract<HomeserverRequest, { _tag: "Redact" }>): Effect.Effect<SendEventResult, HomeserverError> =>
    tryPromise("redact", async (signal) => {
      const res = await http.request<{ event_id?: unknown }>({
        method: "PUT",
        path: path`/_matrix/client/v3/rooms/${request.roomId}/redact/${request.eventId}/${http.txnId()}`,
        body: request.reason === undefined ? {} : { reason: request.reason },
        signal
      })
      return { roomId: request.roomId, ...(typeof res.event_id === "string" ? { eventId: res.event_id } : {}) }
    })

  const readEvents = (q: ReadEventsQuery): Effect.Effect<ReadEventsPage, HomeserverError> =>
    tryPromise("read events", async (signal) => {
      const out: Array<RoomEvent> = []
      // Encrypted events in the stretch read that did not decrypt: the widget is told (never a silent gap).
      let withheld = 0
      const answer = (end?: string): ReadEventsPage => ({ events: out, ...(end === undefined ? {} : { end }), ...(withheld > 0 ? { withheld } : {}) })
      let cursor = decodeCursor(q.from, Math.min(100, Math.max(readCfg.pageSize, q.limit)))
      if (q.limit <= 0) return { events: [] }
      // The server can only filter on the wire type; encrypted events must come too.
      const filter = JSON.stringify({ types: q.type === "m.room.encrypted" ? [q.type] : [q.type, "m.room.encrypted"] })
      for (let page = 0; page < readCfg.maxServerPages; page++) {
        const res = await http.request<Record<string, unknown>>({
          method: "GET",
          path: path`/_matrix/client/v3/rooms/${q.roomId}/messages`,
          query: { dir: q.dir, from: cursor.from, limit: cursor.n, filter },
          signal
        })
        const chunk = arrayOf(res["chunk"]).filter(isObject)
        let start = 0
        if (cursor.after !== undefined) start = chunk.findIndex((e) => e["event_id"] === cursor.after) + 1
        const end = typeof res["end"] === "string" && chunk.length > 0 ? res["end"] : undefined
        for (let i = start; i < chunk.length; i++) {
          const raw = chunk[i] as RawEvent
          const outcome = await e2ee.decryptRoomEvent(q.roomId, raw)
          if (outcome._tag !== "Clear" && outcome._tag !== "Decrypted") {
            if (raw["type"] === "m.room.encrypted") withheld++
            continue
          }
          if (!matchesReadEventsQuery(q, outcome.event)) continue
          out.push(outcome.event)
          if (out.length === q.limit) {
            const more = i + 1 < chunk.length ? encodeCursor({ ...(cursor.from === undefined ? {} : { from: cursor.from }), after: outcome.event.event_id, n: cursor.n }) : end === undefined ? undefined : encodeCursor({ from: end, n: cursor.n })
            return answer(more)
          }
        }
        if (end === undefined) return answer()
        cursor = { from: end, n: cursor.n }
      }
      // Page budget spent: hand back what we have and where to go on.
      return answer(encodeCursor(cursor))
    })

  const readState = (roomId: string, type: string, stateKey?: string): Effect.Effect<ReadonlyArray<RoomEvent>, HomeserverError> =>
    tryPromise("read state", async (signal) => {
      const res = await http.request<unknown>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/state`, signal })
      const out: Array<RoomEvent> = []
      for (const raw of arrayOf(res).filter(isObject)) {
        if (raw["type"] !== type || typeof raw["state_key"] !== "string" || (stateKey !== undefined && raw["state_key"] !== stateKey)) continue
        const outcome = await e2ee.decryptRoomEvent(roomId, raw)
        if (outcome._tag === "Clear" || outcome._tag === "Decrypted") out.push(outcome.event)
      }
      return out
    })

  const sendToDevice = (request: Extract<HomeserverRequest, { _tag: "SendToDevice" }>): Effect.Effect<void, HomeserverError> =>
    tryPromise("send to-device", async (signal) => {
      const txnId = http.txnId()
      if (!request.encrypted) {
        await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/${request.type}/${txnId}`, body: { messages: request.messages }, signal })
        return
      }
      const { messages, unknown } = await e2ee.encryptToDevice(request.type, request.messages)
      // MSC3819: an error anywhere along the send path is the widget's error. Refusing the whole
      // request (nothing sent) leaves the widget free to retry or to drop those devices.
      if (unknown.length > 0) throw new Error(`to-device ${request.type}: no device keys for ${unknown.join(", ")}; nothing was sent`)
      if (Object.keys(messages).length === 0) return
      await http.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/m.room.encrypted/${txnId}`, body: { messages }, signal })
    })

  const { turnServers, rtcTransports, rtcLivekit, userDirectorySearch, joinedRooms } = accountCalls(http)
  const updateDelayedEvent = (request: Extract<HomeserverRequest, { _tag: "UpdateDelayedEvent" }>): Effect.Effect<void, HomeserverError> =>
    tryPromise("update delayed event", (signal) => delayedEvents.update(request, signal))
  const readRelations = relationsReader({ http, e2ee, roomEncryption })
  const readRoomAccountData = roomAccountDataReader(http, session.userId)

  const port: MatrixHomeserver = {
    [HomeserverPortTypeId]: HomeserverPortTypeId,
    userId: session.userId,
    deviceId: session.deviceId,
    e2ee,
    http,
    sendEvent,
    redact,
    readEvents,
    readState,
    readRelations,
    readRoomAccountData,
    sendToDevice,
    turnServers,
    rtcTransports,
    rtcLivekit,
    updateDelayedEvent,
    userDirectorySearch,
    requestOpenIdToken: openIdTokens(http, session.userId),
    joinedRooms,
    ...mediaCalls(http),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    start: () => {
      if (stopped) throw new Error("this homeserver connection was stopped; connect again")
      if (running) return
      running = true
      abort = new AbortController()
      loop = syncLoop().catch(onError)
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      running = false
      abort.abort()
      await loop
      loop = undefined
      cancelFlush?.()
      await underStateLock(saveState).catch(onError)
      timeline.close()
      await e2ee.close()
      await http.close()
      for (const w of waiters.splice(0)) w()
    },
    nextSync: () => new Promise((resolve) => waiters.push(resolve)),
    stats: () => ({ ...timeline.stats, ...counters, held: timeline.waiting }),
    roomPositions: () => new Map(positions)
  }
  // Watch for releases by the hold timer between batches.
  listeners.add(() => flushSoon())
  return port
}

/** Resumes the saved session of the same user and server when it is still valid; else logs in. */
const establishSession = async (http: MatrixHttp, options: ConnectOptions, sessionFile: string | undefined, storeLost = false): Promise<Session> => {
  const auth = options.auth
  if ("accessToken" in auth) {
    http.accessToken = auth.accessToken
    const userId = auth.userId ?? (await http.request<{ user_id: string }>({ method: "GET", path: "/_matrix/client/v3/account/whoami" })).user_id
    return { userId, accessToken: auth.accessToken, deviceId: auth.deviceId }
  }
  const saved = sessionFile === undefined || storeLost ? undefined : await readJson<SavedSession>(sessionFile)
  const sameAccount =
    saved !== undefined &&
    saved.baseUrl === options.baseUrl &&
    (auth.deviceId === undefined || auth.deviceId === saved.deviceId) &&
    (saved.userId === auth.user || saved.userId.slice(1, saved.userId.indexOf(":")) === auth.user)
  if (sameAccount) {
    http.accessToken = saved.accessToken
    try {
      const who = await http.request<{ user_id: string; device_id?: string }>({ method: "GET", path: "/_matrix/client/v3/account/whoami" })
      if (who.user_id === saved.userId && (who.device_id === undefined || who.device_id === saved.deviceId)) return saved
    } catch (e) {
      if (!isUnknownToken(e)) throw e
    }
  }
  // Logging in again with the saved device id keeps the device (and its keys) when the token died.
  const deviceId = auth.deviceId ?? (sameAccount ? saved.deviceId : undefined)
  const session = await login(http, { user: auth.user, password: auth.password, ...(deviceId === undefined ? {} : { deviceId }) })
  if (sessionFile !== undefined) await writeFileDurably(sessionFile, JSON.stringify({ ...session, baseUrl: options.baseUrl } satisfies SavedSession), 0o600)
  return session
}

const fileExists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false
  )
