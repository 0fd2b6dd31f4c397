/**
 * The session's handlers: what the session chart's actions run. Each is `(stepper, …) -> void`
 * over the session's data and the phase the chart is in: no clock, no randomness, no I/O. Time
 * arrives as the chart's delayed events, ids come from `state.seq`. Where a handler learns
 * something that changes the phase, it signals the chart (`Stepper.signal`), which decides.
 */
import type { CoreCaches } from "../core-caches.ts"
import { decodeFromWidget } from "../decode.ts"
import type { WidgetResponse } from "../envelope.ts"
import { ProtocolError } from "../protocol-error.ts"
import { HOOK_ACTIONS } from "../client-side.ts"
import { deliverRoomEvent, onAnswer, onReadPart, onReadRooms, readEvents, sendEvent } from "./events.ts"
import type { CallResult, Input } from "./input.ts"
import { capabilitiesOf, onApprovalDecided, requestCapabilities, weigh } from "./negotiation.ts"
import { loadGrantedState, onStatePart, onStateRooms, startStateLoad } from "./state-sync.ts"
import { isServing, sweepsToTimeout, type PendingCall, type PendingToWidget, type Phase, type RawRequest, type SessionState } from "./state.ts"
import { emptyPendingToWidget, Stepper } from "./step.ts"
import { FEATURE_ACTIONS, noFeatures } from "./feature.ts"
import { onTurnWatchAnswered, pushTurnServers, unwatchTurnServers, watchTurnServers } from "./turn.ts"
import type { Command } from "./command.ts"
import { clientRequest, onClientRequestAnswered, releaseHeldRequests } from "./client-requests.ts"

/**
 * Runs one handler on a copy of `state`: the state passed in is left as it was. `caches` are the
 * engine's (`createCoreCaches()`).
 *
 * @example
 * const s = step(initialState(config), "loading", createCoreCaches(), (s) => onInput(s, { _tag: "FrameLoaded" }))
 * s.done() // { state, commands }
 */
export const step = (state: SessionState, phase: Phase, caches: CoreCaches, handler: (s: Stepper) => void): Stepper => {
  const s = new Stepper(state, phase, caches)
  handler(s)
  return s
}

/**
 * Runs one handler writing into `state` itself and appending its commands to `outbox`: for the
 * session chart, which owns its state and hands it to nobody. `state` must not be read by anyone
 * else afterwards; the result's `state` is the one to keep (a fresh state's shared empties are
 * copied on first write, so it may be a new object).
 */
export const stepInPlace = (state: SessionState, phase: Phase, caches: CoreCaches, outbox: Command[], handler: (s: Stepper) => void): Stepper => {
  const s = new Stepper(state, phase, caches, true, outbox)
  handler(s)
  return s
}

/**
 * One input of a turn, in the phase the chart is in. Inputs that the chart decides on (a frame
 * load, `content_loaded`, a close) become signals; the chart acts on them before the rest.
 */
export const onInput = (s: Stepper, input: Input): void => {
  switch (input._tag) {
    case "FromWidget":
      onWidgetMessage(s, input.raw)
      break
    case "FrameLoaded":
      s.signal({ type: "frame.loaded" })
      break
    case "ApprovalDecided":
      onApprovalDecided(s, input.ticket, input.approved)
      break
    case "OpenIdDecided":
      // Only a session served by the OpenID feature ever opens the prompt this answers.
      s.state.config.features?.openIdDecided?.(s, input.ticket, input.allowed)
      break
    case "CallAnswered":
      onCallAnswered(s, input.ticket, input.result)
      break
    case "ClientAnswered":
      // Only a session served by the client-actions feature ever calls the client.
      s.state.config.features?.clientActions?.answered(s, input.ticket, input.outcome)
      break
    case "ClientRequest":
      clientRequest(s, input.id, input.action, input.data)
      break
    case "RoomEvent":
      deliverRoomEvent(s, input.event)
      break
    case "ToDevice":
      // The router routes to-device messages only to sessions granted a to-device capability,
      // which only a session served by the to-device feature can be.
      s.state.config.features?.toDevice?.(s, input.event)
      break
    case "TurnServers":
      pushTurnServers(s, input.servers)
      break
    case "ViewedRoomChanged":
      onViewedRoomChanged(s, input.roomId)
      break
    case "TransportDown":
    case "TransportUp":
      // The transport queues for us while down, and delivers again what the link may have lost:
      // nothing in the protocol changes, but requests do not time out while no answer can come.
      if (s.state.linkDown !== (input._tag === "TransportDown")) s.set({ linkDown: input._tag === "TransportDown" })
      break
    case "Close":
      s.signal({ type: "close", reason: input.reason })
      break
  }
}

const onWidgetMessage = (s: Stepper, raw: unknown): void => {
  const decoded = decodeFromWidget(raw)
  switch (decoded._tag) {
    case "Dropped":
      s.count("dropped")
      s.report({ _tag: "Dropped", reason: decoded.reason })
      return
    case "Invalid":
      s.count("received")
      return s.fail(decoded.raw, ProtocolError.Malformed({ issue: decoded.issue }))
    case "Response":
      return onWidgetResponse(s, decoded.response)
    case "Request":
      break
  }
  const { request, raw: message } = decoded
  s.count("received")
  if (!s.state.contacted) s.set({ contacted: true })
  if (s.state.inFlight.has(request.requestId)) {
    // Answering the copy would clear the original's entry, and an error for the id could reach the
    // widget before the original's answer: the widget gets one answer for the id, the original's.
    s.count("duplicates")
    s.report({ _tag: "DuplicateRequest", action: request.action, requestId: request.requestId })
    return
  }
  if (request.widgetId !== s.state.config.widgetId) {
    return s.fail(message, ProtocolError.NotAllowed({ what: `speaking for widget ${request.widgetId} on a session of another widget` }))
  }
  onRequest(s, message, request.action, request.data)
}


const onRequest = (s: Stepper, raw: RawRequest, action: string, data: Readonly<Record<string, unknown>>): void => {
  switch (action) {
    case "supported_api_versions":
      return s.reply(raw, { supported_versions: s.state.config.client?.versions ?? (s.state.config.features ?? noFeatures).versions })
    case "content_loaded":
      // Acknowledged either way, by the chart, which decides what else it means.
      return s.signal({ type: "widget.contentLoaded", raw })
  }
  const features = s.state.config.features ?? noFeatures
  const handler = handlers[action] ?? features.actions[action]
  if (handler === undefined) {
    const served = features.clientActions?.handler(s, action)
    if (served === undefined) {
      // A hook's action is unknown when the feature is included but its hook is not installed.
      const feature = FEATURE_ACTIONS[action]
      return s.fail(raw, feature === undefined || features.names.has(feature) ? ProtocolError.UnknownAction({ action }) : ProtocolError.NotIncluded({ action, feature }))
    }
    if (!isServing(s.phase)) return s.fail(raw, ProtocolError.WrongPhase({ phase: s.phase, action }))
    return served(s, raw, data, action)
  }
  if (!isServing(s.phase)) return s.fail(raw, ProtocolError.WrongPhase({ phase: s.phase, action }))
  if ((needsCall.has(action) || FEATURE_ACTIONS[action] !== undefined) && s.state.pendingCalls.size >= s.state.config.limits.maxPendingCalls) {
    return s.fail(raw, ProtocolError.TooManyPending({ limit: s.state.config.limits.maxPendingCalls }))
  }
  handler(s, raw, data)
}

type Handler = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>) => void

/**
 * fromWidget actions of the core proposals, served once the session is established, stable and
 * unstable names alike; the optional features' (`feature.ts`) come from the session's config.
 * Those that call the homeserver are bounded by `limits.maxPendingCalls`, as every feature's
 * actions are; the others answer from the session itself.
 */
const callingHandlers: Readonly<Record<string, Handler>> = {
  send_event: sendEvent,
  read_events: readEvents,
  "org.matrix.msc2876.read_events": readEvents,
}
/** Without a prototype: an action named `constructor` or `__proto__` finds no handler, not Object's. */
const handlers: Readonly<Record<string, Handler | undefined>> = Object.assign(Object.create(null) as Record<string, Handler>, {
  ...callingHandlers,
  request_capabilities: requestCapabilities,
  "org.matrix.msc2974.request_capabilities": requestCapabilities,
  watch_turn_servers: (s, raw) => watchTurnServers(s, raw),
  unwatch_turn_servers: (s, raw) => unwatchTurnServers(s, raw)
} satisfies Record<string, Handler>)
const needsCall = new Set(Object.keys(callingHandlers))

// A function, so that a bundle that never reads ENGINE_ACTIONS (no custom actions: a lean engine) drops it.
function engineActions(): ReadonlySet<string> {
  return new Set(["supported_api_versions", "content_loaded", ...Object.keys(handlers), ...Object.keys(FEATURE_ACTIONS), ...HOOK_ACTIONS.keys()])
}

/**
 * fromWidget actions the engine serves itself, or through the client's hooks: a client's custom
 * action may not take one of these names.
 */
export const ENGINE_ACTIONS: ReadonlySet<string> = /* @__PURE__ */ engineActions()

const onWidgetResponse = (s: Stepper, response: WidgetResponse): void => {
  const pending = s.state.pendingToWidget.get(response.requestId)
  if (pending === undefined || response.widgetId !== s.state.config.widgetId || response.action !== pending.action) {
    // Nobody waits for it (late, duplicate or spoofed): drop it, but count it.
    s.count("unmatched")
    s.report({ _tag: "Dropped", reason: "unmatched-response" })
    return
  }
  s.settle(response.requestId)
  const error = (response.response as { error?: { message?: unknown } } | null)?.error
  if (error !== undefined) s.report({ _tag: "WidgetError", action: pending.action, message: typeof error?.message === "string" ? error.message : "no message" })
  if (pending.purpose === "client") return onClientRequestAnswered(s, pending, response.response, false)
  answered(s, pending, error === undefined ? response.response : undefined)
}

/** Acts on the widget's answer to one of our requests (`undefined` when it failed or timed out). */
const answered = (s: Stepper, pending: PendingToWidget, response: unknown): void => {
  if (pending.purpose === "client") {
    onClientRequestAnswered(s, pending, undefined, true)
  } else if (pending.purpose === "capabilities") {
    if (s.phase === "negotiating" && s.state.approval === undefined) weigh(s, capabilitiesOf(response))
  } else if (pending.purpose === "versions") {
    const list = (response as { supported_versions?: unknown } | undefined)?.supported_versions
    s.set({ widgetVersions: Array.isArray(list) ? list.filter((v): v is string => typeof v === "string") : [] })
    startStateLoad(s)
    releaseHeldRequests(s)
  }
}

/** Acknowledges `content_loaded` (the chart's action, whatever else the message means). */
export const acknowledge = (s: Stepper, raw: RawRequest): void => s.reply(raw, {})

/**
 * The chart's timeout sweep, every timeout/4: a request unanswered for `sweepsToTimeout` sweeps
 * has timed out, and so has a client call (`client-calls.ts`). The `capabilities` request is not
 * swept: the chart times it (`negotiating.asking`). While the link is down (`linkDown`) requests
 * do not age: a sweep then only re-arms, and once back a request has what was left of its
 * timeout (a transport that gives up on the link closes the session instead). Client calls age regardless:
 * they wait for the client, not the widget.
 */
export const sweepTimeouts = (s: Stepper): void => {
  const expired: Array<[string, PendingToWidget]> = []
  const pending = new Map<string, PendingToWidget>()
  let swept = 0
  for (const [id, entry] of s.state.pendingToWidget) {
    if (entry.purpose === "capabilities") pending.set(id, entry)
    else if (s.state.linkDown) {
      pending.set(id, entry)
      swept++
    } else if (entry.sweeps + 1 >= sweepsToTimeout) expired.push([id, entry])
    else {
      pending.set(id, { ...entry, sweeps: entry.sweeps + 1 })
      swept++
    }
  }
  const clientCallsLeft = s.state.config.features?.clientActions?.sweep(s) ?? false
  // Nothing left: back to the shared empty (an idle session keeps no map of its own after its last sweep).
  s.set({ pendingToWidget: pending.size === 0 ? emptyPendingToWidget : pending, sweepArmed: swept > 0 || clientCallsLeft })
  if (swept > 0 || clientCallsLeft) s.armSweep()
  for (const [requestId, entry] of expired) {
    s.count("timedOut")
    s.report({ _tag: "RequestTimedOut", action: entry.action, requestId })
    answered(s, entry, undefined)
  }
}

const onCallAnswered = (s: Stepper, ticket: number, result: CallResult): void => {
  const pending = s.untrack(ticket)
  if (pending === undefined) return
  switch (pending._tag) {
    case "Answer":
      return onAnswer(s, pending.raw, pending.format, result)
    case "TurnWatch":
      return onTurnWatchAnswered(s, pending.raw, result)
    case "ReadRooms":
      return onReadRooms(s, pending.gather, result)
    case "ReadPart":
      return onReadPart(s, pending.gather, pending.roomIndex, result)
    case "StateRooms":
      return onStateRooms(s, pending.gather, result)
    case "StatePart":
      return onStatePart(s, pending.gather, result)
    default:
      // A feature's own call: only a session served by that feature starts one.
      return (s.state.config.features?.answers[pending._tag] as ((s: Stepper, pending: PendingCall, result: CallResult) => void) | undefined)?.(s, pending, result)
  }
}

const onViewedRoomChanged = (s: Stepper, roomId: string | undefined): void => {
  if (s.state.config.kind !== "account" || roomId === s.state.homeRoom) return
  s.set({ homeRoom: roomId })
  if (!isServing(s.phase)) return
  s.emit({ _tag: "Subscribe", permissions: s.state.permissions, homeRoom: roomId })
  // The widget now acts in another room: it gets that room's state as a fresh load.
  if (roomId !== undefined && s.state.permissions.receivableState.length > 0) loadGrantedState(s, s.state.permissions.receivableState)
}

/** The chart is closing the session: withdraw what is open, tell the edges. (Its timers are the chart's.) */
export const closeSession = (s: Stepper, reason: string): void => {
  if (s.state.approval !== undefined) s.emit({ _tag: "CancelApproval", ticket: s.state.approval.ticket })
  if (s.state.openId.prompt !== undefined) s.emit({ _tag: "CancelApproval", ticket: s.state.openId.prompt.ticket })
  // The client's own toWidget requests are rejected by the engine as the session closes (with
  // those still on their way in), so none is settled here.
  s.state.config.features?.clientActions?.withdraw(s)
  if (s.state.turnWatching || [...s.state.pendingCalls.values()].some((c) => c._tag === "TurnWatch")) s.emit({ _tag: "UnwatchTurn" })
  s.set({ sweepArmed: false, approval: undefined, openId: { ...s.state.openId, prompt: undefined }, turnWatching: false, pendingCalls: new Map(), gathers: new Map(), pendingToWidget: new Map(), inFlight: new Set() })
  s.emit({ _tag: "Closed", reason })
}
