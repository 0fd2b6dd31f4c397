import type { Effect } from "effect"
import { join } from "node:path"
import type { Dispatcher } from "undici"
import { HomeserverPortTypeId } from "@widgethost/core"
import type { HomeserverError, HomeserverPort, HomeserverRequest, HomeserverUpdate } from "@widgethost/core"
import { E2ee, type ToDeviceUndecryptable, type UndecryptableReport } from "./crypto.ts"
import { mediaCalls } from "./media-calls.ts"
import { delayedEventsCalls } from "./delayed-events.ts"
import { accountCalls, roomAccountDataReader, tryPromise } from "./account-calls.ts"
import { openIdTokens } from "./openid-token.ts"
import { relationsReader } from "./relations-read.ts"
import { DecryptingTimeline, type HoldOptions, type TimelineStats } from "./decrypting-timeline.ts"
import { type Clock, realClock } from "@widgethost/core"
import { MatrixHttp, type RetryPolicy, type Session } from "./matrix-http.ts"
import { recentFrom } from "./recent-event-ids.ts"
import { RoomDirectory } from "./room-directory.ts"
import { roomReads } from "./room-reads.ts"
import { roomWrites } from "./room-writes.ts"
import { establishSession, fileExists } from "./session-establish.ts"
import { SyncLoop } from "./sync-loop.ts"
import type { SyncHealth } from "./sync-health.ts"
import type { OnLoadProgress } from "./load-progress.ts"
import { initialSyncLoop } from "./sync-loop-state.ts"
import { RECENT_KEPT, readSyncState } from "./sync-state-file.ts"

/**
 * The {@link HomeserverPort} over the Matrix client-server API: a `/sync` long-poll loop that
 * decrypts and hands each event to subscribers once, in timeline order per room; sends that
 * encrypt into encrypted rooms; reads that decrypt before they filter.
 *
 * Durability (all under `dataDir`):
 * - `session.json`: user, device and access token, so a restart is the same device;
 * - `crypto.v8` and `crypto.v8.journal`: the OlmMachine's store, a snapshot and the writes since
 *   (see `IdbSnapshotStore` in crypto-store.ts);
 * - `sync.json`: the `since` token with the events still held for a room key, the recent event
 *   ids and the encrypted rooms (sync-state-file.ts). Each batch's token is written (atomically,
 *   after the crypto store) while the next /sync is already on the wire, and batches go on being
 *   handed to subscribers while at most `sync.maxUnsavedBatches` (default 4) of them wait for
 *   their token to reach the disk; so a restart resumes after the last batch saved: nothing is
 *   lost, a clean stop saves everything (exactly once across it), and a crash repeats at most
 *   those unsaved batches (at-least-once there; the recent-id filter drops what it still
 *   remembers). See sync-loop-machine.ts. With it, per room, the position: the last event handed to subscribers
 *   in timeline order (or, for the history before the first sync, the newest event passed over).
 *   Saved with `since`, it splits a room's timeline exactly: what follows it is (re)delivered to
 *   subscribers after a restart.
 *
 * Sync errors never stop the loop (except an invalid token): it retries with exponential backoff
 * and jitter, so it rides out homeserver restarts. The loop's policy is the pure machine of
 * sync-loop-machine.ts; sync-loop.ts carries out its effects. Models: matrix-org/matrix-rust-sdk
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
    /** Events a `limited` gap's back-fill from `/messages` may take in per room before it gives up the older rest (default 1000). */
    readonly maxGapEvents?: number
    /** Events asked for per `/messages` page of a back-fill (default 250). */
    readonly gapPageSize?: number
    /** A batch's back-fill still going this long gives up what it has not found and hands the batch over (default 15 s; `Infinity`: no deadline). */
    readonly gapDeadlineMs?: number
    /** @deprecated The budget is in events now: `maxGapEvents`. When given alone, it allows this many pages of `gapPageSize`. */
    readonly maxGapPages?: number
    /**
     * Batches handed to subscribers before their token is on disk (default 4): delivery waits for
     * the fsyncs only when this many came within one save; a crash repeats at most this many
     * (1: wait for each save, a crash repeats at most one batch). See sync-loop-machine.ts.
     */
    readonly maxUnsavedBatches?: number
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
  /** How far the long work is: the crypto store's load, the first sync (load-progress.ts). */
  readonly onProgress?: OnLoadProgress
}

export interface HomeserverStats extends TimelineStats {
  /** Room events waiting (an undecryptable one and those queued behind it). */
  readonly held: number
  readonly syncs: number
  readonly syncErrors: number
  readonly toDevice: number
  /** Duplicates the recent-id filter dropped. */
  readonly duplicatesDropped: number
  /** `limited` timelines whose gap could not be closed within `maxGapEvents` or `gapDeadlineMs`, or whose back-fill failed. */
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
  /** The `/sync` connection's health: sync lag, backoff and retries, errors by kind (sync-health.ts). */
  readonly syncHealth: () => SyncHealth
  /**
   * Per room, the last event handed to subscribers in timeline order (events decrypted late, out
   * of order, do not move it), or the newest of the history before the first sync: everything
   * after it reaches subscribers from now on. Persisted across restarts. A copy.
   */
  readonly roomPositions: () => ReadonlyMap<string, string>
  readonly e2ee: E2ee
  readonly http: MatrixHttp
}

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
  const gapPageSize = Math.max(1, options.sync?.gapPageSize ?? 250)
  const gapDeadlineMs = options.sync?.gapDeadlineMs ?? 15_000
  const syncCfg = {
    timeoutMs: options.sync?.timeoutMs ?? 30_000,
    timelineLimit: options.sync?.timelineLimit ?? 50,
    backoffBaseMs: options.sync?.backoffBaseMs ?? 500,
    backoffMaxMs: options.sync?.backoffMaxMs ?? 30_000,
    deliverInitialTimeline: options.sync?.deliverInitialTimeline ?? false,
    maxGapEvents: Math.max(1, options.sync?.maxGapEvents ?? (options.sync?.maxGapPages === undefined ? 1000 : options.sync.maxGapPages * gapPageSize)),
    gapPageSize,
    ...(Number.isFinite(gapDeadlineMs) ? { gapDeadlineMs } : {}),
    maxUnsavedBatches: Math.max(1, options.sync?.maxUnsavedBatches ?? 4)
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
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      onError
    })
  } catch (e) {
    await http.close()
    throw e
  }
  // Publish device and one-time keys now, so others can encrypt to us before our first sync.
  await e2ee.processOutgoingRequests().catch(onError)

  const syncFile = file("sync.json")
  const saved = syncFile === undefined ? undefined : await readSyncState(syncFile)
  const rooms = new RoomDirectory(http, session.userId, saved?.encrypted)
  const positions = new Map<string, string>(Object.entries(saved?.positions ?? {}))

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
  // The loop needs the timeline, and the timeline tells the loop of each delivery (never before
  // the loop exists: it delivers only what is pushed or restored through the loop).
  const timeline = new DecryptingTimeline(
    e2ee,
    (event, late) => {
      if (!late) positions.set(event.room_id, event.event_id)
      loop.delivered()
      emit({ _tag: "RoomEvent", event })
    },
    { clock, ...options.hold, ...(options.onUndecryptable === undefined ? {} : { onUndecryptable: options.onUndecryptable }) }
  )
  const loop = new SyncLoop(
    initialSyncLoop({ since: saved?.since, recent: recentFrom(saved?.recent ?? [], RECENT_KEPT), lastSeen: new Map(Object.entries(saved?.lastSeen ?? {})) }),
    syncCfg,
    { http, e2ee, timeline, rooms, positions, syncFile, clock, random, emit, onError, ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }) }
  )
  let started = false
  let stopped = false

  const { sendEvent, redact, sendToDevice } = roomWrites(http, e2ee, rooms, delayedEvents)
  const { readEvents, readState } = roomReads(http, e2ee, readCfg)
  const { turnServers, rtcTransports, rtcLivekit, userDirectorySearch, joinedRooms } = accountCalls(http)
  const updateDelayedEvent = (request: Extract<HomeserverRequest, { _tag: "UpdateDelayedEvent" }>): Effect.Effect<void, HomeserverError> =>
    tryPromise("update delayed event", (signal) => delayedEvents.update(request, signal))
  const readRelations = relationsReader({ http, e2ee, roomEncryption: (roomId, signal) => rooms.encryption(roomId, signal) })
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
      // Held events of the last run are re-adopted once, on the first start.
      loop.start(started ? undefined : saved?.timeline)
      started = true
    },
    stop: async () => {
      if (stopped) return
      stopped = true
      await loop.stop()
      timeline.close()
      await e2ee.close()
      await http.close()
    },
    nextSync: () => loop.nextSync(),
    stats: () => ({ ...timeline.stats, ...loop.counters, held: timeline.waiting }),
    syncHealth: () => loop.health(),
    roomPositions: () => new Map(positions)
  }
  return port
}
