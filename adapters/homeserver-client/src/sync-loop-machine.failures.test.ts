/**
 * The sync loop machine's failures, single steps as tables: backoff after failed syncs, an
 * unknown token, a batch that fails to be taken in.
 */
import fc from "fast-check"
import { assert, describe, it } from "vitest"
import { hasRecent } from "./recent-event-ids.ts"
import { backoffMs } from "./sync-loop-machine.ts"
import { type Case, config, ev, playCase, resumed, syncBody } from "./sync-loop-machine.test-kit.ts"

const cases: ReadonlyArray<Case> = [
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
  }
]

describe("sync loop machine: failures", () => {
  it.each(cases)("$name", playCase)

  it("backoff never exceeds the cap, whatever the failures and jitter", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, j) => backoffMs(n, j, config) <= config.backoffMaxMs && backoffMs(n, j, config) >= config.backoffBaseMs / 2))
  })
})
