/**
 * The lifecycle of one registered widget, as a pure machine: whether it has a session, whether
 * that session is live or suspended waiting for the widget to come back, whether a connection is
 * up, and how many messages the widget has not heard of. `stepLifecycle` takes the state and one
 * event and returns the next state with the effects the transport carries out, in order. No
 * sockets, timers or sessions here: the transport's I/O (registration-io.ts) owns those and feeds
 * events in, and a model test (registration-lifecycle.test.ts) walks random event sequences
 * against the rules of the package README.
 *
 * The message path (queueing, backpressure, writes) stays in the transport: it runs per message
 * and decides nothing about the lifecycle, except that an overflow is reported here as an event.
 */
import { endingFor, type LinkEndCause, type LinkEnding } from "./link-endings.ts"

export interface LifecycleState {
  readonly session: "none" | "live" | "suspended"
  readonly linked: boolean
  /** Set once the widget is unregistered or the transport closes: no session ever again. */
  readonly retired: "unregistered" | "shutting-down" | undefined
  /** Messages dropped since the widget last heard from us, announced on its next connection. */
  readonly dropped: number
}

export const initialLifecycle: LifecycleState = { session: "none", linked: false, retired: undefined, dropped: 0 }

export interface LifecycleConfig {
  /** 0: a link that ends closes the session (no resuming). */
  readonly resumeGraceMs: number
  readonly onDuplicate: "refuse" | "replace"
}

export type LifecycleEvent =
  /** A new socket for this widget passed the upgrade checks. */
  | { readonly _tag: "Connected" }
  /** The current link ended, for this cause. */
  | { readonly _tag: "LinkEnded"; readonly cause: LinkEndCause }
  /** `open` threw: there is no session. */
  | { readonly _tag: "OpenFailed" }
  /** The outbound queue went over its limit and its backlog of `dropped` messages was dropped. */
  | { readonly _tag: "Overflowed"; readonly dropped: number }
  /**
   * Written toWidget requests left unanswered past the limit were forgotten: a resume cannot
   * deliver them again. Nothing is wrong with the link (they most likely arrived), but if it
   * drops, the widget hears of them in the gap notice.
   */
  | { readonly _tag: "Forgotten"; readonly count: number }
  | { readonly _tag: "GraceExpired" }
  /** The engine closed the session itself. */
  | { readonly _tag: "SessionClosed"; readonly reason: string }
  | { readonly _tag: "Retire"; readonly why: "unregistered" | "shutting-down" }

export type LifecycleEffect =
  | { readonly _tag: "OpenSession" }
  /** The session is over for the transport: stop its sends, drop its queue; `close` it if `reason` is given. */
  | { readonly _tag: "ForgetSession"; readonly reason?: string }
  /** Tell the session its link is down (deferred by the transport: never inside the session's own step). */
  | { readonly _tag: "TransportDown" }
  | { readonly _tag: "TransportUp" }
  | { readonly _tag: "ArmGrace" }
  | { readonly _tag: "CancelGrace" }
  /** End the current link (`which: "current"`) or refuse the one that just connected (`"new"`). */
  | { readonly _tag: "EndLink"; readonly which: "current" | "new"; readonly ending: LinkEnding }
  /** Put the gap notice for `dropped` messages at the head of the queue. */
  | { readonly _tag: "AnnounceGap"; readonly dropped: number }
  /**
   * Put the toWidget requests written to an earlier link and not yet answered back at the head of
   * the queue, in the order they were first written: that link may have dropped them unread, and
   * they are older than anything queued. The widget dedupes them by request id.
   */
  | { readonly _tag: "Redeliver" }
  /** Write what waits in the queue, as far as the socket takes it. */
  | { readonly _tag: "Flush" }
  /** Write everything that waits, whatever the socket's buffer (the session's last words). */
  | { readonly _tag: "FlushAll" }
  | { readonly _tag: "Resumed" }
  | { readonly _tag: "Expired" }

export interface LifecycleStep {
  readonly state: LifecycleState
  readonly effects: ReadonlyArray<LifecycleEffect>
}

const retiredCause = (why: "unregistered" | "shutting-down"): LinkEndCause => (why === "unregistered" ? { _tag: "Unregistered" } : { _tag: "ShuttingDown" })

export const stepLifecycle = (state: LifecycleState, event: LifecycleEvent, config: LifecycleConfig): LifecycleStep => {
  const effects: Array<LifecycleEffect> = []
  const next = { ...state }

  /** The current link is gone; the ending says what becomes of the session. */
  const endCurrent = (cause: LinkEndCause) => {
    const ending = endingFor(cause)
    effects.push({ _tag: "EndLink", which: "current", ending })
    next.linked = false
    if (next.session === "none" || ending.after === "keep") return
    if (ending.after === "end-session") return forget(ending.reason)
    if (config.resumeGraceMs <= 0) return forget("transport: the widget disconnected")
    if (next.session === "live") {
      next.session = "suspended"
      effects.push({ _tag: "ArmGrace" }, { _tag: "TransportDown" })
    }
  }

  const forget = (reason?: string) => {
    if (next.session === "suspended") effects.push({ _tag: "CancelGrace" })
    effects.push(reason === undefined ? { _tag: "ForgetSession" } : { _tag: "ForgetSession", reason })
    next.session = "none"
    next.dropped = 0
  }

  switch (event._tag) {
    case "Connected": {
      if (state.retired !== undefined) {
        effects.push({ _tag: "EndLink", which: "new", ending: endingFor(retiredCause(state.retired)) })
        break
      }
      if (state.linked) {
        if (config.onDuplicate === "refuse") {
          effects.push({ _tag: "EndLink", which: "new", ending: endingFor({ _tag: "AlreadyConnected" }) })
          break
        }
        // Replaced: the same session carries on over the new link, with no gap to announce; what
        // the old link may not have delivered goes again.
        effects.push({ _tag: "EndLink", which: "current", ending: endingFor({ _tag: "Replaced" }) })
        if (state.session !== "none") effects.push({ _tag: "Redeliver" }, { _tag: "Flush" })
        break
      }
      next.linked = true
      if (state.session === "none") {
        next.session = "live"
        effects.push({ _tag: "OpenSession" })
        break
      }
      // Resume: cancel the window; the widget hears first of what was dropped (the notice goes to
      // the head of the queue after the requests to deliver again), then what the last link may
      // have lost, then the backlog, then live traffic.
      effects.push({ _tag: "Resumed" })
      if (state.session === "suspended") effects.push({ _tag: "CancelGrace" })
      effects.push({ _tag: "Redeliver" })
      if (state.dropped > 0) effects.push({ _tag: "AnnounceGap", dropped: state.dropped })
      next.dropped = 0
      effects.push({ _tag: "Flush" })
      if (state.session === "suspended") effects.push({ _tag: "TransportUp" })
      next.session = "live"
      break
    }
    case "LinkEnded":
      if (state.linked) endCurrent(event.cause)
      break
    case "OpenFailed":
      // Nothing to close (open threw), but whatever it may have sent is stale.
      if (state.session !== "none") forget()
      if (state.linked) endCurrent({ _tag: "OpenFailed" })
      break
    case "Overflowed":
      // Only a session's sends fill the queue.
      if (state.session === "none") break
      next.dropped = state.dropped + event.dropped
      if (state.linked) endCurrent({ _tag: "Overflow", dropped: next.dropped })
      break
    case "Forgotten":
      if (state.session !== "none") next.dropped = state.dropped + event.count
      break
    case "GraceExpired":
      if (state.session === "suspended") {
        effects.push({ _tag: "Expired" })
        next.session = "none"
        next.dropped = 0
        effects.push({ _tag: "ForgetSession", reason: `transport: the widget did not reconnect within ${config.resumeGraceMs} ms` })
      }
      break
    case "SessionClosed":
      if (state.session === "none") break
      // What the session said last goes out before the close frame.
      if (state.linked) effects.push({ _tag: "FlushAll" })
      forget()
      if (state.linked) {
        effects.push({ _tag: "EndLink", which: "current", ending: endingFor({ _tag: "SessionClosed", reason: event.reason }) })
        next.linked = false
      }
      break
    case "Retire":
      if (state.retired !== undefined) break
      next.retired = event.why
      if (state.session !== "none") forget(event.why === "unregistered" ? "widget unregistered" : "transport closed")
      if (state.linked) {
        effects.push({ _tag: "EndLink", which: "current", ending: endingFor(retiredCause(event.why)) })
        next.linked = false
      }
      break
  }
  return { state: next, effects }
}
