/**
 * The runtime's recorded steps (`recorded-steps.ts`) are xstate's macrostep, exactly: several
 * sessions on one runtime (the first session of any runtime to take a step records it, every
 * later one replays it) end in the same snapshots, with the same data, commands and timers armed, cancelled and fired, as the same
 * sessions on a runtime that takes every event through macrostep. Time passes between turns, so
 * the chart's own delayed events (request and approval timeouts, the sweep, the rate window)
 * fire and are replayed too. A runtime given no recorder (what `createLeanEngine` runs by default)
 * is held to the same.
 */
import fc from "fast-check"
import { type Command, createCoreCaches, defaultLimits, type Input, type SessionConfig } from "@widgethost/core"
import { ChartSession, RecordedSteps, SessionCharts, sessionMachine, TimerQueue } from "@widgethost/engine"
import { simulatedClock } from "@widgethost/testing"
import { SimulatedClock } from "xstate"
import { describe, expect, it, vi } from "vitest"
import { ROOM } from "../src/index.ts"

const SESSIONS = 3
/** One recorder for every run, as `recordedSteps` is for every engine: later runs replay what earlier ones recorded. */
const recorder = new RecordedSteps()
const limits = { ...defaultLimits, requestTimeoutMs: 1_000, approvalTimeoutMs: 3_000, capabilityRequests: { budget: 2, windowMs: 2_000 } }
const CAPABILITIES = ["m.receive.event:m.room.message", "m.send.event:m.room.message", "m.always_on_screen"]

/** One runtime and its sessions, with everything they did, as the engine would see it. */
class Runtime {
  readonly clock = new SimulatedClock()
  readonly commands: string[] = []
  readonly trace: string[] = []
  private readonly outbox: Command[] = []
  private readonly charts: SessionCharts
  readonly sessions: ChartSession[]

  /** `macrostep`: every step through xstate's macrostep; `recorded`: replayed from `recorder`; `plain`: neither given (createLeanEngine's default). */
  constructor(configs: ReadonlyArray<SessionConfig>, mode: "macrostep" | "recorded" | "plain") {
    this.charts = new SessionCharts({
      macrostepAlways: mode === "macrostep",
      ...(mode === "recorded" ? { recorded: recorder } : {}),
      caches: createCoreCaches(),
      timers: new TimerQueue(simulatedClock(this.clock)),
      outbox: this.outbox,
      onDelayed: (session, event) => {
        this.charts.send(session, event)
        this.collect(session.key)
      },
      trace: (key, what, id) => this.trace.push(`${key} ${what} ${id}`)
    })
    this.sessions = configs.map((config, i) => this.charts.open(new ChartSession(`s${i}`), { config }))
  }

  send(session: number, inputs: ReadonlyArray<Input>): void {
    this.charts.send(this.sessions[session]!, { type: "inputs", inputs })
    this.collect(`s${session}`)
  }

  elapse(ms: number): void {
    for (let left = ms; left > 0; left -= 250) this.clock.increment(Math.min(250, left))
  }

  /** What a session is, as far as anyone can tell: its snapshot's every field but the machine. */
  seen(session: number) {
    const { snapshot, timers } = this.sessions[session]!
    return {
      value: snapshot.value,
      status: snapshot.status,
      output: snapshot.output,
      error: snapshot.error,
      nodes: snapshot._nodes.map((n) => n.id),
      tags: [...snapshot.tags],
      children: snapshot.children,
      historyValue: snapshot.historyValue,
      state: { ...snapshot.context.state, permissions: snapshot.context.state.approved },
      raised: snapshot.context.raised,
      armed: (timers ?? []).map((t) => t.id)
    }
  }

  private collect(key: string): void {
    for (const c of this.outbox.splice(0)) this.commands.push(`${key} ${JSON.stringify({ ...c, permissions: undefined })}`)
  }
}

const fromWidget = (action: string, data: unknown) => ({ _tag: "FromWidget" as const, raw: { api: "fromWidget", widgetId: "w1", requestId: action, action, data } })
const open: fc.Arbitrary<Input> = fc.oneof(
  fc.constant({ _tag: "FrameLoaded" as const }),
  fc.constant(fromWidget("content_loaded", {})),
  fc.constant(fromWidget("supported_api_versions", {})),
  fc.subarray(CAPABILITIES).map((capabilities) => fromWidget("request_capabilities", { capabilities })),
  fc.constant(fromWidget("send_event", { type: "m.room.message", content: {} })),
  fc.tuple(fc.nat(8), fc.subarray(CAPABILITIES)).map(([n, capabilities]) => ({
    _tag: "FromWidget" as const,
    raw: { api: "toWidget", widgetId: "w1", requestId: `wh-${n}`, action: n % 3 === 0 ? "capabilities" : "notify_capabilities", data: {}, response: { capabilities } }
  })),
  fc.tuple(fc.nat(4), fc.subarray(CAPABILITIES)).map(([ticket, approved]) => ({ _tag: "ApprovalDecided" as const, ticket, approved })),
  fc.constant({ _tag: "RoomEvent" as const, event: { type: "m.room.message", room_id: ROOM, content: { body: "x" }, event_id: "$x", sender: "@b:hs", origin_server_ts: 1 } })
)
/** Mostly what an open session gets; now and then a close, so sessions live long enough to repeat steps. */
const input = fc.oneof({ arbitrary: open, weight: 20 }, { arbitrary: fc.constant<Input>({ _tag: "Close", reason: "test" }), weight: 1 })
/** A turn: some session gets some inputs, or time passes. */
const turn = fc.oneof(
  { arbitrary: fc.tuple(fc.nat(SESSIONS - 1), fc.array(input, { minLength: 1, maxLength: 3 })).map(([session, inputs]) => ({ session, inputs })), weight: 4 },
  { arbitrary: fc.integer({ min: 1, max: 4_000 }).map((ms) => ({ elapse: ms })), weight: 1 }
)
const config = fc.record({ waitForIframeLoad: fc.boolean(), prompts: fc.boolean() }).map(
  ({ waitForIframeLoad, prompts }): SessionConfig => ({
    widgetId: "w1",
    kind: "room",
    homeRoom: ROOM,
    waitForIframeLoad,
    policy: { rules: prompts ? [] : [{ capability: "*", decision: "approve" }] },
    limits
  })
)

describe("recorded steps", () => {
  it("replaying xstate's recorded steps is taking them through macrostep", () => {
    // Counts the steps each runtime takes through macrostep: the recording one must take far fewer.
    const macrosteps = vi.spyOn(sessionMachine, "transition")
    let byRecorded = 0
    let byMacrostep = 0
    let byPlain = 0
    const counted = (run: () => void): number => {
      const before = macrosteps.mock.calls.length
      run()
      return macrosteps.mock.calls.length - before
    }
    try {
      fc.assert(
        fc.property(fc.array(config, { minLength: SESSIONS, maxLength: SESSIONS }), fc.array(turn, { maxLength: 40 }), (configs, turns) => {
          const recorded = new Runtime(configs, "recorded")
          const macrostep = new Runtime(configs, "macrostep")
          const plain = new Runtime(configs, "plain")
          const take = (runtime: Runtime, t: (typeof turns)[number]) => ("elapse" in t ? runtime.elapse(t.elapse) : runtime.send(t.session, t.inputs))
          for (const t of turns) {
            byRecorded += counted(() => take(recorded, t))
            byMacrostep += counted(() => take(macrostep, t))
            byPlain += counted(() => take(plain, t))
            for (let s = 0; s < SESSIONS; s++) {
              expect(recorded.seen(s)).toEqual(macrostep.seen(s))
              expect(plain.seen(s)).toEqual(macrostep.seen(s))
            }
          }
          expect(recorded.commands).toEqual(macrostep.commands)
          expect(recorded.trace).toEqual(macrostep.trace)
          expect(plain.commands).toEqual(macrostep.commands)
          expect(plain.trace).toEqual(macrostep.trace)
        }),
        { numRuns: 300 }
      )
    } finally {
      macrosteps.mockRestore()
    }
    // The property ran many chart steps, and the recording runtime replayed nearly all of them.
    expect(byMacrostep).toBeGreaterThan(2000)
    expect(byRecorded).toBeLessThan(byMacrostep / 10)
    // Without a recorder only the plain inputs transitions skip macrostep: the rest go through it.
    expect(byPlain).toBeGreaterThan(byRecorded)
    expect(byPlain).toBeLessThanOrEqual(byMacrostep)
  })
})
