/**
 * The sync loop machine, single steps as tables: given a state, send events, want the effects
 * (and what changed). Random runs against a simulated homeserver are in
 * sync-loop-machine.property.test.ts.
 */
import fc from "fast-check"
import { assert, describe, it } from "vitest"
import { emptyRecent, hasRecent, recentFrom } from "./recent-event-ids.ts"
import type { SyncLoopEffect, SyncLoopEvent } from "./sync-loop-events.ts"
import { backoffMs, stepSyncLoop } from "./sync-loop-machine.ts"
import { initialSyncLoop, type SyncLoopConfig, type SyncLoopState } from "./sync-loop-state.ts"

const config: SyncLoopConfig = { timeoutMs: 30_000, backoffBaseMs: 500, backoffMaxMs: 30_000, deliverInitialTimeline: false, maxGapEvents: 1000, gapPageSize: 250 }
const fresh = () => initialSyncLoop({ recent: emptyRecent(2000), lastSeen: new Map() })
const ev = (id: string, type = "m.room.message") => ({ event_id: id, type, content: {} })
const syncBody = (next: string, rooms: Record<string, { events: Array<unknown>; limited?: boolean; prev?: string }> = {}) => ({
  next_batch: next,
  rooms: { join: Object.fromEntries(Object.entries(rooms).map(([id, r]) => [id, { timeline: { events: r.events, limited: r.limited ?? false, ...(r.prev === undefined ? {} : { prev_batch: r.prev }) } }])) }
})
const run = (state: SyncLoopState, events: ReadonlyArray<SyncLoopEvent>, cfg = config) => {
  let s = state
  const effects: Array<SyncLoopEffect> = []
  for (const e of events) {
    const step = stepSyncLoop(s, e, cfg)
    s = step.state
    effects.push(...step.effects)
  }
  return { state: s, effects }
}
const tags = (effects: ReadonlyArray<SyncLoopEffect>) => effects.map((e) => e._tag)

/** Started, first sync passed over `!r` up to `$1`, its save done: the loop long-polls from `t1`. */
const resumed = () =>
  run(fresh(), [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1", { "!r": { events: [ev("$1")] } }) }, { _tag: "BatchDelivered" }, { _tag: "SaveDone" }]).state

interface Case {
  readonly name: string
  readonly given: () => SyncLoopState
  readonly send: ReadonlyArray<SyncLoopEvent>
  readonly want: ReadonlyArray<SyncLoopEffect["_tag"]>
  readonly check?: (state: SyncLoopState, effects: ReadonlyArray<SyncLoopEffect>) => void
  readonly cfg?: SyncLoopConfig
}

const cases: ReadonlyArray<Case> = [
  {
    name: "start: the first sync asks with no token and no long-poll",
    given: fresh,
    send: [{ _tag: "Start" }],
    want: ["RequestSync"],
    check: (_, [e]) => assert.deepEqual(e, { _tag: "RequestSync", since: undefined, timeoutMs: 0 })
  },
  {
    name: "first sync: its timeline is passed over (position to the newest), nothing delivered",
    given: fresh,
    send: [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1", { "!r": { events: [ev("$0"), ev("$1")] } }) }],
    want: ["RequestSync", "DeliverBatch"],
    check: (_, effects) => {
      const d = effects[1] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>
      assert.deepEqual(d.rooms.map((r) => [r.roomId, r.fresh.length, r.passOverTo]), [["!r", 0, "$1"]])
    }
  },
  {
    name: "batch delivered: save and the next long-poll at once (pipelined), from the new token",
    given: () => run(fresh(), [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1", { "!r": { events: [ev("$1")] } }) }]).state,
    send: [{ _tag: "BatchDelivered" }],
    want: ["Save", "RequestSync"],
    check: (state, effects) => {
      assert.deepEqual(effects[0], { _tag: "Save", since: "t1", recent: state.recent, lastSeen: new Map([["!r", "$1"]]) })
      assert.deepEqual(effects[1], { _tag: "RequestSync", since: "t1", timeoutMs: 30_000 })
      assert.isTrue(hasRecent(state.recent, "$1"))
    }
  },
  {
    name: "an answer that comes while its token is not yet on disk waits for the save, then is taken in",
    given: () => run(fresh(), [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1", { "!r": { events: [ev("$1")] } }) }, { _tag: "BatchDelivered" }]).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }],
    want: [],
    check: (state) => {
      assert.equal(state.waiting?.since, "t1")
      const after = stepSyncLoop(state, { _tag: "SaveDone" }, config)
      assert.deepEqual(tags(after.effects), ["Synced", "DeliverBatch"])
    }
  },
  {
    name: "events already in the window are dropped and counted",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$1"), ev("$2"), ev("$2")] } }) }],
    want: ["DeliverBatch"],
    check: (state, [d]) => {
      assert.deepEqual((d as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]!.fresh.map((e) => e["event_id"]), ["$2"])
      assert.equal(run(state, [{ _tag: "BatchDelivered" }]).state.counters.duplicatesDropped, 2)
    }
  },
  {
    name: "limited timeline: its gap is walked back from prev_batch to the last event taken in, then delivered oldest first",
    given: resumed,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$8"), ev("$9")], limited: true, prev: "p8" } }) },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$7"), ev("$6")], end: "p6" },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$5"), ev("$1"), ev("$0")], end: "p0" }
    ],
    want: ["FetchGapPage", "FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual(effects.slice(0, 3), [
        { _tag: "FetchGapPage", walk: 1, roomId: "!r", from: "p8", limit: 250 },
        { _tag: "FetchGapPage", walk: 1, roomId: "!r", from: "p6", limit: 250 },
        { _tag: "EndGapWalk", walk: 1 }
      ])
      assert.equal(state.counters.gapsLeft, 0)
      const d = effects[3] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>
      assert.deepEqual(d.rooms[0]!.fresh.map((e) => e["event_id"]), ["$5", "$6", "$7", "$8", "$9"])
    }
  },
  {
    name: "the gap budget is in events: pages of gapPageSize, the last asks only for what is left, then the older rest is given up and counted",
    cfg: { ...config, maxGapEvents: 3, gapPageSize: 2 },
    given: resumed,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8"), ev("$7")], end: "p7" },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$6")], end: "p6" }
    ],
    want: ["FetchGapPage", "FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual(effects.flatMap((e) => (e._tag === "FetchGapPage" ? [[e.from, e.limit]] : [])), [["p9", 2], ["p7", 1]])
      assert.deepEqual((effects[3] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]!.fresh.map((e) => e["event_id"]), ["$6", "$7", "$8", "$9"])
      assert.equal(state.counters.gapsLeft, 1)
    }
  },
  {
    name: "a budget smaller than a page: the first page asks for the budget only",
    cfg: { ...config, maxGapEvents: 40, gapPageSize: 250 },
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) }],
    want: ["FetchGapPage"],
    check: (_, [e]) => assert.deepEqual(e, { _tag: "FetchGapPage", walk: 1, roomId: "!r", from: "p9", limit: 40 })
  },
  {
    name: "a gap that uses up the budget exactly on the room's first event is closed: nothing given up",
    cfg: { ...config, maxGapEvents: 2, gapPageSize: 2 },
    given: resumed,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8"), ev("$1")], end: "p1" }
    ],
    want: ["FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual((effects[2] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]!.fresh.map((e) => e["event_id"]), ["$8", "$9"])
      assert.equal(state.counters.gapsLeft, 0)
    }
  },
  {
    name: "a server that sends more than asked: the newest within the budget are kept, the rest given up and counted",
    cfg: { ...config, maxGapEvents: 2, gapPageSize: 2 },
    given: resumed,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8"), ev("$7"), ev("$6")], end: "p6" }
    ],
    want: ["FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual((effects[2] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]!.fresh.map((e) => e["event_id"]), ["$7", "$8", "$9"])
      assert.equal(state.counters.gapsLeft, 1)
    }
  },
  {
    name: "a failed gap page: what was found is kept, the walk given up and counted",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) }, { _tag: "GapFailed", walk: 1, roomId: "!r" }],
    want: ["FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state) => assert.equal(state.counters.gapsLeft, 1)
  },
  {
    name: "gapDeadlineMs: a walk arms the deadline; at it, every room still walking keeps what it found and is counted, the batch goes out",
    cfg: { ...config, gapDeadlineMs: 5_000 },
    given: () =>
      run(resumed(), [
        { _tag: "SyncSucceeded", body: syncBody("t9", { "!s": { events: [ev("$s1")] } }) },
        { _tag: "BatchDelivered" },
        { _tag: "SaveDone" }
      ]).state,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t20", { "!r": { events: [ev("$9")], limited: true, prev: "p9" }, "!s": { events: [ev("$s9")], limited: true, prev: "ps9" } }) },
      { _tag: "GapPage", walk: 1, roomId: "!s", chunk: [ev("$s8"), ev("$s1")], end: "ps0" },
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8")], end: "p8" },
      { _tag: "GapDeadline", walk: 1 }
    ],
    want: ["FetchGapPage", "FetchGapPage", "ArmGapDeadline", "FetchGapPage", "EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual(effects[2], { _tag: "ArmGapDeadline", walk: 1, ms: 5_000 })
      const d = effects[5] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>
      assert.deepEqual(d.rooms.map((r) => [r.roomId, r.fresh.map((e) => e["event_id"])]), [["!r", ["$8", "$9"]], ["!s", ["$s8", "$s9"]]])
      assert.equal(state.counters.gapsLeft, 1)
    }
  },
  {
    name: "after the deadline, the late page of the walk that is over changes nothing; a late deadline neither",
    cfg: { ...config, gapDeadlineMs: 5_000 },
    given: () =>
      run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) }, { _tag: "GapDeadline", walk: 1 }], { ...config, gapDeadlineMs: 5_000 }).state,
    send: [{ _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8")], end: "p8" }, { _tag: "GapFailed", walk: 1, roomId: "!r" }, { _tag: "GapDeadline", walk: 1 }],
    want: [],
    check: (state) => {
      assert.equal(state.batch?.stage, "delivering")
      assert.equal(state.counters.gapsLeft, 1)
    }
  },
  {
    name: "a stale page of an earlier walk, while a newer walk of the same room is under way, is ignored",
    cfg: { ...config, gapDeadlineMs: 5_000 },
    given: () =>
      run(
        resumed(),
        [
          { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) },
          { _tag: "GapDeadline", walk: 1 },
          { _tag: "BatchDelivered" },
          { _tag: "SaveDone" },
          { _tag: "SyncSucceeded", body: syncBody("t20", { "!r": { events: [ev("$20")], limited: true, prev: "p20" } }) }
        ],
        { ...config, gapDeadlineMs: 5_000 }
      ).state,
    send: [
      { _tag: "GapPage", walk: 1, roomId: "!r", chunk: [ev("$8")], end: "p8" },
      { _tag: "GapPage", walk: 2, roomId: "!r", chunk: [ev("$19"), ev("$9")], end: "p9" }
    ],
    want: ["EndGapWalk", "DeliverBatch"],
    check: (state, effects) => {
      assert.deepEqual((effects[1] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]!.fresh.map((e) => e["event_id"]), ["$19", "$20"])
      assert.equal(state.counters.gapsLeft, 1)
    }
  },
  {
    name: "stop while a gap is walked: the walk ends (timer and pages go), the batch is dropped",
    cfg: { ...config, gapDeadlineMs: 5_000 },
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$9")], limited: true, prev: "p9" } }) }], { ...config, gapDeadlineMs: 5_000 }).state,
    send: [{ _tag: "Stop" }, { _tag: "GapDeadline", walk: 1 }, { _tag: "SaveDone" }],
    want: ["EndGapWalk", "CancelSync", "Save", "Stopped"],
    check: (state) => assert.equal(state.since, "t1")
  },
  {
    // Found by the random runs (seed -1387048543): a batch that failed after its room was taken in
    // comes again with the same limited timeline. Walking its gap again handed `$7`, given up the
    // first time, after `$8` and `$9`.
    name: "a limited timeline that reaches an event already taken in has no gap: nothing older is walked or handed over",
    given: () =>
      run(resumed(), [
        { _tag: "SyncSucceeded", body: syncBody("t9", { "!r": { events: [ev("$8"), ev("$9")], limited: true, prev: "p8" } }) },
        { _tag: "GapFailed", walk: 1, roomId: "!r" },
        { _tag: "BatchFailed", roomsDone: 1 },
        { _tag: "SaveDone" },
        { _tag: "TimerFired" }
      ]).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t10", { "!r": { events: [ev("$9"), ev("$10")], limited: true, prev: "p9" } }) }],
    want: ["DeliverBatch"],
    check: (state, effects) => {
      const d = effects[0] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>
      assert.deepEqual(d.rooms[0]!.fresh.map((e) => e["event_id"]), ["$10"])
      assert.equal(stepSyncLoop(state, { _tag: "BatchDelivered" }, config).state.counters.duplicatesDropped, 1)
    }
  },
  {
    name: "sync failures back off exponentially to the cap, jitter in the upper half",
    given: resumed,
    send: [
      { _tag: "SyncFailed", reason: "other", jitter: 0 },
      { _tag: "TimerFired" },
      { _tag: "SyncFailed", reason: "other", jitter: 0.999 },
      { _tag: "TimerFired" },
      ...Array.from({ length: 10 }, () => [{ _tag: "SyncFailed", reason: "other", jitter: 1 } as const, { _tag: "TimerFired" } as const]).flat()
    ],
    want: ["Sleep", "RequestSync", "Sleep", "RequestSync", ...Array.from({ length: 10 }, () => ["Sleep", "RequestSync"] as const).flat()],
    check: (state, effects) => {
      const sleeps = effects.flatMap((e) => (e._tag === "Sleep" ? [e.ms] : []))
      assert.deepEqual(sleeps.slice(0, 2), [250, 1000])
      assert.equal(Math.max(...sleeps), 30_000)
      assert.equal(state.counters.syncErrors, 12)
    }
  },
  {
    name: "a success resets the backoff",
    given: resumed,
    send: [
      { _tag: "SyncFailed", reason: "other", jitter: 1 },
      { _tag: "TimerFired" },
      { _tag: "SyncFailed", reason: "other", jitter: 1 },
      { _tag: "TimerFired" },
      { _tag: "SyncSucceeded", body: syncBody("t1") },
      { _tag: "BatchDelivered" },
      { _tag: "SaveDone" },
      { _tag: "SyncFailed", reason: "other", jitter: 1 }
    ],
    want: ["Sleep", "RequestSync", "Sleep", "RequestSync", "DeliverBatch", "Save", "RequestSync", "Synced", "Sleep"],
    check: (_, effects) => assert.deepEqual(effects.flatMap((e) => (e._tag === "Sleep" ? [e.ms] : [])), [500, 1000, 500])
  },
  {
    name: "maxUnsavedBatches 2: an answer is taken in while the save of the batch before it runs",
    cfg: { ...config, maxUnsavedBatches: 2 },
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchDelivered" }], { ...config, maxUnsavedBatches: 2 }).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t3", { "!r": { events: [ev("$3")] } }) }],
    want: ["DeliverBatch"],
    check: (state) => {
      assert.equal(state.unsavedBatches, 1)
      assert.deepEqual(state.save.inFlight, { since: "t2", coversBatch: true, batches: 1 })
    }
  },
  {
    name: "maxUnsavedBatches 2: a third answer waits until the save in flight settles; the save wanted meanwhile is one, of the newest token",
    cfg: { ...config, maxUnsavedBatches: 2 },
    given: () =>
      run(
        resumed(),
        [
          { _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) },
          { _tag: "BatchDelivered" },
          { _tag: "SyncSucceeded", body: syncBody("t3", { "!r": { events: [ev("$3")] } }) },
          { _tag: "BatchDelivered" }
        ],
        { ...config, maxUnsavedBatches: 2 }
      ).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t4", { "!r": { events: [ev("$4")] } }) }, { _tag: "SaveDone" }],
    want: ["Synced", "Save", "DeliverBatch"],
    check: (state, effects) => {
      assert.equal((effects[1] as Extract<SyncLoopEffect, { _tag: "Save" }>).since, "t3")
      assert.deepEqual((effects[2] as Extract<SyncLoopEffect, { _tag: "DeliverBatch" }>).rooms[0]?.fresh.map((e) => e["event_id"]), ["$4"])
      assert.equal(state.settled, "t2")
      assert.equal(state.unsavedBatches, 1)
    }
  },
  {
    name: "maxUnsavedBatches 1 (the default): an answer waits for the save of the batch before it",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchDelivered" }]).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t3", { "!r": { events: [ev("$3")] } }) }],
    want: [],
    check: (state) => assert.equal(state.waiting?.since, "t2")
  },
  {
    name: "an idle batch (its token unchanged) leaves nothing unsaved: the next answer is taken in at once, its save still in flight",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "BatchDelivered" }, { _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }],
    want: ["DeliverBatch", "Save", "RequestSync", "DeliverBatch"],
    check: (state) => assert.equal(state.unsavedBatches, 0)
  },
  {
    name: "an unknown token (401) halts the loop: no retry",
    given: resumed,
    send: [{ _tag: "SyncFailed", reason: "unknown-token", jitter: 0 }, { _tag: "TimerFired" }],
    want: [],
    check: (state) => assert.equal(state.phase, "halted")
  },
  {
    name: "a failed batch keeps its token and retries after the base backoff",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchFailed", roomsDone: 0 }, { _tag: "TimerFired" }],
    want: ["DeliverBatch", "Sleep", "RequestSync"],
    check: (state, effects) => {
      assert.deepEqual(effects[2], { _tag: "RequestSync", since: "t1", timeoutMs: 30_000 })
      assert.isFalse(hasRecent(state.recent, "$2"))
    }
  },
  {
    name: "saves wanted while one is in flight coalesce into one, of the newest state",
    given: () => run(resumed(), [{ _tag: "Dirty" }]).state,
    send: [{ _tag: "Dirty" }, { _tag: "Dirty" }, { _tag: "SaveDone" }, { _tag: "SaveDone" }],
    want: ["Save"],
    check: (state) => assert.deepEqual(state.save, { inFlight: undefined, pending: false, unsavedBatch: false })
  },
  {
    name: "a failed save is not retried at once; the next batch's save carries it",
    given: () => run(fresh(), [{ _tag: "Start" }, { _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "BatchDelivered" }]).state,
    send: [{ _tag: "SaveFailed" }, { _tag: "SyncSucceeded", body: syncBody("t2") }, { _tag: "BatchDelivered" }],
    want: ["DeliverBatch", "Save", "RequestSync"],
    check: (state) => assert.deepEqual(state.save.inFlight, { since: "t2", coversBatch: true, batches: 1 })
  },
  {
    name: "a failed save with a newer one wanted behind it: the newer is issued at once, and the answer waiting on it taken in after",
    given: () => run(fresh(), [{ _tag: "Start" }, { _tag: "Dirty" }, { _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "BatchDelivered" }, { _tag: "SyncSucceeded", body: syncBody("t2") }]).state,
    send: [{ _tag: "SaveFailed" }, { _tag: "SaveDone" }],
    want: ["Save", "Synced", "DeliverBatch"],
    check: (state) => assert.equal(state.settled, "t1")
  },
  {
    name: "stop while long-polling: cancel, one last save, then stopped",
    given: resumed,
    send: [{ _tag: "Stop" }, { _tag: "SyncFailed", reason: "aborted", jitter: 0 }, { _tag: "SaveDone" }],
    want: ["CancelSync", "Save", "Stopped"],
    check: (state) => assert.equal(state.counters.syncErrors, 0)
  },
  {
    name: "stop while a batch is taken in: it finishes, is saved, then stopped; no new sync",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }]).state,
    send: [{ _tag: "Stop" }, { _tag: "BatchDelivered" }, { _tag: "SaveDone" }],
    want: ["CancelSync", "Save", "Synced", "Stopped"],
    check: (state) => assert.equal(state.since, "t2")
  },
  {
    name: "stop drops an answer waiting for its token's save (not delivered, so asked again next run)",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2") }, { _tag: "BatchDelivered" }, { _tag: "SyncSucceeded", body: syncBody("t3", { "!r": { events: [ev("$3")] } }) }]).state,
    send: [{ _tag: "Stop" }, { _tag: "SaveDone" }, { _tag: "SaveDone" }],
    want: ["CancelSync", "Synced", "Save", "Stopped"],
    check: (state) => assert.equal(state.since, "t2")
  }
]

describe("sync loop machine: single steps", () => {
  it.each(cases)("$name", ({ given, send, want, check, cfg }) => {
    const { state, effects } = run(given(), send, cfg)
    assert.deepEqual(tags(effects), want)
    check?.(state, effects)
  })

  it("backoff never exceeds the cap, whatever the failures and jitter", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, j) => backoffMs(n, j, config) <= config.backoffMaxMs && backoffMs(n, j, config) >= config.backoffBaseMs / 2))
  })

  it("the recent window keeps the newest ids and forgets the oldest past its size", () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `$${i}`)
    const w = recentFrom(ids, 2000)
    assert.isTrue(hasRecent(w, "$2999") && hasRecent(w, "$1000"))
    assert.isFalse(hasRecent(w, "$0"))
  })
})
