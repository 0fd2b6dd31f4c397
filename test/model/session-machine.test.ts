/**
 * Model-based tests of the session chart: `xstate/graph` walks every reachable state of the
 * chart as production runs it (`SessionCharts`, the real handlers, delayed events on a simulated
 * clock), and every transition of every reachable state is replayed with invariants checked
 * after each step:
 * - nothing is pushed to a document (send_event, update_state, update_turn_servers,
 *   send_to_device) before that document's session was ready;
 * - within a document, the approved set only grows;
 * - every fromWidget request is answered at most once; a request whose id is already in flight
 *   is never answered (the original is); one left unanswered is still in flight, or its
 *   document or session is gone;
 * - while the transport's link is down no toWidget request times out, the `capabilities` one
 *   included (the widget cannot answer until it is back);
 * - every delayed event armed is cancelled or fires (never re-armed while armed), a closed chart
 *   keeps none, and with time and the link up the session goes quiet: nothing stays armed.
 *
 * A model state is the path that reaches it: each transition replays the path on a fresh chart,
 * so the walk branches without copying a live session.
 */
import { clientActionsFeature, type Command, defaultLimits, featureTable, type Input, noClientSide, type SessionConfig } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import type { ActorLogic, EventObject } from "xstate"
import { getShortestPaths } from "xstate/graph"
import { ChartDriver } from "../src/index.ts"

const CAP_A = "m.receive.event:m.room.message"
const CAP_B = "m.send.event:m.room.message"
/** Only ever asked for mid-session, so the model reaches renegotiating. */
const CAP_C = "m.receive.state_event:m.room.topic"
const ROOM = "!room:localhost"
/** Served by the client's navigate hook: its calls are answered, refused, or time out. */
const CAP_NAV = "m.navigate"
const REQUEST_TIMEOUT = 400
const APPROVAL_TIMEOUT = 1_000

const config = (waitForIframeLoad: boolean): SessionConfig => ({
  widgetId: "w1",
  kind: "room",
  homeRoom: ROOM,
  waitForIframeLoad,
  policy: { rules: [{ capability: CAP_A, decision: "approve" }, { capability: CAP_NAV, decision: "approve" }] },
  limits: { ...defaultLimits, requestTimeoutMs: REQUEST_TIMEOUT, approvalTimeoutMs: APPROVAL_TIMEOUT, capabilityRequests: { budget: 2, windowMs: 1_000 } },
  client: { ...noClientSide, hooks: new Set(["navigate"]) },
  features: featureTable([clientActionsFeature])
})

/** What the model does to a session: a turn's inputs, or time passing. */
type ModelEvent = { readonly type: "inputs"; readonly inputs: ReadonlyArray<Input> } | { readonly type: "elapse"; readonly ms: number }

interface ModelState {
  readonly path: ReadonlyArray<ModelEvent>
  readonly driver: ChartDriver
}

const fromWidget = (action: string, data: Record<string, unknown> = {}, requestId = action): Input => ({
  _tag: "FromWidget",
  raw: { api: "fromWidget", widgetId: "w1", requestId, action, data }
})
const roomEvent: Input = {
  _tag: "RoomEvent",
  event: { type: "m.room.message", event_id: "$e", room_id: ROOM, sender: "@bob:localhost", origin_server_ts: 1, content: { body: "hi" } }
}
const one = (input: Input): ModelEvent => ({ type: "inputs", inputs: [input] })

/** The events that make sense in a state: fixed ones, plus answers to whatever is pending. */
const eventsFor = ({ driver }: ModelState): ModelEvent[] => {
  if (driver.done) return []
  const events: ModelEvent[] = [
    one({ _tag: "FrameLoaded" }),
    one(fromWidget("content_loaded")),
    one(fromWidget("org.matrix.msc2974.request_capabilities", { capabilities: [CAP_B, CAP_C] })),
    // The same id while the first is in flight (its call unanswered) is a duplicate.
    one(fromWidget("send_event", { type: "m.room.message", content: { body: "x" } }, "send")),
    one(fromWidget("navigate", { uri: "https://matrix.to/#/!room:localhost" }, "nav")),
    one(roomEvent),
    // A batch, as the engine sends when several inputs arrive in one turn.
    { type: "inputs", inputs: [roomEvent, fromWidget("supported_api_versions", {}, "batched"), { _tag: "FrameLoaded" }] },
    { type: "elapse", ms: REQUEST_TIMEOUT / 4 },
    { type: "elapse", ms: APPROVAL_TIMEOUT },
    one({ _tag: "Close", reason: "test" })
  ]
  return [...events, ...hostSide(driver)]
}

/**
 * A websocket widget whose link drops and comes back, in a smaller walk (the full event set
 * with the link's two states would take minutes): the exchange, the link, time, the approver
 * and a close. Nothing comes from the widget while its link is down.
 */
const linkEventsFor = ({ driver }: ModelState): ModelEvent[] => {
  if (driver.done) return []
  const s = driver.state
  const time: ModelEvent[] = [
    { type: "elapse", ms: REQUEST_TIMEOUT / 4 },
    { type: "elapse", ms: APPROVAL_TIMEOUT },
    one({ _tag: "Close", reason: "test" })
  ]
  const answers = hostSide(driver).filter((e) => e.type === "inputs" && e.inputs[0]?._tag !== "CallAnswered")
  if (s.linkDown) return [one({ _tag: "TransportUp" }), ...time, ...answers.filter((e) => e.type === "inputs" && e.inputs[0]?._tag !== "FromWidget")]
  return [
    one({ _tag: "FrameLoaded" }),
    one(fromWidget("content_loaded")),
    one(fromWidget("org.matrix.msc2974.request_capabilities", { capabilities: [CAP_B, CAP_C] })),
    one({ _tag: "TransportDown" }),
    ...time,
    ...answers
  ]
}

/** Answers to whatever is pending: the widget's to our requests, the approver's, the client's and the homeserver's. */
const hostSide = (driver: ChartDriver): ModelEvent[] => {
  const s = driver.state
  const events: ModelEvent[] = []
  for (const [requestId, pending] of s.pendingToWidget) {
    const response = pending.action === "capabilities" ? { capabilities: [CAP_A, CAP_B, CAP_NAV] } : pending.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
    events.push(one({ _tag: "FromWidget", raw: { api: "toWidget", widgetId: "w1", requestId, action: pending.action, data: {}, response } }))
  }
  if (s.approval !== undefined) {
    events.push(one({ _tag: "ApprovalDecided", ticket: s.approval.ticket, approved: s.approval.asked }))
    events.push(one({ _tag: "ApprovalDecided", ticket: s.approval.ticket, approved: [] }))
  }
  for (const ticket of s.clientWork.calls.keys()) {
    events.push(one({ _tag: "ClientAnswered", ticket, outcome: { _tag: "Value", value: undefined } }))
    events.push(one({ _tag: "ClientAnswered", ticket, outcome: { _tag: "Refused", message: "no" } }))
  }
  for (const [ticket, call] of s.pendingCalls) {
    const result = call._tag === "StatePart" ? { _tag: "State" as const, value: [] } : { _tag: "Sent" as const, value: { roomId: ROOM, eventId: "$sent" } }
    events.push(one({ _tag: "CallAnswered", ticket, result }))
  }
  return events
}

/** The model's state: the chart's state and what matters for behaviour, never counters (else it never ends). */
const serializeState = ({ driver }: ModelState): string => {
  const s = driver.state
  return JSON.stringify([
    driver.value,
    [...s.approved].sort(),
    [...s.denied].sort(),
    s.approval?.asked ?? null,
    [...new Set([...s.pendingToWidget.values()].map((p) => p.action))].sort(),
    s.pendingCalls.size,
    s.clientWork.calls.size,
    s.inFlight.size > 0,
    s.contentLoaded,
    s.widgetVersions !== undefined,
    s.capabilityRequestsInWindow,
    driver.armed,
    s.linkDown,
    // Documents: whether one was seen, and whether loads run ahead of or behind it (clamped, so
    // that repeated reloads do not make the state space infinite).
    s.document > 0,
    Math.max(-1, Math.min(1, s.frameLoads - s.document))
  ])
}

const apply = (driver: ChartDriver, event: ModelEvent): void => {
  if (driver.done) return
  if (event.type === "inputs") driver.send(event.inputs)
  else driver.elapse(event.ms)
}

const replayPath = (waitForIframeLoad: boolean, path: ReadonlyArray<ModelEvent>): ChartDriver => {
  const driver = new ChartDriver(config(waitForIframeLoad))
  for (const event of path) apply(driver, event)
  return driver
}

/** The chart as production runs it, as logic `xstate/graph` can walk. */
const modelLogic = (waitForIframeLoad: boolean) =>
  ({
    config: {},
    getInitialSnapshot: () => ({ path: [], driver: replayPath(waitForIframeLoad, []) }),
    transition: (state: ModelState, event: ModelEvent) => {
      const path = [...state.path, event]
      return { path, driver: replayPath(waitForIframeLoad, path) }
    }
  }) as unknown as ActorLogic<ModelState & { status: "active"; output: undefined; error: undefined }, ModelEvent & EventObject>

const PUSHED = ["send_event", "update_state", "update_turn_servers", "send_to_device"]
type Sent = Extract<Command, { _tag: "SendToWidget" }>

/** Replays `path` step by step, checking every invariant after each step. */
const check = (waitForIframeLoad: boolean, path: ReadonlyArray<ModelEvent>) => {
  const driver = new ChartDriver(config(waitForIframeLoad))
  let approved: ReadonlyArray<string> = []
  let everReady = false
  /**
   * Requests by id: how often served (not a duplicate), answered, and given up (dropped with
   * their document by a reload; answers on their way to it never reach the new one).
   */
  const requests = new Map<string, { served: number; answered: number; dropped: number }>()
  for (const event of path) {
    if (driver.done) break
    const before = driver.commands.length
    const inFlightBefore = new Set(driver.state.inFlight)
    const linkDown = driver.state.linkDown
    apply(driver, event)
    const commands = driver.commands.slice(before)
    // No answer can come while the link is down: nothing the widget was asked times out then.
    if (linkDown) expect(commands.filter((c) => c._tag === "Report" && c.report._tag === "RequestTimedOut")).toEqual([])
    const s = driver.state
    const replaced = commands.some((c) => c._tag === "Report" && c.report._tag === "DocumentReplaced")
    if (replaced) {
      // A new document starts from nothing: no grant, no prompt, nothing in flight for the old one.
      expect(s.approved).toEqual([])
      expect(s.approval).toBeUndefined()
      approved = []
      everReady = false
    }
    // Within a document, approved capabilities only grow.
    for (const capability of approved) expect(s.approved).toContain(capability)
    approved = s.approved
    // Nothing is pushed to a document before it was ready.
    const sent = commands.filter((c): c is Sent => c._tag === "SendToWidget").map((c) => c.message)
    if (!everReady && !replaced) expect(sent.filter((m) => m.api === "toWidget" && PUSHED.includes(m.action))).toEqual([])
    // Every fromWidget request is answered at most once; one whose id is in flight, never.
    if (event.type === "inputs") {
      const seen = new Set(inFlightBefore)
      for (const input of event.inputs) {
        const raw = input._tag === "FromWidget" ? (input.raw as { api: string; requestId: string }) : undefined
        if (raw?.api !== "fromWidget") continue
        const entry = requests.get(raw.requestId) ?? { served: 0, answered: 0, dropped: 0 }
        if (!seen.has(raw.requestId)) entry.served++
        requests.set(raw.requestId, entry)
      }
    }
    for (const message of sent) {
      if (message.api !== "fromWidget") continue
      const entry = requests.get(message.requestId)
      expect(entry, `an answer to ${message.requestId}, never asked`).toBeDefined()
      entry!.answered++
      expect(entry!.answered + entry!.dropped, `${message.requestId} answered twice`).toBeLessThanOrEqual(entry!.served)
    }
    if (replaced) for (const entry of requests.values()) entry.dropped = entry.served - entry.answered
    everReady ||= driver.phase === "ready"
  }
  // A request left unanswered is still in flight, or its session is gone.
  for (const [requestId, entry] of requests) {
    if (entry.answered + entry.dropped < entry.served) {
      expect(driver.state.inFlight.has(requestId) || driver.done, `${requestId} unanswered after ${JSON.stringify(path)}`).toBe(true)
    }
  }
  // Timers: each armed one is cancelled or fires before it is armed again.
  const armed = new Set<string>()
  for (const { what, id } of driver.timerTrace) {
    if (what === "armed") {
      expect(armed.has(id), `${id} armed twice`).toBe(false)
      armed.add(id)
    } else {
      expect(armed.has(id), `${id} ${what} while not armed`).toBe(true)
      armed.delete(id)
    }
  }
  expect([...armed].sort()).toEqual([...driver.armed])
  if (driver.done) expect(driver.armed).toEqual([])
  // With time, the link up and no answers, every timer fires or is cancelled: nothing stays armed.
  if (!driver.done && driver.state.linkDown) driver.send([{ _tag: "TransportUp" }])
  driver.elapse(5 * APPROVAL_TIMEOUT + 10 * REQUEST_TIMEOUT)
  expect(driver.armed).toEqual([])
  return driver
}

describe.each([true, false])("session chart model (waitForIframeLoad: %s)", (waitForIframeLoad) => {
  const paths = getShortestPaths(modelLogic(waitForIframeLoad), { events: eventsFor, serializeState })
  const phaseOfPath = (p: (typeof paths)[number]) => p.state.driver.phase

  it("reaches every state of the chart", () => {
    const values = new Set(paths.map((p) => JSON.stringify(p.state.driver.value)))
    for (const value of ["loading", { negotiating: "asking" }, { negotiating: "prompting" }, "ready", "renegotiating", "closed"]) {
      expect(values).toContain(JSON.stringify(value))
    }
    expect(paths.length).toBeGreaterThan(50)
  })

  it("reaches new documents from ready and mid-negotiation", () => {
    const replaced = paths.filter((p) => p.state.driver.state.counters.documents > 0)
    const from = new Set(replaced.map((p) => (p.steps.length > 1 ? p.steps.at(-2)!.state.driver.phase : "loading")))
    expect(from).toContain("ready")
    expect(from).toContain("negotiating")
    expect(new Set(replaced.map(phaseOfPath))).toContain("ready")
  })

  it("reaches client calls answered, refused and timed out", () => {
    const reports = new Set(paths.flatMap((p) => p.state.driver.commands.flatMap((c) => (c._tag === "Report" ? [c.report._tag] : []))))
    expect(reports).toContain("ClientCallTimedOut")
    expect(paths.some((p) => p.state.path.some((e) => e.type === "inputs" && e.inputs.some((i) => i._tag === "ClientAnswered" && i.outcome._tag === "Refused")))).toBe(true)
  })

  it("reaches a duplicate request id in flight", () => {
    expect(paths.some((p) => p.state.driver.state.counters.duplicates > 0)).toBe(true)
  })

  // Every transition: each reachable state's path, extended by each event possible there.
  const transitions = paths.flatMap((path) => eventsFor(path.state).map((event) => [...path.state.path, event]))

  it("holds the invariants on every transition of every reachable state", () => {
    for (const steps of transitions) check(waitForIframeLoad, steps)
    const kinds = new Set(transitions.map((t) => { const e = t.at(-1)!; return e.type === "elapse" ? `elapse:${e.ms}` : e.inputs.length > 1 ? "Batch" : e.inputs[0]!._tag }))
    for (const kind of ["FrameLoaded", "FromWidget", "ApprovalDecided", "CallAnswered", "ClientAnswered", "RoomEvent", "Close", "Batch", `elapse:${REQUEST_TIMEOUT / 4}`, `elapse:${APPROVAL_TIMEOUT}`]) expect(kinds).toContain(kind)
    console.info(`session chart model (waitForIframeLoad: ${waitForIframeLoad}): ${paths.length} states, ${transitions.length} transitions replayed`)
  }, 180_000) // every transition replayed from the start: tens of seconds, more on a loaded machine
})

describe.each([true, false])("session chart model, the link dropping (waitForIframeLoad: %s)", (waitForIframeLoad) => {
  const paths = getShortestPaths(modelLogic(waitForIframeLoad), { events: linkEventsFor, serializeState })

  it("reaches every phase with the link down, and a capabilities request that waited out a drop longer than its timeout", () => {
    const phases = new Set(paths.filter((p) => p.state.driver.state.linkDown).map((p) => p.state.driver.phase))
    for (const phase of ["loading", "negotiating", "ready", "renegotiating"]) expect(phases).toContain(phase)
    const asking = (driver: ChartDriver) => JSON.stringify(driver.value) === JSON.stringify({ negotiating: "asking" })
    const waited = paths.some(({ state }) => {
      // Time spent asking with the link down, over the path.
      const driver = new ChartDriver(config(waitForIframeLoad))
      let awayMs = 0
      for (const event of state.path) {
        if (event.type === "elapse" && driver.state.linkDown && asking(driver)) awayMs += event.ms
        apply(driver, event)
      }
      return awayMs >= REQUEST_TIMEOUT && asking(driver) && driver.state.counters.timedOut === 0
    })
    expect(waited).toBe(true)
  })

  it("holds the invariants on every transition of every reachable state", () => {
    const transitions = paths.flatMap((path) => linkEventsFor(path.state).map((event) => [...path.state.path, event]))
    for (const steps of transitions) check(waitForIframeLoad, steps)
    const kinds = new Set(transitions.map((t) => { const e = t.at(-1)!; return e.type === "elapse" ? "elapse" : e.inputs[0]!._tag }))
    for (const kind of ["TransportDown", "TransportUp", "elapse", "FromWidget", "ApprovalDecided", "Close"]) expect(kinds).toContain(kind)
    console.info(`session chart model, the link dropping (waitForIframeLoad: ${waitForIframeLoad}): ${paths.length} states, ${transitions.length} transitions replayed`)
  }, 180_000)
})
