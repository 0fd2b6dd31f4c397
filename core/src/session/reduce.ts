/**
 * The session reducer: `(state, input) -> (state, commands)`. Same state and input, same step:
 * no clock, no randomness, no I/O. Time arrives as `TimerFired`, ids come from `state.seq`.
 */
import { decodeFromWidget } from "../decode.ts"
import type { WidgetResponse } from "../envelope.ts"
import { ProtocolError } from "../protocol-error.ts"
import { SUPPORTED_API_VERSIONS } from "../versions.ts"
import { deliverRoomEvent, onAnswer, onReadPart, onReadRooms, readEvents, sendEvent } from "./events.ts"
import type { CallResult, Input } from "./input.ts"
import { onContentLoaded, onFrameLoaded } from "./document.ts"
import { capabilitiesOf, onApprovalDecided, onApprovalTimeout, requestCapabilities, weigh } from "./negotiation.ts"
import { loadGrantedState, onStatePart, onStateRooms, startStateLoad } from "./state-sync.ts"
import { isServing, sweepsToTimeout, type PendingToWidget, type RawRequest, type SessionState } from "./state.ts"
import { type Step, Stepper } from "./step.ts"
import { deliverToDevice, sendToDevice } from "./to-device.ts"
import { onTurnWatchAnswered, pushTurnServers, unwatchTurnServers, watchTurnServers } from "./turn.ts"

/**
 * Advances a session by one input.
 *
 * @example
 * const { state, commands } = reduce(initialState(config), { _tag: "FrameLoaded" })
 * // commands: supported_api_versions and capabilities requests to the widget
 */
export const reduce = (state: SessionState, input: Input): Step => {
  const s = new Stepper(state)
  apply(s, input)
  return s.done()
}

/**
 * Advances a session by several inputs, in order: the same result as reducing them one by one
 * (state and concatenated commands), computed with one copy of the state instead of one per input.
 */
export const reduceAll = (state: SessionState, inputs: ReadonlyArray<Input>, options: { readonly owned?: boolean } = {}): Step => {
  const s = new Stepper(state, options.owned === true)
  for (const input of inputs) apply(s, input)
  return s.done()
}

const apply = (s: Stepper, input: Input): void => {
  const state = s.state
  if (state.phase === "closed") {
    if (input._tag === "FromWidget") onClosedMessage(s, input.raw)
    return
  }
  switch (input._tag) {
    case "FromWidget":
      onWidgetMessage(s, input.raw)
      break
    case "FrameLoaded":
      onFrameLoaded(s)
      break
    case "ApprovalDecided":
      onApprovalDecided(s, input.ticket, input.approved)
      break
    case "CallAnswered":
      onCallAnswered(s, input.ticket, input.result)
      break
    case "TimerFired":
      if (input.timer === "request-timeouts") sweepTimeouts(s)
      else if (input.timer === "approval-timeout") onApprovalTimeout(s)
      else s.set({ capabilityRequestsInWindow: 0 })
      break
    case "RoomEvent":
      deliverRoomEvent(s, input.event)
      break
    case "ToDevice":
      deliverToDevice(s, input.event)
      break
    case "TurnServers":
      pushTurnServers(s, input.servers)
      break
    case "ViewedRoomChanged":
      onViewedRoomChanged(s, input.roomId)
      break
    case "TransportDown":
    case "TransportUp":
      // The transport queues for us while down; nothing in the protocol changes.
      break
    case "Close":
      close(s, input.reason)
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

const needsCall = new Set(["send_event", "read_events", "org.matrix.msc2876.read_events", "send_to_device"])

const onRequest = (s: Stepper, raw: RawRequest, action: string, data: Readonly<Record<string, unknown>>): void => {
  switch (action) {
    case "supported_api_versions":
      return s.reply(raw, { supported_versions: SUPPORTED_API_VERSIONS })
    case "content_loaded":
      return onContentLoaded(s, () => s.reply(raw, {}))
  }
  const handler = handlers[action]
  if (handler === undefined) return s.fail(raw, ProtocolError.UnknownAction({ action }))
  if (!isServing(s.state)) return s.fail(raw, ProtocolError.WrongPhase({ phase: s.state.phase, action }))
  if (needsCall.has(action) && s.state.pendingCalls.size >= s.state.config.limits.maxPendingCalls) {
    return s.fail(raw, ProtocolError.TooManyPending({ limit: s.state.config.limits.maxPendingCalls }))
  }
  handler(s, raw, data)
}

type Handler = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>) => void

/** fromWidget actions served once the session is established, stable and unstable names alike. */
const handlers: Readonly<Record<string, Handler>> = {
  request_capabilities: requestCapabilities,
  "org.matrix.msc2974.request_capabilities": requestCapabilities,
  send_event: sendEvent,
  read_events: readEvents,
  "org.matrix.msc2876.read_events": readEvents,
  send_to_device: sendToDevice,
  watch_turn_servers: (s, raw) => watchTurnServers(s, raw),
  unwatch_turn_servers: (s, raw) => unwatchTurnServers(s, raw)
}

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
  answered(s, pending, error === undefined ? response.response : undefined)
}

/** Acts on the widget's answer to one of our requests (`undefined` when it failed or timed out). */
const answered = (s: Stepper, pending: PendingToWidget, response: unknown): void => {
  if (pending.purpose === "capabilities") {
    if (s.state.phase === "negotiating" && s.state.approval === undefined) weigh(s, capabilitiesOf(response))
  } else if (pending.purpose === "versions") {
    const list = (response as { supported_versions?: unknown } | undefined)?.supported_versions
    s.set({ widgetVersions: Array.isArray(list) ? list.filter((v): v is string => typeof v === "string") : [] })
    startStateLoad(s)
  }
}

/** One sweep every timeout/4: a request unanswered for `sweepsToTimeout` sweeps has timed out. */
const sweepTimeouts = (s: Stepper): void => {
  const expired: Array<[string, PendingToWidget]> = []
  const pending = new Map<string, PendingToWidget>()
  for (const [id, entry] of s.state.pendingToWidget) {
    if (entry.sweeps + 1 >= sweepsToTimeout) expired.push([id, entry])
    else pending.set(id, { ...entry, sweeps: entry.sweeps + 1 })
  }
  s.set({ pendingToWidget: pending })
  s.set({ sweepArmed: pending.size > 0 })
  if (pending.size > 0) s.emit({ _tag: "StartTimer", timer: "request-timeouts", ms: Math.max(1, Math.floor(s.state.config.limits.requestTimeoutMs / 4)) })
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
  }
}

const onViewedRoomChanged = (s: Stepper, roomId: string | undefined): void => {
  if (s.state.config.kind !== "account" || roomId === s.state.homeRoom) return
  s.set({ homeRoom: roomId })
  if (!isServing(s.state)) return
  s.emit({ _tag: "Subscribe", permissions: s.state.permissions, homeRoom: roomId })
  // The widget now acts in another room: it gets that room's state as a fresh load.
  if (roomId !== undefined && s.state.permissions.receivableState.length > 0) loadGrantedState(s, s.state.permissions.receivableState)
}

const close = (s: Stepper, reason: string): void => {
  s.emit({ _tag: "CancelTimer", timer: "request-timeouts" })
  s.emit({ _tag: "CancelTimer", timer: "approval-timeout" })
  s.emit({ _tag: "CancelTimer", timer: "capability-window" })
  if (s.state.approval !== undefined) s.emit({ _tag: "CancelApproval", ticket: s.state.approval.ticket })
  if (s.state.turnWatching || [...s.state.pendingCalls.values()].some((c) => c._tag === "TurnWatch")) s.emit({ _tag: "UnwatchTurn" })
  s.set({ phase: "closed", sweepArmed: false, approval: undefined, turnWatching: false, pendingCalls: new Map(), gathers: new Map(), pendingToWidget: new Map(), inFlight: new Set() })
  s.emit({ _tag: "Closed", reason })
}

/** A closed session still answers requests (the transport may deliver a straggler), never acts. */
const onClosedMessage = (s: Stepper, raw: unknown): void => {
  const decoded = decodeFromWidget(raw)
  if (decoded._tag === "Request") s.fail(decoded.raw, ProtocolError.WrongPhase({ phase: "closed", action: decoded.request.action }))
  else s.count("dropped")
}

