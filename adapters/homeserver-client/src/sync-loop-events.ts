/**
 * What the `/sync` loop's machine (sync-loop-machine.ts) is told (events: outcomes the shell,
 * sync-loop.ts, feeds back) and what it asks for (effects: the HTTP, timers and saves the shell
 * carries out). Plain data, so a run can be recorded and replayed.
 */
import type { RawEvent } from "./crypto.ts"
import type { RecentIds } from "./recent-event-ids.ts"
import type { RoomIntake } from "./sync-batch-plan.ts"
import type { SyncLoopState } from "./sync-loop-state.ts"

export type SyncLoopEvent =
  | { readonly _tag: "Start" }
  | { readonly _tag: "Stop" }
  | { readonly _tag: "SyncSucceeded"; readonly body: unknown }
  /** `jitter` in [0, 1), drawn by the shell, so the step stays replayable. */
  | { readonly _tag: "SyncFailed"; readonly reason: "unknown-token" | "aborted" | "other"; readonly jitter: number }
  | { readonly _tag: "TimerFired" }
  | { readonly _tag: "GapPage"; readonly walk: number; readonly roomId: string; readonly chunk: ReadonlyArray<RawEvent>; readonly end: string | undefined }
  | { readonly _tag: "GapFailed"; readonly walk: number; readonly roomId: string }
  /** `gapDeadlineMs` passed since `ArmGapDeadline` of this walk. */
  | { readonly _tag: "GapDeadline"; readonly walk: number }
  /**
   * `unchanged`: taking the batch in changed nothing a save writes besides the token and the
   * rooms: the crypto machine was not handed it (no to-device event, no device-list change, key
   * counts as before), no held event was handed over meanwhile, and none is held. Absent: false.
   */
  | { readonly _tag: "BatchDelivered"; readonly unchanged?: boolean }
  /** Taking the batch in threw after its first `roomsDone` rooms were taken in. */
  | { readonly _tag: "BatchFailed"; readonly roomsDone: number }
  | { readonly _tag: "SaveDone" }
  | { readonly _tag: "SaveFailed" }
  /** Something outside a batch changed what is saved (held events released by a late key or the hold timer). */
  | { readonly _tag: "Dirty" }

export type SyncLoopEffect =
  | { readonly _tag: "RequestSync"; readonly since: string | undefined; readonly timeoutMs: number }
  /** Abort what is outstanding on the wire or the clock (the sync, its backoff sleep, gap pages). */
  | { readonly _tag: "CancelSync" }
  | { readonly _tag: "FetchGapPage"; readonly walk: number; readonly roomId: string; readonly from: string; readonly limit: number }
  /** Feed `GapDeadline { walk }` after `ms`, unless `EndGapWalk` comes first. */
  | { readonly _tag: "ArmGapDeadline"; readonly walk: number; readonly ms: number }
  /** The walk is over: clear its deadline timer and abort its pages still on the wire (their answers would be stale). */
  | { readonly _tag: "EndGapWalk"; readonly walk: number }
  /** Take the batch in: its device part (to-device, device lists, key counts) first, then each room in order. */
  | { readonly _tag: "DeliverBatch"; readonly body: Readonly<Record<string, unknown>>; readonly rooms: ReadonlyArray<RoomIntake> }
  | { readonly _tag: "Save"; readonly since: string | undefined; readonly recent: RecentIds; readonly lastSeen: ReadonlyMap<string, string> }
  | { readonly _tag: "Sleep"; readonly ms: number }
  /** A delivered batch is now on disk: wake `nextSync` waiters. */
  | { readonly _tag: "Synced" }
  | { readonly _tag: "Stopped" }

export interface SyncLoopStep {
  readonly state: SyncLoopState
  readonly effects: ReadonlyArray<SyncLoopEffect>
}
