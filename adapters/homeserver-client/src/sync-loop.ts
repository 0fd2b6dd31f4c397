import type { HomeserverUpdate } from "@widgethost/core"
import type { E2ee } from "./crypto.ts"
import type { DecryptingTimeline, TimelineState } from "./decrypting-timeline.ts"
import { eventsOf, isObject, stringsOf } from "./json-shapes.ts"
import { type Clock, sleep } from "@widgethost/core"
import { type MatrixHttp, path } from "./matrix-http.ts"
import { newestRecent } from "./recent-event-ids.ts"
import type { RoomDirectory } from "./room-directory.ts"
import { isUnknownToken } from "./session-establish.ts"
import type { SyncLoopEffect, SyncLoopEvent } from "./sync-loop-events.ts"
import { stepSyncLoop } from "./sync-loop-machine.ts"
import type { SyncCounters, SyncLoopConfig, SyncLoopState } from "./sync-loop-state.ts"
import { RECENT_SAVED, type SyncStateFile, writeSyncState } from "./sync-state-file.ts"
import type { OnLoadProgress } from "./load-progress.ts"
import { newestTimestamp, type SyncErrorKind, type SyncHealth, SyncHealthMeter, syncErrorKind } from "./sync-health.ts"

/**
 * The I/O shell around {@link stepSyncLoop}: it feeds the machine each outcome as an event and
 * carries out its effects (the /sync long-poll, gap pages, taking a batch in through the crypto
 * machine and the decrypting timeline, saving `sync.json`, sleeping), and decides nothing itself.
 * Effects that wait on the network, the disk or the clock run concurrently and report back; the
 * machine allows at most one of each kind (one sync, one save, one batch) at a time.
 */

export interface SyncLoopOptions extends SyncLoopConfig {
  /** Timeline events per room per sync (the /sync filter). */
  readonly timelineLimit: number
}

export interface SyncLoopDeps {
  readonly http: MatrixHttp
  readonly e2ee: E2ee
  readonly timeline: DecryptingTimeline
  readonly rooms: RoomDirectory
  /** Per room, the last event handed to subscribers in timeline order. */
  readonly positions: Map<string, string>
  readonly syncFile: string | undefined
  readonly clock: Clock
  readonly random: () => number
  readonly emit: (update: HomeserverUpdate) => void
  readonly onError: (error: unknown) => void
  /** How far the first sync is (waiting for the homeserver, then its rooms taken in), for a progress line. */
  readonly onProgress?: OnLoadProgress
}

export class SyncLoop {
  private state: SyncLoopState
  private abort = new AbortController()
  /** The gap walk in progress: its deadline timer and pages; aborted when the walk ends. */
  private gapAbort = new AbortController()
  private waiters: Array<() => void> = []
  private stopped: Promise<void> | undefined
  private resolveStopped: () => void = () => {}
  private dirtyQueued = false
  /** Events the timeline handed over, ever: a batch during which it moved is not `unchanged`. */
  private deliveries = 0
  private toDevice = 0
  private readonly meter: SyncHealthMeter
  /** The /sync filter, the same text every time (the homeserver may cache what it reads as). */
  private readonly filter: string

  constructor(
    initial: SyncLoopState,
    private readonly options: SyncLoopOptions,
    private readonly deps: SyncLoopDeps
  ) {
    this.state = initial
    this.meter = new SyncHealthMeter(() => deps.clock.now())
    this.filter = JSON.stringify({ room: { timeline: { limit: options.timelineLimit } } })
  }

  /**
   * Starts the loop; `held` (the events the last run still held for a key) is re-adopted first,
   * as their keys may be in the store by now: what decrypts is delivered, and so saved.
   */
  start(held?: TimelineState): void {
    if (held === undefined) return this.dispatch({ _tag: "Start" })
    void this.deps.timeline
      .restore(held)
      .catch(this.deps.onError)
      .then(() => this.dispatch({ _tag: "Start" }))
  }

  /** Stops after the batch in hand, saves, and resolves when the last save is done. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      this.resolveStopped = resolve
      // The last save reads the held events as they are (see `snapshot`): what the timeline is
      // still working on is settled first, so a clean stop repeats nothing.
      void this.deps.timeline
        .idle()
        .catch(() => undefined)
        .then(() => this.dispatch({ _tag: "Stop" }))
    })
    return this.stopped.then(() => {
      for (const w of this.waiters.splice(0)) w()
    })
  }

  /** Resolves when the next batch has been handed to subscribers and saved. */
  nextSync(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  get counters(): SyncCounters & { readonly toDevice: number } {
    return { ...this.state.counters, toDevice: this.toDevice }
  }

  /** The connection's health (sync-health.ts); `httpRetries` from the HTTP client's counters. */
  health(): SyncHealth {
    const { phase, failures, sync } = this.state
    return this.meter.snapshot({ phase, failures, sleeping: sync._tag === "sleeping" }, this.deps.http.stats.retries)
  }

  /** Counts a failure by kind for {@link health}, then passes it on. */
  private failed(kind: SyncErrorKind, error: unknown): void {
    this.meter.failed(kind, error)
    this.deps.onError(error)
  }

  /**
   * The decrypting timeline handed an event over. Within a batch the batch's own save covers it;
   * outside one (a late key, the hold timer, restored held events) it must be saved too, or a
   * restart would deliver it again: one `Dirty` per turn, however many events.
   */
  delivered(): void {
    this.deliveries += 1
    if (this.state.batch !== undefined || this.dirtyQueued) return
    this.dirtyQueued = true
    queueMicrotask(() => {
      this.dirtyQueued = false
      this.dispatch({ _tag: "Dirty" })
    })
  }

  private dispatch(event: SyncLoopEvent): void {
    const step = stepSyncLoop(this.state, event, this.options)
    this.state = step.state
    for (const effect of step.effects) this.perform(effect)
  }

  private report(run: () => Promise<SyncLoopEvent>): void {
    void run().then((event) => this.dispatch(event))
  }

  private perform(effect: SyncLoopEffect): void {
    const { http, clock } = this.deps
    switch (effect._tag) {
      case "RequestSync": {
        const signal = this.abort.signal
        this.meter.requesting()
        if (effect.since === undefined) this.deps.onProgress?.({ task: "first-sync", step: "waiting for the homeserver", done: 0, total: 0, unit: "", finished: false })
        return this.report(() =>
          http
            .request<unknown>({
              method: "GET",
              path: "/_matrix/client/v3/sync",
              query: { since: effect.since, timeout: effect.timeoutMs, filter: this.filter },
              timeoutMs: effect.timeoutMs + 30_000,
              signal
            })
            .then(
              (body): SyncLoopEvent => {
                this.meter.syncSucceeded()
                return { _tag: "SyncSucceeded", body }
              },
              (e: unknown): SyncLoopEvent => {
                if (signal.aborted) return { _tag: "SyncFailed", reason: "aborted", jitter: 0 }
                this.failed(syncErrorKind(e), e)
                return { _tag: "SyncFailed", reason: isUnknownToken(e) ? "unknown-token" : "other", jitter: this.deps.random() }
              }
            )
        )
      }
      case "CancelSync":
        this.abort.abort()
        this.abort = new AbortController()
        return this.endGapWalk()
      case "FetchGapPage": {
        const { walk, roomId, from, limit } = effect
        const signal = this.gapAbort.signal
        return this.report(() =>
          http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/messages`, query: { dir: "b", from, limit }, signal }).then(
            (res): SyncLoopEvent => ({
              _tag: "GapPage",
              walk,
              roomId,
              chunk: Array.isArray(res["chunk"]) ? res["chunk"].filter(isObject) : [],
              end: typeof res["end"] === "string" ? res["end"] : undefined
            }),
            (e: unknown): SyncLoopEvent => {
              // Aborted because its walk is over: not a failure, and the machine ignores the answer.
              if (!signal.aborted) this.failed("gap-fill", e)
              return { _tag: "GapFailed", walk, roomId }
            }
          )
        )
      }
      case "ArmGapDeadline": {
        const { walk, ms } = effect
        return void sleep(clock, ms, this.gapAbort.signal).then(
          () => this.dispatch({ _tag: "GapDeadline", walk }),
          () => undefined
        )
      }
      case "EndGapWalk":
        return this.endGapWalk()
      case "DeliverBatch":
        return this.report(() => this.deliverBatch(effect))
      case "Save": {
        // What the shell keeps is read now, while no batch is in hand (the machine issues a save
        // only then): it belongs to `effect.since`. A later batch may be taken in during the
        // fsyncs, and what it changes belongs to the next save.
        const snapshot = this.snapshot(effect)
        return this.report(() =>
          this.save(snapshot).then(
            (): SyncLoopEvent => ({ _tag: "SaveDone" }),
            (e: unknown): SyncLoopEvent => {
              this.failed("save", e)
              return { _tag: "SaveFailed" }
            }
          )
        )
      }
      case "Sleep":
        this.meter.backingOff(effect.ms)
        return this.report(() => sleep(clock, effect.ms, this.abort.signal).then(
          (): SyncLoopEvent => ({ _tag: "TimerFired" }),
          (): SyncLoopEvent => ({ _tag: "TimerFired" })
        ))
      case "Synced":
        for (const w of this.waiters.splice(0)) w()
        return
      case "Stopped":
        return this.resolveStopped()
    }
  }

  /** Clears the walk's deadline timer and aborts its pages still on the wire. */
  private endGapWalk(): void {
    this.gapAbort.abort()
    this.gapAbort = new AbortController()
  }

  /** The device part first (its room keys decrypt this batch's events), then each room in order. */
  private async deliverBatch(effect: Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>): Promise<SyncLoopEvent> {
    const { e2ee, timeline, rooms, positions, emit } = this.deps
    const res = effect.body
    let roomsDone = 0
    // The first batch (no token yet) is the big one: a whole account's rooms.
    const first = this.state.since === undefined
    const progress = first ? this.deps.onProgress : undefined
    const total = effect.rooms.length
    progress?.({ task: "first-sync", step: "taking in rooms", done: 0, total, unit: "rooms", finished: false })
    try {
      const deviceLists = isObject(res["device_lists"]) ? res["device_lists"] : {}
      const counts = isObject(res["device_one_time_keys_count"]) ? res["device_one_time_keys_count"] : {}
      const fallback = res["device_unused_fallback_key_types"] ?? res["org.matrix.msc2732.device_unused_fallback_key_types"]
      const skipped = e2ee.syncsSkipped
      const deliveries = this.deliveries
      const toDevice = await e2ee.receiveSync({
        toDevice: eventsOf(res["to_device"]),
        changed: stringsOf(deviceLists["changed"]),
        left: stringsOf(deviceLists["left"]),
        oneTimeKeyCounts: Object.fromEntries(Object.entries(counts).filter((kv): kv is [string, number] => typeof kv[1] === "number")),
        ...(Array.isArray(fallback) ? { unusedFallbackKeyTypes: stringsOf(fallback) } : {})
      })
      for (const event of toDevice) {
        this.toDevice += 1
        emit({ _tag: "ToDevice", event })
      }
      for (const room of effect.rooms) {
        for (const raw of room.state) rooms.note(room.roomId, raw)
        for (const raw of room.timeline) rooms.note(room.roomId, raw)
        await e2ee.trackUsers(rooms.untrackedMembers(room.roomId))
        if (room.passOverTo !== undefined) positions.set(room.roomId, room.passOverTo)
        if (room.fresh.length > 0) await timeline.push(room.roomId, room.fresh)
        roomsDone += 1
        progress?.({ task: "first-sync", step: "taking in rooms", done: roomsDone, total, unit: "rooms", finished: false })
      }
      await timeline.idle()
      progress?.({ task: "first-sync", step: "done", done: total, total, unit: "rooms", finished: true })
      this.meter.delivered(newestTimestamp(effect.rooms.flatMap((room) => room.fresh)))
      const unchanged = e2ee.syncsSkipped > skipped && this.deliveries === deliveries && timeline.waiting === 0
      return { _tag: "BatchDelivered", unchanged }
    } catch (e) {
      // Not saved: the same batch comes again from the same token; the window keeps the rooms
      // already taken in from repeating.
      this.failed("take-in", e)
      return { _tag: "BatchFailed", roomsDone }
    }
  }

  /**
   * `sync.json` as of the save's token. Held events go in as they are now: one the timeline
   * still works on and then delivers outside a batch calls `delivered()`, whose save follows.
   */
  private snapshot(effect: Extract<SyncLoopEffect, { _tag: "Save" }>): SyncStateFile | undefined {
    const { timeline, syncFile, rooms, positions } = this.deps
    if (syncFile === undefined) return undefined
    return {
      version: 1,
      ...(effect.since === undefined ? {} : { since: effect.since }),
      timeline: timeline.state(),
      recent: newestRecent(effect.recent, RECENT_SAVED),
      encrypted: Object.fromEntries(rooms.encrypted),
      lastSeen: Object.fromEntries(effect.lastSeen),
      positions: Object.fromEntries(positions)
    }
  }

  /** The crypto store first, then `sync.json`: a token on disk never outruns the keys it needs. */
  private async save(state: SyncStateFile | undefined): Promise<void> {
    const { e2ee, syncFile } = this.deps
    await e2ee.persist()
    if (syncFile === undefined || state === undefined) return
    await writeSyncState(syncFile, state)
  }
}
