/**
 * What the sync loop machine's table tests share: a config, a fresh state, sync bodies, a
 * resumed loop, and how a case (given, send, want) is played.
 */
import { assert } from "vitest"
import { emptyRecent } from "./recent-event-ids.ts"
import type { SyncLoopEffect, SyncLoopEvent } from "./sync-loop-events.ts"
import { stepSyncLoop } from "./sync-loop-machine.ts"
import { initialSyncLoop, type SyncLoopConfig, type SyncLoopState } from "./sync-loop-state.ts"

export const config: SyncLoopConfig = { timeoutMs: 30_000, backoffBaseMs: 500, backoffMaxMs: 30_000, deliverInitialTimeline: false, maxGapEvents: 1000, gapPageSize: 250 }
export const fresh = () => initialSyncLoop({ recent: emptyRecent(2000), lastSeen: new Map() })
export const ev = (id: string, type = "m.room.message") => ({ event_id: id, type, content: {} })
export const syncBody = (next: string, rooms: Record<string, { events: Array<unknown>; limited?: boolean; prev?: string }> = {}) => ({
  next_batch: next,
  rooms: { join: Object.fromEntries(Object.entries(rooms).map(([id, r]) => [id, { timeline: { events: r.events, limited: r.limited ?? false, ...(r.prev === undefined ? {} : { prev_batch: r.prev }) } }])) }
})
export const run = (state: SyncLoopState, events: ReadonlyArray<SyncLoopEvent>, cfg = config) => {
  let s = state
  const effects: Array<SyncLoopEffect> = []
  for (const e of events) {
    const step = stepSyncLoop(s, e, cfg)
    s = step.state
    effects.push(...step.effects)
  }
  return { state: s, effects }
}
export const tags = (effects: ReadonlyArray<SyncLoopEffect>) => effects.map((e) => e._tag)

/** Started, first sync passed over `!r` up to `$1`, its save done: the loop long-polls from `t1`. */
export const resumed = () =>
  run(fresh(), [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1", { "!r": { events: [ev("$1")] } }) }, { _tag: "BatchDelivered" }, { _tag: "SaveDone" }]).state

export interface Case {
  readonly name: string
  readonly given: () => SyncLoopState
  readonly send: ReadonlyArray<SyncLoopEvent>
  readonly want: ReadonlyArray<SyncLoopEffect["_tag"]>
  readonly check?: (state: SyncLoopState, effects: ReadonlyArray<SyncLoopEffect>) => void
  readonly cfg?: SyncLoopConfig
}

/** Plays a case: its events from its state, the effects' tags as wanted, then its own check. */
export const playCase = ({ given, send, want, check, cfg }: Case) => {
  const { state, effects } = run(given(), send, cfg)
  assert.deepEqual(tags(effects), want)
  check?.(state, effects)
}
