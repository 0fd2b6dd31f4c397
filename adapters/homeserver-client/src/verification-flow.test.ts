import { describe, expect, it } from "vitest"
import { autoStep, type FlowFacts, refusal, viewOf } from "./verification-flow.ts"

const EMOJI = [
  { symbol: "🐶", name: "Dog" },
  { symbol: "🚀", name: "Rocket" }
]
const sas = (over: Partial<NonNullable<FlowFacts["sas"]>> = {}): FlowFacts["sas"] => ({ weStarted: false, accepted: false, weConfirmed: false, done: false, cancelled: false, emoji: undefined, ...over })
const facts = (over: Partial<FlowFacts> = {}): FlowFacts => ({ flowId: "f", weStarted: false, otherDeviceId: "PEER", request: "requested", sas: undefined, cancel: undefined, ...over })

describe("verification flow: the phase a person sees (given machine facts, want phase)", () => {
  const table: ReadonlyArray<readonly [string, FlowFacts, string]> = [
    ["a request", facts(), "requested"],
    ["both ready", facts({ request: "ready" }), "ready"],
    ["SAS started, no keys yet", facts({ request: "transitioned", sas: sas() }), "started"],
    ["keys exchanged", facts({ request: "transitioned", sas: sas({ accepted: true, emoji: EMOJI }) }), "emoji"],
    ["we confirmed (the machine then hides the emoji)", facts({ request: "transitioned", sas: sas({ weConfirmed: true, emoji: EMOJI }) }), "confirmed"],
    ["done", facts({ request: "done", sas: sas({ done: true, emoji: EMOJI }) }), "done"],
    ["the SAS cancelled, the request not yet", facts({ request: "transitioned", sas: sas({ cancelled: true }) }), "cancelled"],
    ["the request cancelled", facts({ request: "cancelled" }), "cancelled"]
  ]
  it.each(table)("%s", (_name, given, want) => expect(viewOf(given).phase).toBe(want))

  it("shows emoji only from the comparison on, and a cancel's reason only when cancelled", () => {
    expect(viewOf(facts({ request: "transitioned", sas: sas({ emoji: EMOJI }) })).emoji).toEqual(EMOJI)
    expect(viewOf(facts({ request: "transitioned", sas: sas({ emoji: EMOJI, cancelled: true }) })).emoji).toBeNull()
    expect(viewOf(facts({ request: "cancelled", cancel: { code: "m.mismatched_sas", reason: "no match", byUs: false } })).cancelled).toEqual({ code: "m.mismatched_sas", reason: "no match", byUs: false })
    expect(viewOf(facts()).cancelled).toBeNull()
  })
})

describe("verification flow: the host's own step (given facts, want step)", () => {
  const table: ReadonlyArray<readonly [string, FlowFacts, string]> = [
    ["our request, the other ready: we start SAS", facts({ weStarted: true, request: "ready" }), "start-sas"],
    ["their request, ready: they start", facts({ request: "ready" }), "none"],
    ["their SAS start on an accepted request: we accept it", facts({ request: "transitioned", sas: sas() }), "accept-sas"],
    ["our SAS start: they accept", facts({ weStarted: true, request: "transitioned", sas: sas({ weStarted: true }) }), "none"],
    ["already accepted", facts({ request: "transitioned", sas: sas({ accepted: true }) }), "none"],
    ["cancelled", facts({ weStarted: true, request: "cancelled" }), "none"]
  ]
  it.each(table)("%s", (_name, given, want) => expect(autoStep(given)).toBe(want))
})

describe("verification flow: a person's action (given view, send action, want refused or not)", () => {
  const table: ReadonlyArray<readonly [string, FlowFacts, "accept" | "confirm" | "cancel", boolean]> = [
    ["accept their request", facts(), "accept", true],
    ["accept our own request", facts({ weStarted: true }), "accept", false],
    ["accept twice", facts({ request: "ready" }), "accept", false],
    ["confirm before the emoji", facts({ request: "transitioned", sas: sas() }), "confirm", false],
    ["confirm the emoji", facts({ request: "transitioned", sas: sas({ emoji: EMOJI }) }), "confirm", true],
    ["confirm twice", facts({ request: "transitioned", sas: sas({ emoji: EMOJI, weConfirmed: true }) }), "confirm", false],
    ["cancel while requested", facts(), "cancel", true],
    ["cancel after confirming", facts({ request: "transitioned", sas: sas({ emoji: EMOJI, weConfirmed: true }) }), "cancel", true],
    ["cancel when done", facts({ request: "done" }), "cancel", false],
    ["cancel when cancelled", facts({ request: "cancelled" }), "cancel", false]
  ]
  it.each(table)("%s", (_name, given, action, allowed) => expect(refusal(viewOf(given), action) === undefined).toBe(allowed))
})
