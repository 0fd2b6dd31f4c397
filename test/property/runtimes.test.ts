/**
 * The two session runtimes are one behaviour: the direct runner (reducer in place, timers on the
 * clock) and the xstate statechart actor produce the same commands and the same state for the
 * same batches of inputs and the same passage of time.
 */
import fc from "fast-check"
import { type Command, defaultLimits, type Input, type SessionConfig, type TimerName } from "@widgethost/core"
import { DirectSession, type SessionRunner, type SessionServices, sessionServices, XstateSession } from "@widgethost/machines"
import { describe, expect, it } from "vitest"
import { SimulatedClock } from "xstate"
import { simulatedClock } from "../src/index.ts"

const ROOM = "!room:localhost"
const config: SessionConfig = {
  widgetId: "w1",
  kind: "room",
  homeRoom: ROOM,
  waitForIframeLoad: true,
  policy: { rules: [{ capability: "m.receive.*", decision: "approve" }] },
  limits: { ...defaultLimits, requestTimeoutMs: 400, approvalTimeoutMs: 1_000, capabilityRequests: { budget: 2, windowMs: 500 } }
}

const CAPS = ["m.receive.event:m.room.message", "m.send.event:m.room.message", "m.receive.state_event:m.room.topic", "m.turn_servers"]
const fromWidget = (action: string, data: Record<string, unknown>, requestId: string): Input => ({ _tag: "FromWidget", raw: { api: "fromWidget", widgetId: "w1", requestId, action, data } })

const input: fc.Arbitrary<Input> = fc.oneof(
  fc.constant<Input>({ _tag: "FrameLoaded" }),
  fc.constantFrom("a", "b", "c").map((id) => fromWidget("send_event", { type: "m.room.message", content: { body: id } }, id)),
  fc.subarray(CAPS).map((capabilities) => fromWidget("request_capabilities", { capabilities }, "rc")),
  fc.constant(fromWidget("watch_turn_servers", {}, "w")),
  fc.constant(fromWidget("supported_api_versions", {}, "v")),
  fc.nat(8).map((n): Input => ({ _tag: "FromWidget", raw: { api: "toWidget", widgetId: "w1", requestId: `wh-${n}`, action: n === 1 ? "capabilities" : n === 0 ? "supported_api_versions" : "notify_capabilities", data: {}, response: { capabilities: CAPS, supported_versions: ["org.matrix.msc2762_update_state"] } } })),
  fc.nat(12).map((ticket): Input => ({ _tag: "ApprovalDecided", ticket, approved: CAPS })),
  fc.nat(12).map((ticket): Input => ({ _tag: "CallAnswered", ticket, result: { _tag: "Sent", value: { roomId: ROOM, eventId: "$x" } } })),
  fc.constantFrom("m.room.message", "m.room.topic").map((type): Input => ({ _tag: "RoomEvent", event: { type, event_id: "$e", room_id: ROOM, sender: "@b:hs", origin_server_ts: 1, content: {}, ...(type === "m.room.topic" ? { state_key: "" } : {}) } })),
  fc.constant<Input>({ _tag: "Close", reason: "test" })
)

/** A step: a batch of inputs, then some simulated time passing. */
const step = fc.record({ batch: fc.array(input, { minLength: 1, maxLength: 4 }), wait: fc.constantFrom(0, 50, 150, 600) })

const drive = (make: (services: SessionServices) => SessionRunner, steps: ReadonlyArray<{ batch: Input[]; wait: number }>) => {
  const clock = new SimulatedClock()
  const commands: Command[] = []
  const fired: TimerName[] = []
  const runner = make(sessionServices({ clock: simulatedClock(clock), execute: (_key, c) => commands.push(c), onTimer: (_key, t) => fired.push(t) }))
  const states: unknown[] = []
  for (const { batch, wait } of steps) {
    runner.run(batch)
    for (let left = wait; left > 0; left -= 50) {
      clock.increment(Math.min(50, left))
      while (fired.length > 0) runner.run([{ _tag: "TimerFired", timer: fired.shift()! }])
    }
    const { permissions: _p, ...state } = runner.state()
    states.push(structuredClone(state))
  }
  runner.stop()
  return { commands: commands.map((c) => (c._tag === "Subscribe" ? { ...c, permissions: undefined } : c)), states }
}

describe("session runtimes", () => {
  it("direct and xstate runners agree on every command and every state", () => {
    let commandsSeen = 0
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), (steps) => {
        const direct = drive((services) => new DirectSession(config, "s", services), steps)
        const xstate = drive((services) => new XstateSession(config, "s", services), steps)
        expect(direct.commands).toEqual(xstate.commands)
        expect(direct.states).toEqual(xstate.states)
        commandsSeen += direct.commands.length
      }),
      { numRuns: 400 }
    )
    expect(commandsSeen).toBeGreaterThan(1_000)
  })
})
