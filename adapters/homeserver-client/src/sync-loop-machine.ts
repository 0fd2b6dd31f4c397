/**
 * The `/sync` loop's policy as a pure machine: when to long-poll and from which token, which
 * events are new (the recent-id window), when a `limited` timeline needs its gap filled from
 * `/messages` and where that walk stops, how long to back off after a failure, and when and what
 * to save. `stepSyncLoop(state, event, config)` returns the next state with the effects the shell
 * (sync-loop.ts) carries out; the shell owns HTTP, crypto, the decrypting timeline and the disk,
 * and feeds each outcome back as an event. No clock, no randomness (the backoff jitter comes in
 * with the failure), no I/O.
 *
 * Pipelining (#17). A batch's save (`sync.json`, two fsyncs) and the next long-poll run at once:
 * when a batch has been handed to subscribers the machine asks for both. Saves are strictly one at
 * a time and in token order; a save wanted while one is in flight waits, and every such want
 * coalesces into one save of the newest state.
 *
 * Resume guarantee, and why pipelining keeps it. Today's loop writes `since = N` only after batch
 * N was handed over, and asks for batch N+1 only after that write. A crash between handing N over
 * and the write restarts from N-1 and repeats batch N: at most one batch is delivered twice, and
 * nothing is lost (the token on disk never passes an event not yet handed over). Here the rule is
 * the same, stated on the response instead of the request: a response is taken in (processed and
 * delivered) only when the token it was asked from is settled on disk. The next /sync may already
 * be on the wire while batch N's save runs, but its answer waits in `waiting` until that save
 * completes. So at any moment at most one batch has been handed over whose token is not on disk,
 * the token on disk is never ahead of delivery, and a crash repeats at most that one batch, the
 * recent-id window (saved with the token) dropping what it still remembers. What we gain is the
 * long-poll's round trip overlapping the fsyncs. One exception, as today: when a save fails
 * (the disk), the loop goes on rather than stall, and the guarantee holds again from the next
 * save that succeeds.
 *
 * Running ahead of the disk (`maxUnsavedBatches`, #17). Waiting for each save puts its fsyncs
 * (10–25 ms here) into every batch's latency. With `maxUnsavedBatches = k` a response is taken in
 * while fewer than `k` handed-over batches still wait for their token to reach the disk, so
 * delivery waits for a save only when k batches came within one. The rule above is the case
 * k = 1; in general the token on disk is still never ahead of delivery and nothing is lost, and a
 * crash repeats at most the last k batches (what the saved recent-id window does not remember).
 * A clean stop saves everything: across it, each event is delivered exactly once.
 *
 * Idle batches (#17). A batch that leaves the token where it was, has no room and for which the
 * shell changed nothing (`BatchDelivered.unchanged`: the crypto machine was not handed it, no
 * held event moved) is not saved: what a save would write is on disk already, or is what the save
 * in flight writes (that save then settles the batch). Without this, an idle client polling with
 * a zero timeout wrote `sync.json` on every poll, and polls during a save chained saves forever.
 *
 * Gap walks (#20). All of a batch's `limited` rooms are walked at once, each within a budget of
 * events (sync-gap-walk.ts), and all of them within `gapDeadlineMs` of the batch coming (the
 * shell's timer feeds `GapDeadline`; the machine stays clock-free). What is given up is counted
 * in `gapsLeft`. Each walk has an id: an answer for a walk that is over (its page still on the
 * wire at the deadline) is stale, and ignored.
 */
import { withRecent } from "./recent-event-ids.ts"
import { type GapWalk, type PlannedRoom, planRooms, type RoomIntake } from "./sync-batch-plan.ts"
import type { SyncLoopEffect, SyncLoopEvent, SyncLoopStep } from "./sync-loop-events.ts"
import type { BatchInHand, SyncCounters, SyncLoopConfig, SyncLoopState } from "./sync-loop-state.ts"
import { firstGapPage, knownEvent, walkGapPage } from "./sync-gap-walk.ts"
import { readSyncResponse, type SyncResponse } from "./sync-response.ts"

export type { GapWalk, RoomIntake }

/** The wait after the `failures`-th failed sync in a row: exponential up to the cap, with jitter in its upper half. */
export const backoffMs = (failures: number, jitter: number, config: SyncLoopConfig): number => {
  const cap = Math.min(config.backoffMaxMs, config.backoffBaseMs * 2 ** Math.min(failures - 1, 30))
  return Math.round(cap / 2 + (jitter * cap) / 2)
}

/**
 * One step of the loop.
 *
 * @example
 * let state = initialSyncLoop({ recent: emptyRecent(2000), lastSeen: new Map() })
 * const step = stepSyncLoop(state, { _tag: "Start" }, config) // effects: [RequestSync { since: undefined, timeoutMs: 0 }]
 */
export const stepSyncLoop = (state: SyncLoopState, event: SyncLoopEvent, config: SyncLoopConfig): SyncLoopStep => {
  const effects: Array<SyncLoopEffect> = []
  let s: SyncLoopState = state
  const set = (patch: Partial<SyncLoopState>) => (s = { ...s, ...patch })
  /** A response may be taken in now: no batch in hand, and room under the bound on unsaved batches. */
  const mayTake = () => s.batch === undefined && s.unsavedBatches < (config.maxUnsavedBatches ?? 1)
  const count = (patch: Partial<SyncCounters>) => set({ counters: { ...s.counters, ...patch } })

  const requestSync = () => {
    effects.push({ _tag: "RequestSync", since: s.since, timeoutMs: s.since === undefined ? 0 : config.timeoutMs })
    set({ sync: { _tag: "requesting", since: s.since } })
  }

  /** Issues the wanted save if none is in flight and no batch is half taken in (its state would be torn). */
  const flushSave = () => {
    if (s.save.inFlight !== undefined || !s.save.pending || s.batch !== undefined) return
    effects.push({ _tag: "Save", since: s.since, recent: s.recent, lastSeen: s.lastSeen })
    set({ save: { inFlight: { since: s.since, coversBatch: s.save.unsavedBatch, batches: s.unsavedBatches }, pending: false, unsavedBatch: false } })
  }
  const wantSave = (coversBatch: boolean) => {
    set({ save: { ...s.save, pending: true, unsavedBatch: s.save.unsavedBatch || coversBatch } })
    flushSave()
  }

  const maybeStopped = () => {
    if (s.phase !== "stopping" || s.batch !== undefined || s.save.inFlight !== undefined || s.save.pending) return
    set({ phase: "stopped" })
    effects.push({ _tag: "Stopped" })
  }

  /** Takes a response in: walks its gaps first, or hands it over at once when it has none. */
  const take = (response: SyncResponse) => {
    const first = s.since === undefined
    const gaps = new Map<string, GapWalk>()
    const walk = s.walks + 1
    const limit = firstGapPage(config)
    if (!first || config.deliverInitialTimeline) {
      for (const room of response.rooms) {
        const last = s.lastSeen.get(room.roomId)
        // A room we never took events from has no gap: what precedes is history, not news.
        if (!room.joined || last === undefined || !room.limited || room.prevBatch === undefined) continue
        // The timeline reaches back to an event already taken in (a batch asked again after a
        // failure, say): what precedes it was handed over or given up before, so there is no gap.
        // Walking back from `prev_batch` would never meet `last` (it lies after) and would hand
        // over events older than ones already delivered, out of order.
        if (room.timeline.some((raw) => knownEvent(raw, last, s.recent))) continue
        gaps.set(room.roomId, { last, missed: [], done: false })
        effects.push({ _tag: "FetchGapPage", walk, roomId: room.roomId, from: room.prevBatch, limit })
      }
    }
    if (gaps.size === 0) return deliver(response, first, gaps)
    set({ walks: walk, batch: { stage: "filling", walk, response, first, gaps } })
    if (config.gapDeadlineMs !== undefined) effects.push({ _tag: "ArmGapDeadline", walk, ms: config.gapDeadlineMs })
  }

  /** A walk given up short of the event it looks for (it failed, or the deadline came): what it found is kept, the rest counted. */
  const giveUp = (walk: GapWalk): GapWalk => {
    count({ gapsLeft: s.counters.gapsLeft + 1 })
    return { ...walk, done: true }
  }

  const deliver = (response: SyncResponse, first: boolean, gaps: ReadonlyMap<string, GapWalk>) => {
    const rooms = planRooms(response.rooms, first && !config.deliverInitialTimeline, gaps, s.recent)
    set({ batch: { stage: "delivering", response, rooms } })
    effects.push({ _tag: "DeliverBatch", body: response.body, rooms: rooms.map((r) => r.intake) })
  }

  /** What the first `n` rooms taken in change: the window, `lastSeen`, the duplicate count. */
  const commitRooms = (rooms: ReadonlyArray<PlannedRoom>) => {
    if (rooms.length === 0) return
    const lastSeen = new Map(s.lastSeen)
    let duplicates = 0
    const ids: Array<string> = []
    for (const room of rooms) {
      if (room.newest !== undefined) lastSeen.set(room.intake.roomId, room.newest)
      duplicates += room.duplicates
      for (const id of room.ids) ids.push(id)
    }
    set({ recent: withRecent(s.recent, ids), lastSeen })
    if (duplicates > 0) count({ duplicatesDropped: s.counters.duplicatesDropped + duplicates })
  }

  /** Ends the filling stage: the walk's timer and stray pages go, the batch is handed over. */
  const endWalk = (batch: Extract<BatchInHand, { stage: "filling" }>, gaps: ReadonlyMap<string, GapWalk>) => {
    effects.push({ _tag: "EndGapWalk", walk: batch.walk })
    deliver(batch.response, batch.first, gaps)
  }

  const walkGap = (walkId: number, roomId: string, advance: (walk: GapWalk) => GapWalk) => {
    const batch = s.batch
    // A stale answer (its walk over, given up at the deadline or dropped at a stop) changes nothing.
    if (batch?.stage !== "filling" || batch.walk !== walkId) return
    const walk = batch.gaps.get(roomId)
    if (walk === undefined || walk.done) return
    const gaps = new Map(batch.gaps).set(roomId, advance(walk))
    set({ batch: { ...batch, gaps } })
    if (Array.from(gaps.values()).every((w) => w.done)) endWalk(batch, gaps)
  }

  switch (event._tag) {
    case "Start":
      if (s.phase !== "idle" && s.phase !== "halted") break
      set({ phase: "running", failures: 0 })
      requestSync()
      break

    case "Stop":
      if (s.phase === "stopping" || s.phase === "stopped") break
      // A batch still walking its gaps has handed nothing over: drop it, the next run asks again.
      if (s.batch?.stage === "filling") effects.push({ _tag: "EndGapWalk", walk: s.batch.walk })
      set({ phase: "stopping", sync: { _tag: "none" }, waiting: undefined, batch: s.batch?.stage === "filling" ? undefined : s.batch })
      effects.push({ _tag: "CancelSync" })
      wantSave(false)
      maybeStopped()
      break

    case "SyncSucceeded": {
      if (s.sync._tag !== "requesting") break
      const askedFrom = s.sync.since
      set({ sync: { _tag: "none" }, failures: 0 })
      if (s.phase !== "running") break
      const response = readSyncResponse(event.body)
      if (mayTake()) take(response)
      else set({ waiting: { response, since: askedFrom } })
      break
    }

    case "SyncFailed":
      if (s.sync._tag !== "requesting") break
      set({ sync: { _tag: "none" } })
      if (s.phase !== "running") break
      count({ syncErrors: s.counters.syncErrors + 1 })
      if (event.reason === "unknown-token") {
        set({ phase: "halted" })
        break
      }
      set({ failures: s.failures + 1, sync: { _tag: "sleeping" } })
      effects.push({ _tag: "Sleep", ms: backoffMs(s.failures, event.jitter, config) })
      break

    case "TimerFired":
      if (s.sync._tag !== "sleeping") break
      set({ sync: { _tag: "none" } })
      if (s.phase === "running") requestSync()
      break

    case "GapPage":
      walkGap(event.walk, event.roomId, (walk) => {
        const step = walkGapPage(walk, event.chunk, event.end, s.recent, config)
        if (step.givenUp) count({ gapsLeft: s.counters.gapsLeft + 1 })
        if (step.next !== undefined) effects.push({ _tag: "FetchGapPage", walk: event.walk, roomId: event.roomId, ...step.next })
        return step.walk
      })
      break

    case "GapFailed":
      // What the walk found so far is kept: the older rest is given up, and counted.
      walkGap(event.walk, event.roomId, (walk) => giveUp(walk))
      break

    case "GapDeadline": {
      const batch = s.batch
      if (batch?.stage !== "filling" || batch.walk !== event.walk) break
      // Every room still walking keeps what it found; the batch goes out now rather than wait on a slow server.
      const gaps = new Map(Array.from(batch.gaps, ([roomId, walk]) => [roomId, walk.done ? walk : giveUp(walk)] as const))
      endWalk(batch, gaps)
      break
    }

    case "BatchDelivered": {
      const batch = s.batch
      if (batch?.stage !== "delivering") break
      commitRooms(batch.rooms)
      const since = batch.response.nextBatch ?? s.since
      // An idle batch (the token where it was, no room, the shell changed nothing: `unchanged`)
      // leaves nothing new for a save to write: it is not written again (an idle client polling
      // with timeout 0 rewrote sync.json and persisted the crypto store on every poll). Either
      // what is on disk is this state already (no save in flight or wanted, none failed), or the
      // save in flight writes it (it is of this token and nothing was wanted since it began):
      // that save then settles this batch too, and says Synced when done.
      const idle = event.unchanged === true && since === s.since && batch.rooms.length === 0 && !s.save.pending
      const inFlight = s.save.inFlight
      const onDisk = inFlight === undefined && !s.save.unsavedBatch && s.unsavedBatches === 0
      const beingWritten = inFlight !== undefined && inFlight.since === since
      // A batch that leaves the token where it was (an idle long-poll) has nothing a crash could repeat.
      set({ batch: undefined, since, unsavedBatches: s.unsavedBatches + (since === s.since ? 0 : 1) })
      count({ syncs: s.counters.syncs + 1 })
      if (idle && (onDisk || beingWritten)) {
        if (onDisk) effects.push({ _tag: "Synced" })
        else set({ save: { ...s.save, inFlight: { ...inFlight!, coversBatch: true } } })
        if (s.phase === "running") requestSync()
        maybeStopped()
        break
      }
      // Both at once: the long-poll's round trip runs while the save's fsyncs do (see the header).
      wantSave(true)
      if (s.phase === "running") requestSync()
      maybeStopped()
      break
    }

    case "BatchFailed": {
      const batch = s.batch
      if (batch?.stage !== "delivering") break
      // The token stays: the same batch comes again, and the window drops what was taken in.
      commitRooms(batch.rooms.slice(0, event.roomsDone))
      set({ batch: undefined })
      count({ syncErrors: s.counters.syncErrors + 1 })
      if (event.roomsDone > 0) set({ save: { ...s.save, pending: true } })
      flushSave()
      if (s.phase === "running") {
        set({ sync: { _tag: "sleeping" } })
        effects.push({ _tag: "Sleep", ms: config.backoffBaseMs })
      }
      maybeStopped()
      break
    }

    case "SaveDone":
    case "SaveFailed": {
      const saved = s.save.inFlight
      if (saved === undefined) break
      const failed = event._tag === "SaveFailed"
      set({ settled: saved.since, unsavedBatches: s.unsavedBatches - saved.batches, save: { ...s.save, inFlight: undefined } })
      // A save wanted after the failed one began is issued now; the failed one's own content is not
      // retried at once (a failing disk would spin): the next batch's save, or a Dirty, carries it.
      const newer = s.save.pending
      if (failed) {
        count({ syncErrors: s.counters.syncErrors + 1 })
        const retryLater = s.phase !== "stopping" && saved.coversBatch
        set({ save: { ...s.save, pending: newer || retryLater, unsavedBatch: s.save.unsavedBatch || saved.coversBatch } })
      } else if (saved.coversBatch) effects.push({ _tag: "Synced" })
      // The save wanted meanwhile goes first, so its fsyncs run while the answer waiting on this
      // one is taken in (its snapshot is read before that batch touches anything).
      if (!failed || newer) flushSave()
      const waiting = s.waiting
      if (waiting !== undefined && mayTake() && s.phase === "running") {
        set({ waiting: undefined })
        take(waiting.response)
      }
      maybeStopped()
      break
    }

    case "Dirty":
      if (s.phase === "stopped") break
      wantSave(false)
      break
  }
  return { state: s, effects }
}
