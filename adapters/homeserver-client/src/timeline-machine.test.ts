/**
 * Single steps of the decrypting timeline machine, as a table: given the events so far (from the
 * initial state), send one more, want these effects in this order. Seqs count the events pushed
 * or restored, from 0. The random walks are in timeline-machine.model.test.ts.
 */
import { assert, describe, it } from "vitest"
import type { DecryptOutcome, RawEvent } from "./crypto.ts"
import {
  initialTimeline,
  isSettled,
  savedTimeline,
  stepTimeline,
  type TimelineConfig,
  type TimelineEffect,
  type TimelineEvent,
  type TimelineMachineState,
  type TimelineState,
  waitingCount
} from "./timeline-machine.ts"

const A = "!a:x"
const T = 1_000_000
const config: TimelineConfig = { maxHoldMs: 5_000, maxHeldBehind: 2, maxLate: 1 }

const clear = (id: string): RawEvent => ({ event_id: id, type: "m.room.message", content: { body: id } })
const sealed = (id: string, session = "s1"): RawEvent => ({ event_id: id, type: "m.room.encrypted", content: { session_id: session, ciphertext: "…" } })
const plain = (id: string) => ({ event_id: id, room_id: A, type: "m.room.message", sender: "@alice:x", origin_server_ts: 0, content: { body: id } })
const isClear = (id: string): DecryptOutcome => ({ _tag: "Clear", event: plain(id) })
const decrypted = (id: string): DecryptOutcome => ({ _tag: "Decrypted", event: plain(id) })
const pending: DecryptOutcome = { _tag: "Pending", sessionId: "s1", reason: "missing key" }
const failed: DecryptOutcome = { _tag: "Failed", reason: "withheld" }

const push = (now: number, ...events: ReadonlyArray<RawEvent>): TimelineEvent => ({ _tag: "Pushed", now, roomId: A, events })
const answer = (now: number, seq: number, outcome: DecryptOutcome): TimelineEvent => ({ _tag: "Outcome", now, seq, outcome })
const keys = (now: number, sessionId = "s1"): TimelineEvent => ({ _tag: "KeysArrived", now, keys: [{ roomId: A, sessionId }] })
const fired = (now: number): TimelineEvent => ({ _tag: "TimerFired", now })

/** e1 (s1) is the held head, with c2 behind it, since T. */
const held: ReadonlyArray<TimelineEvent> = [push(T, sealed("$e1"), clear("$c2")), answer(T, 0, pending)]
/** e1 went past its bound at T + 5 s and waits in the late set; c2 went ahead. */
const wentLate: ReadonlyArray<TimelineEvent> = [...held, fired(T + 5_000), answer(T + 5_000, 1, isClear("$c2"))]

const summary = (e: TimelineEffect): string => {
  switch (e._tag) {
    case "Decrypt":
      return `decrypt ${String(e.raw["event_id"])}`
    case "Deliver":
      return `deliver${e.late ? " late" : ""}${e.decrypted ? " decrypted" : ""} ${e.event.event_id}`
    case "Report":
      return `${e.report.kind} ${e.report.eventId}: ${e.report.reason}`
    case "ArmTimer":
      return `arm ${e.delayMs}`
    case "CancelTimer":
      return "cancel"
  }
}

const replay = (events: ReadonlyArray<TimelineEvent>, cfg = config): TimelineMachineState => events.reduce((s, e) => stepTimeline(s, e, cfg).state, initialTimeline)

const table: ReadonlyArray<{ readonly name: string; readonly given: ReadonlyArray<TimelineEvent>; readonly send: TimelineEvent; readonly want: ReadonlyArray<string>; readonly cfg?: TimelineConfig }> = [
  { name: "a room's first event is asked for first, one at a time", given: [], send: push(T, sealed("$e1"), clear("$c2")), want: ["decrypt $e1"] },
  { name: "a clear event is delivered, in order", given: [push(T, clear("$c1"))], send: answer(T, 0, isClear("$c1")), want: ["deliver $c1"] },
  { name: "a missing key holds the room and arms the timer for the bound", given: [push(T, sealed("$e1"), clear("$c2"))], send: answer(T, 0, pending), want: ["arm 5000"] },
  { name: "an event pushed behind a held head waits; no retry without new keys", given: held, send: push(T + 1_000, clear("$c3")), want: [] },
  {
    name: "the time bound: the head is reported and goes late, the room moves on",
    given: held,
    send: fired(T + 5_000),
    want: ["held-too-long $e1: no room key after 5000 ms", "decrypt $c2"]
  },
  {
    name: "the count bound: a third event behind the head (maxHeldBehind 2) releases the room",
    given: [...held, push(T + 1, clear("$c3"))],
    send: push(T + 2, clear("$c4")),
    want: ["held-too-long $e1: more than 2 later events waiting", "decrypt $c2", "cancel"]
  },
  { name: "a key for the room retries the held head (its timer waits on the answer)", given: held, send: keys(T + 10), want: ["decrypt $e1", "cancel"] },
  { name: "the key helped: the head goes out, then the one behind it is tried", given: [...held, keys(T + 10)], send: answer(T + 10, 0, decrypted("$e1")), want: ["deliver decrypted $e1", "decrypt $c2"] },
  { name: "still pending after the key: held again, the bound counts from the first failure", given: [...held, keys(T + 10)], send: answer(T + 1_000, 0, pending), want: ["arm 4000"] },
  { name: "a key that came while the head was being tried: a Pending answer from before is tried again", given: [push(T, sealed("$e1")), keys(T)], send: answer(T, 0, pending), want: ["decrypt $e1"] },
  { name: "a late event's key: it is tried again", given: wentLate, send: keys(T + 6_000), want: ["decrypt $e1"] },
  { name: "and if it decrypts, it is delivered late", given: [...wentLate, keys(T + 6_000)], send: answer(T + 6_000, 0, decrypted("$e1")), want: ["deliver late decrypted $e1"] },
  { name: "a key of another session leaves a late event alone", given: wentLate, send: keys(T + 6_000, "s2"), want: [] },
  { name: "a late event that turns out never to decrypt is reported failed", given: [...wentLate, keys(T + 6_000)], send: answer(T + 6_000, 0, failed), want: ["failed $e1: withheld"] },
  {
    name: "the late set is bounded (maxLate 1): the oldest is evicted",
    given: [push(T, sealed("$e1"), sealed("$e2")), answer(T, 0, pending), fired(T + 5_000), answer(T + 5_000, 1, pending)],
    send: fired(T + 10_000),
    want: ["held-too-long $e2: no room key after 5000 ms", "evicted $e1: late set full"]
  },
  { name: "an event that can never decrypt is reported, the room goes on", given: [push(T, sealed("$e1"), clear("$c2"))], send: answer(T, 0, failed), want: ["failed $e1: withheld", "decrypt $c2"] },
  { name: "an answer to a decryption not asked for is ignored", given: [push(T, sealed("$e1"))], send: answer(T, 7, isClear("$x")), want: [] },
  { name: "closing cancels the timer", given: held, send: { _tag: "Closed", now: T + 1 }, want: ["cancel"] },
  { name: "once closed, a hold arms no timer", given: [push(T, sealed("$e1")), { _tag: "Closed", now: T }], send: answer(T, 0, pending), want: [] },
  { name: "a throw on a head never held: the room waits", given: [push(T, sealed("$e1"), clear("$c2"))], send: { _tag: "DecryptThrew", now: T, seq: 0 }, want: [] },
  { name: "and its next push tries it again", given: [push(T, sealed("$e1")), { _tag: "DecryptThrew", now: T, seq: 0 }], send: push(T + 1, clear("$c2")), want: ["decrypt $e1"] },
  { name: "a throw on a held head keeps its bound", given: [...held, keys(T + 10)], send: { _tag: "DecryptThrew", now: T + 5_000, seq: 0 }, want: ["held-too-long $e1: no room key after 5000 ms", "decrypt $c2"] },
  { name: "expire applies the time bound now", given: held, send: { _tag: "Expire", now: T + 6_000 }, want: ["held-too-long $e1: no room key after 5000 ms", "decrypt $c2", "cancel"] },
  { name: "expire before the bound changes nothing, the timer stays", given: held, send: { _tag: "Expire", now: T + 4_999 }, want: [] }
]

describe("decrypting timeline machine, one step at a time", () => {
  for (const row of table)
    it(row.name, () => {
      const step = stepTimeline(replay(row.given, row.cfg), row.send, row.cfg ?? config)
      assert.deepEqual(step.effects.map(summary), row.want)
    })
})

describe("decrypting timeline machine, state", () => {
  it("a held room: waiting counts it, settled, the saved state carries the raw events", () => {
    const state = replay(held)
    assert.isTrue(isSettled(state))
    assert.equal(waitingCount(state), 2)
    assert.deepEqual(state.rooms.get(A)?.[0], { seq: 0, raw: sealed("$e1"), heldSince: T, triedAt: 0, sessionId: "s1" })
    assert.deepEqual(savedTimeline(state), { rooms: { [A]: [{ raw: sealed("$e1") }, { raw: clear("$c2") }] }, late: [] })
    assert.isFalse(isSettled(replay([push(T, clear("$c1"))])), "a decryption asked for is not settled")
  })

  it("restore: rooms and late events come back with fresh hold clocks, junk in the file is skipped", () => {
    const saved = { rooms: { [A]: [{ raw: sealed("$e1") }, "junk", { raw: 5 }], "!b:x": "nope" }, late: [{ roomId: A, raw: sealed("$e9", "s7") }, { roomId: 3 }, null] } as unknown as TimelineState
    const step = stepTimeline(initialTimeline, { _tag: "Restored", now: T, saved }, config)
    assert.deepEqual(step.effects.map(summary), ["decrypt $e1"])
    assert.deepEqual([...step.state.rooms.keys()], [A])
    assert.deepEqual(step.state.late, [{ roomId: A, entry: { seq: 1, raw: sealed("$e9", "s7"), heldSince: undefined, triedAt: -1, sessionId: "s7" } }])
    // A restored late event's session comes from its content, so its key still finds it.
    const heldAgain = stepTimeline(step.state, answer(T, 0, pending), config).state
    const keyed = stepTimeline(heldAgain, keys(T + 1, "s7"), config)
    assert.deepEqual(keyed.effects.map(summary), ["decrypt $e1", "cancel"], "the room's head first")
    const after = stepTimeline(keyed.state, answer(T + 1, 0, pending), config)
    assert.deepEqual(after.effects.map(summary), ["decrypt $e9", "arm 4999"])
    const nothing = stepTimeline(initialTimeline, { _tag: "Restored", now: T, saved: null as unknown as TimelineState }, config)
    assert.deepEqual([nothing.effects, nothing.state.rooms.size, nothing.state.late], [[], 0, []])
  })

  it("a step leaves the state it was given as it was", () => {
    const before = replay(held)
    const copy = structuredClone(before)
    stepTimeline(before, push(T + 1, clear("$c3")), config)
    stepTimeline(before, fired(T + 5_000), config)
    assert.deepEqual(before, copy)
  })
})
