/**
 * The sync loop machine, single steps as tables: given a state, send events, want the effects
 * (and what changed): delivery, the unsaved-batch bound, saves and stopping. Gap walks are in
 * sync-loop-machine.gaps.test.ts, failures and backoff in sync-loop-machine.failures.test.ts,
 * random runs against a simulated homeserver in sync-loop-machine.property.test.ts.
 */
import { assert, describe, it } from "vitest"
import { hasRecent, recentFrom } from "./recent-event-ids.ts"
import type { SyncLoopEffect } from "./sync-loop-events.ts"
import { stepSyncLoop } from "./sync-loop-machine.ts"
import { type Case, config, ev, fresh, playCase, resumed, run, syncBody, tags } from "./sync-loop-machine.test-kit.ts"

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
    name: "an idle batch the shell changed nothing for (unchanged), with everything saved: not written again; Synced and the next long-poll at once",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "BatchDelivered", unchanged: true }],
    want: ["DeliverBatch", "Synced", "RequestSync"],
    check: (state, effects) => {
      assert.deepEqual(effects[2], { _tag: "RequestSync", since: "t1", timeoutMs: 30_000 })
      assert.deepEqual(state.save, { inFlight: undefined, pending: false, unsavedBatch: false })
      assert.equal(state.counters.syncs, 2)
    }
  },
  {
    name: "an unchanged idle batch while the save of its token is in flight: no second save; that save settles it (Synced when done)",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchDelivered" }]).state,
    send: [{ _tag: "SaveDone" }, { _tag: "Dirty" }, { _tag: "SyncSucceeded", body: syncBody("t2") }, { _tag: "BatchDelivered", unchanged: true }, { _tag: "SaveDone" }],
    want: ["Synced", "Save", "DeliverBatch", "RequestSync", "Synced"],
    check: (state) => assert.deepEqual(state.save, { inFlight: undefined, pending: false, unsavedBatch: false })
  },
  {
    name: "idle polls while saves run do not chain saves: one save, then none",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchDelivered" }, { _tag: "SaveDone" }]).state,
    send: [
      { _tag: "SyncSucceeded", body: syncBody("t2") },
      { _tag: "BatchDelivered", unchanged: true },
      { _tag: "SyncSucceeded", body: syncBody("t2") },
      { _tag: "BatchDelivered", unchanged: true }
    ],
    want: ["DeliverBatch", "Synced", "RequestSync", "DeliverBatch", "Synced", "RequestSync"]
  },
  {
    name: "an idle batch the crypto machine took in (not unchanged) is saved as before",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "BatchDelivered", unchanged: false }],
    want: ["DeliverBatch", "Save", "RequestSync"]
  },
  {
    name: "an unchanged idle batch while a save is wanted (a Dirty during the batch) still saves",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t1") }, { _tag: "Dirty" }, { _tag: "BatchDelivered", unchanged: true }],
    want: ["DeliverBatch", "Save", "RequestSync"]
  },
  {
    name: "an unchanged idle batch while the last save failed still saves: the failed one's content goes with it",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t2", { "!r": { events: [ev("$2")] } }) }, { _tag: "BatchDelivered" }, { _tag: "SaveFailed" }]).state,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t2") }, { _tag: "BatchDelivered", unchanged: true }],
    want: ["DeliverBatch", "Save", "RequestSync"],
    check: (state) => assert.equal(state.save.inFlight?.since, "t2")
  },
  {
    name: "an unchanged batch that moves the token is saved",
    given: resumed,
    send: [{ _tag: "SyncSucceeded", body: syncBody("t2") }, { _tag: "BatchDelivered", unchanged: true }],
    want: ["DeliverBatch", "Save", "RequestSync"]
  },
  {
    name: "an unchanged idle batch while stopping: the stop's own last save still happens",
    given: () => run(resumed(), [{ _tag: "SyncSucceeded", body: syncBody("t1") }]).state,
    send: [{ _tag: "Stop" }, { _tag: "BatchDelivered", unchanged: true }, { _tag: "SaveDone" }],
    want: ["CancelSync", "Save", "Synced", "Stopped"]
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
  it.each(cases)("$name", playCase)

  it("the recent window keeps the newest ids and forgets the oldest past its size", () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `$${i}`)
    const w = recentFrom(ids, 2000)
    assert.isTrue(hasRecent(w, "$2999") && hasRecent(w, "$1000"))
    assert.isFalse(hasRecent(w, "$0"))
  })
})
