/**
 * What the `/sync` loop's machine (sync-loop-machine.ts) knows between steps, and the knobs it is
 * run with: the token, the save in flight, the batch in hand, the recent-id window, the counters.
 * Plain data, so any state can be printed, compared and replayed.
 */
import type { RecentIds } from "./recent-event-ids.ts"
import type { GapWalk, PlannedRoom } from "./sync-batch-plan.ts"
import type { SyncResponse } from "./sync-response.ts"

export interface SyncLoopConfig {
  /** Long-poll `timeout`; the first sync (no token) asks with 0. */
  readonly timeoutMs: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  /** Deliver the first sync's timelines (old history) too, instead of passing over them. */
  readonly deliverInitialTimeline: boolean
  /** Events one gap walk may take in from `/messages` before it gives up the older rest (at least 1). */
  readonly maxGapEvents: number
  /** Events asked for per `/messages` page. */
  readonly gapPageSize: number
  /** A batch's gap walk still going this long after the batch came gives up what it has not found; none if unset. */
  readonly gapDeadlineMs?: number
  /** Batches handed over whose token may not be on disk yet (see the header); default 1. */
  readonly maxUnsavedBatches?: number
}

export interface SyncCounters {
  /** Batches handed to subscribers. */
  readonly syncs: number
  readonly syncErrors: number
  /** Duplicates the recent-id window dropped. */
  readonly duplicatesDropped: number
  /** `limited` timelines whose gap could not be closed within `maxGapEvents` or `gapDeadlineMs` (or whose walk failed). */
  readonly gapsLeft: number
}

export type BatchInHand =
  | { readonly stage: "filling"; readonly walk: number; readonly response: SyncResponse; readonly first: boolean; readonly gaps: ReadonlyMap<string, GapWalk> }
  | { readonly stage: "delivering"; readonly response: SyncResponse; readonly rooms: ReadonlyArray<PlannedRoom> }

export interface SyncLoopState {
  /** `stopping`: no new work, the batch in hand finishes, then the last save. `halted`: the token was refused. */
  readonly phase: "idle" | "running" | "halted" | "stopping" | "stopped"
  /** The token after the last batch taken in: what the next /sync asks from. */
  readonly since: string | undefined
  /** The token of the last save that completed (or failed: see the header): what a response must have been asked from. */
  readonly settled: string | undefined
  readonly sync: { readonly _tag: "none" } | { readonly _tag: "requesting"; readonly since: string | undefined } | { readonly _tag: "sleeping" }
  /** Consecutive failed syncs, for the backoff. */
  readonly failures: number
  /** A response that came while the token it was asked from was not yet on disk. */
  readonly waiting: { readonly response: SyncResponse; readonly since: string | undefined } | undefined
  readonly batch: BatchInHand | undefined
  /** Batches handed over since the token on disk (the save in flight covers some of them). */
  readonly unsavedBatches: number
  readonly save: {
    /** `batches`: of the unsaved batches, those this save settles. */
    readonly inFlight: { readonly since: string | undefined; readonly coversBatch: boolean; readonly batches: number } | undefined
    /** A save is wanted (after the one in flight). */
    readonly pending: boolean
    /** A batch was handed over since the last save began: the next save settles it (and `nextSync`). */
    readonly unsavedBatch: boolean
  }
  readonly recent: RecentIds
  /** Per room, the last timeline event taken in: where a gap walk stops. */
  readonly lastSeen: ReadonlyMap<string, string>
  /** The id of the last gap walk begun: answers carry it, so a late one for a walk that is over is known. */
  readonly walks: number
  readonly counters: SyncCounters
}

export const initialSyncLoop = (saved: { readonly since?: string | undefined; readonly recent: RecentIds; readonly lastSeen: ReadonlyMap<string, string> }): SyncLoopState => ({
  phase: "idle",
  since: saved.since,
  settled: saved.since,
  sync: { _tag: "none" },
  failures: 0,
  waiting: undefined,
  batch: undefined,
  unsavedBatches: 0,
  save: { inFlight: undefined, pending: false, unsavedBatch: false },
  recent: saved.recent,
  lastSeen: saved.lastSeen,
  walks: 0,
  counters: { syncs: 0, syncErrors: 0, duplicatesDropped: 0, gapsLeft: 0 }
})
