/**
 * The registration lifecycle, model-tested: random sequences of every event (in any order, also
 * ones the transport would never send at that moment) against a tracker of what the effects
 * did, checking the rules of the package README after every step. And the close-code table:
 * each cause's ending against the README's own table.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import fc from "fast-check"
import { assert, describe, it } from "vitest"
import { CloseCode, endingFor, type LinkEndCause } from "./link-endings.ts"
import { initialLifecycle, type LifecycleConfig, type LifecycleEvent, type LifecycleState, stepLifecycle } from "./registration-lifecycle.ts"

const causes: ReadonlyArray<LinkEndCause> = [
  { _tag: "WidgetClosed", code: 1000 },
  { _tag: "WidgetClosed", code: 1006 },
  { _tag: "WidgetClosed", code: 4000 },
  { _tag: "ProtocolError", code: 1009, message: "too big" },
  { _tag: "Binary" },
  { _tag: "RateLimited", messages: 5, perMs: 1000 },
  { _tag: "DeadPeer" },
  { _tag: "SessionError" }
]

const event: fc.Arbitrary<LifecycleEvent> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ _tag: "Connected" } as const) },
  { weight: 4, arbitrary: fc.constantFrom(...causes).map((cause) => ({ _tag: "LinkEnded", cause }) as const) },
  fc.constant({ _tag: "OpenFailed" } as const),
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 5 }).map((dropped) => ({ _tag: "Overflowed", dropped }) as const) },
  fc.integer({ min: 1, max: 3 }).map((count) => ({ _tag: "Forgotten", count }) as const),
  { weight: 2, arbitrary: fc.constant({ _tag: "GraceExpired" } as const) },
  { weight: 2, arbitrary: fc.constant({ _tag: "SessionClosed", reason: "done" } as const) },
  fc.constantFrom({ _tag: "Retire", why: "unregistered" } as const, { _tag: "Retire", why: "shutting-down" } as const)
)
const config: fc.Arbitrary<LifecycleConfig> = fc.record({ resumeGraceMs: fc.constantFrom(0, 30_000), onDuplicate: fc.constantFrom("refuse" as const, "replace" as const) })

/** What the transport would hold after carrying out every effect so far. */
interface World {
  session: boolean
  link: boolean
  graceArmed: boolean
  /** transportDown told and not yet answered by transportUp (for the current session). */
  down: boolean
  /** Messages dropped and not yet announced, counted from the events themselves. */
  unannounced: number
  retired: boolean
}

const replay = (cfg: LifecycleConfig, events: ReadonlyArray<LifecycleEvent>) => {
  let state: LifecycleState = initialLifecycle
  const world: World = { session: false, link: false, graceArmed: false, down: false, unannounced: 0, retired: false }
  for (const ev of events) {
    const before = { ...world }
    const wasFresh = ev._tag === "Connected" && !world.link && !world.retired
    const step = stepLifecycle(state, ev, cfg)
    if (ev._tag === "Overflowed" && world.session) world.unannounced += ev.dropped
    if (ev._tag === "Forgotten" && world.session) world.unannounced += ev.count
    let flushed = false
    let redelivered = 0
    for (const effect of step.effects) {
      switch (effect._tag) {
        case "OpenSession":
          assert.isFalse(world.session, "a second session while one exists")
          assert.isFalse(world.retired, "a session after retirement")
          world.session = true
          world.down = false
          world.unannounced = 0
          break
        case "ForgetSession":
          assert.isTrue(world.session, "forgetting no session")
          world.session = false
          world.graceArmed = false
          world.down = false
          world.unannounced = 0
          break
        case "ArmGrace":
          assert.isFalse(world.graceArmed, "two grace windows")
          assert.isAbove(cfg.resumeGraceMs, 0)
          world.graceArmed = true
          break
        case "CancelGrace":
          world.graceArmed = false
          break
        case "TransportDown":
          assert.isFalse(world.down, "down twice without up")
          world.down = true
          break
        case "TransportUp":
          assert.isTrue(world.down, "up without down")
          world.down = false
          break
        case "EndLink":
          if (effect.which === "current") {
            assert.isTrue(world.link, "ending a link that is not there")
            world.link = false
          }
          break
        case "AnnounceGap":
          assert.isFalse(flushed, "the gap notice comes before the backlog")
          assert.equal(effect.dropped, world.unannounced, "announces exactly what was dropped")
          world.unannounced = 0
          break
        case "Redeliver":
          assert.isTrue(world.session, "redelivering with no session")
          assert.isFalse(flushed, "what the last link may have lost goes before the backlog")
          redelivered++
          break
        case "Flush":
        case "FlushAll":
          flushed = true
          break
        case "Resumed":
        case "Expired":
          break
      }
    }
    if (ev._tag === "GraceExpired" && before.graceArmed) world.graceArmed = false
    // A connection that is not refused becomes the current link.
    if (ev._tag === "Connected" && !step.effects.some((e) => e._tag === "EndLink" && e.which === "new")) world.link = true
    if (ev._tag === "Retire") world.retired = true
    state = step.state

    // The state says what the world holds.
    assert.equal(state.session !== "none", world.session, `session after ${ev._tag}`)
    assert.equal(state.linked, world.link, `link after ${ev._tag}`)
    assert.equal(state.session === "suspended", world.graceArmed, `grace armed exactly while suspended, after ${ev._tag}`)
    assert.equal(state.session === "suspended", world.down, `transportDown told exactly while suspended, after ${ev._tag}`)
    if (state.session === "suspended") assert.isFalse(state.linked, "suspended means no link")
    if (cfg.resumeGraceMs === 0) assert.notEqual(state.session, "suspended", "no resuming when disabled")
    if (world.retired) assert.deepEqual([state.session, state.linked], ["none", false], "retired holds nothing")
    if (ev._tag === "Overflowed" && before.link) assert.isTrue(step.effects.some((e) => e._tag === "EndLink" && e.ending.code === CloseCode.Overflow), "an overflow ends the link with 4507")
    // The session carries on over a new link exactly when it had one before: then, and only
    // then, what the old link may have lost goes again, once.
    const carriedOn = ev._tag === "Connected" && before.session && world.session && world.link && !step.effects.some((e) => e._tag === "EndLink" && e.which === "new")
    assert.equal(redelivered, carriedOn ? 1 : 0, `redeliveries after ${ev._tag}`)
    if (wasFresh) {
      const kinds = step.effects.filter((e) => e._tag === "OpenSession" || e._tag === "Resumed").length
      assert.equal(kinds, 1, "a first connection either opens a session or resumes one")
    }
  }
}

describe("registration lifecycle (model)", () => {
  it("holds the README's rules on every step of random event sequences", () => {
    fc.assert(fc.property(config, fc.array(event, { maxLength: 40 }), (cfg, events) => replay(cfg, events)), { numRuns: 3000 })
  })

  it("resume after an overflow: the gap is announced once, then the backlog, then transportUp", () => {
    const cfg = { resumeGraceMs: 30_000, onDuplicate: "refuse" } as const
    let state = stepLifecycle(initialLifecycle, { _tag: "Connected" }, cfg).state
    state = stepLifecycle(state, { _tag: "Overflowed", dropped: 7 }, cfg).state
    assert.deepEqual(state, { session: "suspended", linked: false, retired: undefined, dropped: 7 })
    const resumed = stepLifecycle(state, { _tag: "Connected" }, cfg)
    assert.deepEqual(resumed.effects.map((e) => e._tag), ["Resumed", "CancelGrace", "Redeliver", "AnnounceGap", "Flush", "TransportUp"])
    assert.equal(resumed.state.dropped, 0)
  })
})

describe("registration lifecycle: redelivery of unanswered requests (given, event, want)", () => {
  const resumable = { resumeGraceMs: 30_000, onDuplicate: "refuse" } as const
  const replacing = { resumeGraceMs: 30_000, onDuplicate: "replace" } as const
  const live: LifecycleState = { session: "live", linked: true, retired: undefined, dropped: 0 }
  const suspended: LifecycleState = { session: "suspended", linked: false, retired: undefined, dropped: 0 }
  const table: ReadonlyArray<{ readonly name: string; readonly cfg: LifecycleConfig; readonly given: LifecycleState; readonly send: LifecycleEvent; readonly want: ReadonlyArray<string>; readonly then?: Partial<LifecycleState> }> = [
    { name: "resume: redeliver before the backlog, then transportUp", cfg: resumable, given: suspended, send: { _tag: "Connected" }, want: ["Resumed", "CancelGrace", "Redeliver", "Flush", "TransportUp"], then: { session: "live", linked: true } },
    { name: "resume after forgetting: redeliver what is kept, announce what is not", cfg: resumable, given: { ...suspended, dropped: 2 }, send: { _tag: "Connected" }, want: ["Resumed", "CancelGrace", "Redeliver", "AnnounceGap", "Flush", "TransportUp"], then: { dropped: 0 } },
    { name: "a replacing link carries on the session: redeliver, then flush", cfg: replacing, given: live, send: { _tag: "Connected" }, want: ["EndLink", "Redeliver", "Flush"], then: { session: "live", linked: true } },
    { name: "first contact opens a session: nothing to redeliver", cfg: resumable, given: initialLifecycle, send: { _tag: "Connected" }, want: ["OpenSession"] },
    { name: "a refused duplicate redelivers nothing", cfg: resumable, given: live, send: { _tag: "Connected" }, want: ["EndLink"] },
    { name: "forgotten on a live link: no effect, counted for the next gap notice", cfg: resumable, given: live, send: { _tag: "Forgotten", count: 3 }, want: [], then: { dropped: 3, linked: true } },
    { name: "forgotten with no session: nothing to count", cfg: resumable, given: initialLifecycle, send: { _tag: "Forgotten", count: 3 }, want: [], then: { dropped: 0 } },
    { name: "the window expires: the session goes, and with it what it would redeliver", cfg: resumable, given: { ...suspended, dropped: 2 }, send: { _tag: "GraceExpired" }, want: ["Expired", "ForgetSession"], then: { session: "none", dropped: 0 } }
  ]
  for (const { name, cfg, given, send, want, then } of table)
    it(name, () => {
      const step = stepLifecycle(given, send, cfg)
      assert.deepEqual(step.effects.map((e) => e._tag), want)
      if (then !== undefined) assert.deepInclude(step.state, then)
    })
})

describe("close codes (the README's table)", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8")
  /** The table's rows: code, who sends it, and what follows, as the README writes them. */
  const rows = [...readme.matchAll(/^ {2}(\d{4}|other)\s+(host|widget|ws|-)\s+.*?\s{2,}(session over|session closed now|resumable(?:, gap notice)?|session lives on)\s*$/gm)].map((m) => ({ code: m[1], by: m[2], afterwards: m[3] }))
  const table: ReadonlyArray<readonly [LinkEndCause, string, string]> = [
    [{ _tag: "SessionClosed", reason: "bye" }, "1000", "session over"],
    [{ _tag: "WidgetClosed", code: 1000 }, "1000", "session closed now"],
    [{ _tag: "ShuttingDown" }, "1001", "session over"],
    [{ _tag: "ProtocolError", code: 1002, message: "bad frame" }, "1002", "resumable"],
    [{ _tag: "Binary" }, "1003", "resumable"],
    [{ _tag: "WidgetClosed", code: 1005 }, "1005", "resumable"],
    [{ _tag: "WidgetClosed", code: 1006 }, "1006", "resumable"],
    [{ _tag: "ProtocolError", code: 1007, message: "not UTF-8" }, "1007", "resumable"],
    [{ _tag: "ProtocolError", code: 1009, message: "too big" }, "1009", "resumable"],
    [{ _tag: "SessionError" }, "1011", "session over"],
    [{ _tag: "DeadPeer" }, "4408", "resumable"],
    [{ _tag: "Replaced" }, "4409", "session lives on"],
    [{ _tag: "Unregistered" }, "4410", "session over"],
    [{ _tag: "RateLimited", messages: 500, perMs: 1000 }, "4429", "resumable"],
    [{ _tag: "Overflow", dropped: 3 }, "4507", "resumable, gap notice"],
    [{ _tag: "WidgetClosed", code: 4000 }, "other", "resumable"]
  ]
  it("the README's table has every row", () => assert.equal(rows.length, 16))
  for (const [cause, code, afterwards] of table) {
    it(`${cause._tag}${"code" in cause ? ` ${cause.code}` : ""}: ${code}, ${afterwards}`, () => {
      const ending = endingFor(cause)
      assert.isTrue(rows.some((row) => row.code === code && row.afterwards === afterwards), `the README lists ${code} as ${afterwards}`)
      if (code !== "other") assert.equal(ending.code, Number(code))
      // What "afterwards" means for the lifecycle.
      const after = afterwards.startsWith("resumable") ? "suspend" : afterwards === "session closed now" || cause._tag === "SessionError" ? "end-session" : "keep"
      assert.equal(ending.after, after)
    })
  }
})
