/**
 * Model-based tests: paths generated from the session machine itself (xstate/graph), replayed
 * on a live actor with a simulated clock, with invariants checked after every step:
 * - nothing reaches the widget (send_event, update_state, update_turn_servers) before ready;
 * - the approved set only grows;
 * - the machine's state always equals the reducer's phase;
 * - a new document (a reload) starts from nothing: no grant, prompt or call of the old one;
 * - every fromWidget request is answered, at once or when its call completes.
 */
import { type Command, defaultLimits, type Input, type SessionConfig } from "@widgethost/core"
import { type SessionEvent, sessionMachine } from "@widgethost/machines"
import { describe, expect, it } from "vitest"
import { createActor, SimulatedClock, type SnapshotFrom } from "xstate"
import { getShortestPaths } from "xstate/graph"

const CAP_A = "m.receive.event:m.room.message"
const CAP_B = "m.send.event:m.room.message"
/** Only ever asked for mid-session, so the model reaches renegotiating. */
const CAP_C = "m.receive.state_event:m.room.topic"
const ROOM = "!room:localhost"

const config = (waitForIframeLoad: boolean): SessionConfig => ({
  widgetId: "w1",
  kind: "room",
  homeRoom: ROOM,
  waitForIframeLoad,
  policy: { rules: [{ capability: CAP_A, decision: "approve" }] },
  limits: { ...defaultLimits, capabilityRequests: { budget: 2, windowMs: 1_000 } }
})

type Snapshot = SnapshotFrom<typeof sessionMachine>
const one = (input: Input): SessionEvent => ({ type: "inputs", inputs: [input] })
const fromWidget = (action: string, data: Record<string, unknown> = {}, requestId = action): SessionEvent =>
  one({ _tag: "FromWidget", raw: { api: "fromWidget", widgetId: "w1", requestId, action, data } })
const roomEvent: SessionEvent = one({
  _tag: "RoomEvent",
  event: { type: "m.room.message", event_id: "$e", room_id: ROOM, sender: "@bob:localhost", origin_server_ts: 1, content: { body: "hi" } }
})

/** The events that make sense in a snapshot: fixed ones, plus answers to whatever is pending. */
const eventsFor = (snapshot: Snapshot): SessionEvent[] => {
  const s = snapshot.context.session
  const events: SessionEvent[] = [
    one({ _tag: "FrameLoaded" }),
    fromWidget("content_loaded"),
    fromWidget("org.matrix.msc2974.request_capabilities", { capabilities: [CAP_B, CAP_C] }),
    fromWidget("send_event", { type: "m.room.message", content: { body: "x" } }),
    roomEvent,
    // A batch, as the engine sends when several inputs arrive in one turn.
    { type: "inputs", inputs: [...(roomEvent.type === "inputs" ? roomEvent.inputs : []), { _tag: "FromWidget", raw: { api: "fromWidget", widgetId: "w1", requestId: "batched", action: "supported_api_versions", data: {} } }] },
    { type: "timer", timer: "request-timeouts" },
    { type: "timer", timer: "approval-timeout" },
    one({ _tag: "Close", reason: "test" })
  ]
  for (const [requestId, pending] of s.pendingToWidget) {
    const response = pending.action === "capabilities" ? { capabilities: [CAP_A, CAP_B] } : pending.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
    events.push(one({ _tag: "FromWidget", raw: { api: "toWidget", widgetId: "w1", requestId, action: pending.action, data: {}, response } }))
  }
  if (s.approval !== undefined) {
    events.push(one({ _tag: "ApprovalDecided", ticket: s.approval.ticket, approved: s.approval.asked }))
    events.push(one({ _tag: "ApprovalDecided", ticket: s.approval.ticket, approved: [] }))
  }
  for (const [ticket, call] of s.pendingCalls) {
    const result = call._tag === "StatePart" ? { _tag: "State" as const, value: [] } : { _tag: "Sent" as const, value: { roomId: ROOM, eventId: "$sent" } }
    events.push(one({ _tag: "CallAnswered", ticket, result }))
  }
  return events
}

/** The model's state: phase and what matters for behaviour, never counters (else it never ends). */
const serializeState = (snapshot: Snapshot): string => {
  const s = snapshot.context.session
  return JSON.stringify([
    snapshot.value,
    [...s.approved].sort(),
    [...s.denied].sort(),
    s.approval?.asked ?? null,
    [...new Set([...s.pendingToWidget.values()].map((p) => p.action))].sort(),
    s.pendingCalls.size,
    s.contentLoaded,
    s.widgetVersions !== undefined,
    s.capabilityRequestsInWindow,
    // Documents: whether one was seen, and whether loads run ahead of or behind it (clamped, so
    // that repeated reloads do not make the state space infinite).
    s.document > 0,
    Math.max(-1, Math.min(1, s.frameLoads - s.document))
  ])
}

const replay = (waitForIframeLoad: boolean, steps: ReadonlyArray<SessionEvent>) => {
  const actor = createActor(sessionMachine, { input: config(waitForIframeLoad), clock: new SimulatedClock() })
  const commands: Command[] = []
  actor.on("command", ({ command }) => commands.push(command))
  actor.start()
  let approved: ReadonlyArray<string> = []
  let document = 0
  let everReady = false
  for (const step of steps) {
    if (actor.getSnapshot().status !== "active") break
    const before = commands.length
    actor.send(step)
    const snapshot = actor.getSnapshot()
    const { session } = snapshot.context
    // The machine's state is the reducer's phase.
    expect(snapshot.value).toBe(session.phase)
    if (session.document > document && document > 0) {
      // A new document starts from nothing: no grant, no prompt, nothing in flight for the old one.
      expect(session.approved).toEqual([])
      expect(session.approval).toBeUndefined()
      expect(session.pendingCalls.size).toBe(0)
      expect(session.inFlight.size).toBe(0)
      expect(commands.slice(before).some((c) => c._tag === "Report" && c.report._tag === "DocumentReplaced")).toBe(true)
      approved = []
      everReady = false
    }
    document = session.document
    // Within a document, approved capabilities only grow.
    for (const capability of approved) expect(session.approved).toContain(capability)
    approved = session.approved
    // Nothing is pushed to a document before it was ready.
    const sent = commands.slice(before).filter((c): c is Extract<Command, { _tag: "SendToWidget" }> => c._tag === "SendToWidget").map((c) => c.message)
    if (!everReady) {
      expect(sent.filter((m) => m.api === "toWidget" && ["send_event", "update_state", "update_turn_servers", "send_to_device"].includes(m.action))).toEqual([])
    }
    everReady ||= session.phase === "ready"
    // A fromWidget request is answered now unless it waits for a call.
    const only = step.type === "inputs" && step.inputs.length === 1 ? step.inputs[0]! : undefined
    if (only?._tag === "FromWidget") {
      const raw = only.raw as { api: string; requestId: string }
      if (raw.api === "fromWidget") {
        const answered = sent.some((m) => m.api === "fromWidget" && m.requestId === raw.requestId)
        expect(answered || session.inFlight.has(raw.requestId)).toBe(true)
      }
    }
  }
  actor.stop()
  return { commands, everReady }
}

describe.each([true, false])("session machine model (waitForIframeLoad: %s)", (waitForIframeLoad) => {
  const logic = sessionMachine.provide({})
  const paths = getShortestPaths(logic, {
    input: config(waitForIframeLoad),
    events: eventsFor,
    serializeState: (snapshot) => serializeState(snapshot)
  })

  it("covers every phase of the machine", () => {
    const phases = new Set(paths.map((p) => String(p.state.value)))
    expect([...phases].sort()).toEqual(["closed", "loading", "negotiating", "ready", "renegotiating"])
    expect(paths.length).toBeGreaterThan(50)
  })

  it("reaches new documents from ready and mid-negotiation", () => {
    const replacedFrom = new Set(
      paths.filter((p) => p.state.context.session.counters.documents > 0).map((p) => String(p.steps.at(-2)?.state.value ?? ""))
    )
    expect(replacedFrom.size).toBeGreaterThan(0)
    const reached = paths.filter((p) => p.state.context.session.counters.documents > 0).map((p) => String(p.state.value))
    expect(new Set(reached)).toContain("ready")
  })

  // Every transition: each reachable state's path, extended by each event possible there.
  const transitions = paths.flatMap((path) =>
    eventsFor(path.state).map((event) => [...path.steps.map((s) => s.event), event])
  )
  const kindOf = (e: SessionEvent) => (e.type === "timer" ? `timer:${e.timer}` : e.inputs.length > 1 ? "Batch" : e.inputs[0]!._tag)

  it("covers every kind of event from some state", () => {
    const kinds = new Set(transitions.map((t) => kindOf(t.at(-1)!)))
    for (const kind of ["FrameLoaded", "FromWidget", "ApprovalDecided", "CallAnswered", "RoomEvent", "Close", "Batch", "timer:request-timeouts", "timer:approval-timeout"]) expect(kinds).toContain(kind)
  })

  it("holds the invariants on every transition of every reachable state", () => {
    let checked = 0
    for (const steps of transitions) {
      replay(waitForIframeLoad, steps)
      checked++
    }
    expect(checked).toBe(transitions.length)
    console.info(`model (waitForIframeLoad: ${waitForIframeLoad}): ${paths.length} states, ${transitions.length} transitions replayed`)
  })
})
