/**
 * What the engine keeps for each open session beside its chart: the handle, the widget sink, and
 * the client-side work in flight (prompts, hook calls, toWidget requests), each allocated at first
 * use so an idle session holds none of it.
 */
import type { Prompt } from "./approval-prompt.ts"
import type { HookCall, Input, Withdrawable } from "@widgethost/core"
import type { PendingRequests } from "./pending-requests.ts"
import { ChartSession } from "./session-charts.ts"
import type { EngineSession } from "./session-handle.ts"
import type { SessionWatch } from "./lifecycle.ts"
import type { WidgetSink } from "./widget-session.ts"

/**
 * A session's chart (it is one: no second object holding the chart), and beside it what the
 * engine keeps for the session.
 */
export class Entry extends ChartSession {
  /** Hook calls at work and the client's toWidget requests waiting; none allocated before the first. */
  client: ClientWork | undefined = undefined
  /** Lifecycle listeners and the last state they were told; none while nobody listens. */
  watch: SessionWatch | undefined = undefined
  /** Open prompts by ticket; none allocated while no prompt is open. */
  approvals: Map<number, Prompt | Withdrawable> | undefined = undefined
  /** Told as the session closes: one stored bare (the common case, its transport's), more in an array. */
  closeListeners: CloseListener | CloseListener[] | undefined = undefined
  /** Inputs waiting for the next drain; none allocated while idle. */
  inbox: Input[] | undefined = undefined
  constructor(
    key: string,
    readonly handle: EngineSession,
    readonly send: WidgetSink
  ) {
    super(key)
  }
}

export type CloseListener = (reason: string) => void

/**
 * Adds a close listener; returns the function that removes it. Most sessions have exactly one
 * (their transport's), kept bare: an array of one would cost its header and its store per session.
 */
export const addCloseListener = (entry: Entry, listener: CloseListener): (() => void) => {
  const listeners = entry.closeListeners
  if (listeners === undefined) entry.closeListeners = listener
  else if (typeof listeners === "function") entry.closeListeners = [listeners, listener]
  else listeners.push(listener)
  return () => {
    const now = entry.closeListeners
    if (now === listener) entry.closeListeners = undefined
    else if (Array.isArray(now)) {
      const at = now.indexOf(listener)
      if (at >= 0) now.splice(at, 1)
    }
  }
}

/** The close listeners, in the order they were added (a copy: one may unsubscribe another meanwhile). */
export const closeListenersOf = (entry: Entry): ReadonlyArray<CloseListener> => {
  const listeners = entry.closeListeners
  return listeners === undefined ? [] : typeof listeners === "function" ? [listeners] : [...listeners]
}

/** A session's work with its client, made at first use (most sessions never have any). */
export interface ClientWork {
  /** Client hooks and custom actions at work, by ticket. */
  calls: Map<number, HookCall> | undefined
  /** The client's toWidget requests waiting for the widget. */
  requests: PendingRequests | undefined
}

/** The widget's origin, as the session was opened with it (kept in its config, not twice). */
export const originOf = (entry: Entry): string | undefined => entry.context.state.config.origin

/** Forgets a client call at work; false when it was not (cancelled, or already answered). */
export const settleClientCall = (entry: Entry, ticket: number): boolean => {
  const calls = entry.client?.calls
  if (calls?.delete(ticket) !== true) return false
  if (calls.size === 0) entry.client!.calls = undefined
  return true
}

/** Forgets an open prompt; false when it was not open. */
export const settleApproval = (entry: Entry, ticket: number): boolean => {
  const approvals = entry.approvals
  if (approvals?.delete(ticket) !== true) return false
  if (approvals.size === 0) entry.approvals = undefined
  return true
}
