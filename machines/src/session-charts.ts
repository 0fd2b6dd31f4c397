/**
 * The one runtime: every session of an engine is the `sessionMachine` chart, run by xstate's own
 * transition algorithm (`machine.transition(snapshot, event, scope)`, what an actor runs) on one
 * actor scope shared by all of them. A session is its snapshot, nothing more: an xstate actor
 * per session would add about 2 KB each (mailbox, observers, a scope of closures, an actor
 * system of its own) for machinery the engine already has (its inboxes batch and order the
 * inputs, its timer queue keeps the timers).
 *
 * Delayed events (`after`, delayed raises) go to the scope's scheduler, which keeps them in the
 * engine's timer queue (one clock timer for all sessions); a fired one is sent to its session
 * like any event. Actions run as the transition selects them; what they defer (scheduling,
 * cancelling) runs right after the transition, as in an actor.
 *
 * Two shortcuts skip macrostep's per-event search where its result is known, each held equal
 * to it by a property test (`macrostepAlways` turns both off): a plain `inputs` transition is
 * its one action, and, when given a recorder (`recorded`), any other step taken before from the
 * same configuration is replayed from its recording (`recorded-steps.ts`).
 */
import type { Command, CoreCaches } from "@widgethost/core"
import type { AnyActorRef, EventObject, SnapshotFrom } from "xstate"
import { type SessionEvent, type SessionInput, sessionMachine } from "./session-machine.ts"
import type { RecordedSteps } from "./recorded-steps.ts"
import { Scheduled, type TimerQueue } from "./timer-queue.ts"
import { truncate } from "./truncate.ts"

type Snapshot = SnapshotFrom<typeof sessionMachine>
/** The actor scope xstate's transition algorithm runs a session's chart in. */
type Scope = Parameters<typeof sessionMachine.transition>[2]

type PlainAction = (args: { context: Snapshot["context"]; event: SessionEvent; self: unknown; system: unknown }, params: unknown) => void
interface PlainTransition {
  readonly exec: PlainAction
  readonly params: unknown
}

/** Per atomic state: its `inputs` transition when that is one unguarded, targetless plain action. */
const plainTransitions = new Map<unknown, PlainTransition | null>()

const plainTransition = (snapshot: Snapshot): PlainTransition | undefined => {
  const leaf = snapshot._nodes[snapshot._nodes.length - 1]
  let known = plainTransitions.get(leaf)
  if (known === undefined) {
    known = null
    // xstate takes the deepest state's transition for the event: find it the same way.
    for (let node = leaf; node !== undefined && known === null; node = node.parent) {
      const list = node.transitions.get("inputs")
      if (list === undefined) continue
      const only = list.length === 1 ? list[0]! : undefined
      const action = only?.actions.length === 1 ? (only.actions[0] as { type?: unknown; params?: unknown }) : undefined
      const exec = typeof action?.type === "string" ? (sessionMachine.implementations.actions[action.type] as unknown) : undefined
      const plain = only !== undefined && only.guard === undefined && only.target === undefined && typeof exec === "function" && !("resolve" in exec)
      known = plain ? { exec: exec as PlainAction, params: action!.params } : null
      break
    }
    plainTransitions.set(leaf, known)
  }
  return known ?? undefined
}

/**
 * One session: its chart's snapshot, kept as two parts, and its armed delayed events. `base` is
 * the configuration (value, status, state nodes): after a replayed step, the recorded snapshot
 * that every session in that configuration shares, whose `context` is undefined; after a
 * macrostep, this session's own snapshot. `context` is always this session's. A replay then
 * costs a session no snapshot object of its own (about 170 B each, fifteen fields).
 */
export class ChartSession {
  /**
   * The armed delayed events, a list linked through `DelayedEvent.next` (a chart arms at most a
   * few, one per id): an armed timer costs its entry alone, no array per session.
   */
  armed: DelayedEvent | undefined = undefined
  /** The chart's configuration; its `context`, when not undefined, is this session's (see the class). */
  base: Snapshot = undefined as unknown as Snapshot
  context: Snapshot["context"] = undefined as unknown as Snapshot["context"]
  constructor(readonly key: string) {}

  /** The whole snapshot, as xstate makes them: `base` itself, or `base` with this session's context. */
  get snapshot(): Snapshot {
    const base = this.base
    return base.context === undefined ? { ...base, context: this.context } : base
  }

  set snapshot(snapshot: Snapshot) {
    this.base = snapshot
    if (snapshot.context !== undefined) this.context = snapshot.context
  }

  /** The armed delayed events, first armed first; undefined while none is (for tests and tools). */
  get timers(): ReadonlyArray<DelayedEvent> | undefined {
    const timers: DelayedEvent[] = []
    for (let timer = this.armed; timer !== undefined; timer = timer.next) timers.push(timer)
    return timers.length === 0 ? undefined : timers
  }
}

/** A delayed chart event, waiting in the timer queue. */
class DelayedEvent extends Scheduled {
  /** The session's next armed event (see `ChartSession.armed`). */
  next: DelayedEvent | undefined = undefined
  constructor(
    readonly charts: SessionCharts,
    readonly session: ChartSession,
    readonly id: string,
    readonly event: EventObject
  ) {
    super()
  }
  fire(): void {
    this.charts.fired(this)
  }
}

export interface SessionChartsOptions {
  readonly timers: TimerQueue
  /** Where every session's actions put their commands; drained by the caller after each send. */
  readonly outbox: Command[]
  /** The caches every session's steps are handed: the engine's, shared with its router. */
  readonly caches: CoreCaches
  /** A delayed event is due for `session` (the engine runs its waiting inputs first, then `send`s it). */
  readonly onDelayed: (session: ChartSession, event: SessionEvent) => void
  /** Tests: every delayed event armed, cancelled or fired. */
  readonly trace?: (key: string, what: "armed" | "cancelled" | "fired", id: string) => void
  /**
   * Tests: take every event through xstate's macrostep, with no shortcut: neither for plain
   * `inputs` transitions nor replaying recorded steps (property tests hold both equal to it).
   * Default false.
   */
  readonly macrostepAlways?: boolean
  /**
   * xstate's steps recorded once and replayed (`recorded-steps.ts`; `createEngine` passes the
   * shared `recordedSteps`). Absent: every step but a plain `inputs` one goes through macrostep,
   * the same behaviour without the recorder's code in the bundle.
   */
  readonly recorded?: RecordedSteps
}

export class SessionCharts {
  private current: ChartSession | undefined
  private readonly deferred: Array<() => void> = []
  private readonly scope: Scope
  /** xstate's steps recorded for replay; none when every event goes through macrostep. */
  private readonly recorded: RecordedSteps | undefined
  /** What a plain `inputs` action is called with (see `send`). */
  private readonly plainArgs: Parameters<PlainAction>[0]

  constructor(private readonly options: SessionChartsOptions) {
    const scheduler = {
      schedule: (_source: AnyActorRef, _target: AnyActorRef, event: EventObject, delay: number, id: string) => this.schedule(event, delay, id),
      cancel: (_source: AnyActorRef, id: string) => this.cancel(this.current!, id),
      cancelAll: () => this.cancelAll(this.current!)
    }
    // The scope xstate's transition algorithm needs. No session has children or invokes, so the
    // system is only the scheduler (and a silent inspector); `self` is never sent to.
    const system = { scheduler, _sendInspectionEvent: () => {}, _clock: undefined, _logger: () => {} }
    this.scope = {
      self: undefined as unknown as Scope["self"],
      id: "session",
      sessionId: "session",
      logger: () => {},
      defer: (fn) => void this.deferred.push(fn),
      emit: () => {},
      system: system as unknown as Scope["system"],
      stopChild: () => {},
      actionExecutor: (action) => action.exec?.(action.info, action.params)
    }
    this.plainArgs = { context: undefined as never, event: undefined as never, self: this.scope.self, system: this.scope.system }
    this.recorded = options.macrostepAlways !== true && options.recorded?.enabled === true ? options.recorded : undefined
  }

  /** `session`, a new one (perhaps of a subclass carrying what its owner keeps beside the chart), starts in `loading`. */
  open<S extends ChartSession>(session: S, input: Omit<SessionInput, "outbox" | "caches">): S {
    const full = { ...input, outbox: this.options.outbox, caches: this.options.caches }
    const recorded = this.recorded
    this.enter(session, () => {
      if (recorded === undefined) return sessionMachine.getInitialSnapshot(this.scope, full)
      const { base, context } = recorded.initial(full, this.scope)
      session.context = context
      return base
    })
    return session
  }

  /** Runs one event through the session's chart, now. A session in its final state takes none. */
  send(session: ChartSession, event: SessionEvent): void {
    if (session.base.status !== "active") return
    const plain = event.type === "inputs" && this.options.macrostepAlways !== true ? plainTransition(session.base) : undefined
    if (plain !== undefined) {
      // The state's `inputs` transition is one unguarded, targetless plain action: taking it is
      // running that action (no exit, entry, context copy or eventless step follows), which is
      // what xstate's macrostep would do, without its per-event allocations.
      // One arguments object for every plain step (an action cannot start another step, so it is
      // never in use twice); emptied after, so it keeps no session's context alive.
      const args = this.plainArgs
      args.context = session.context
      args.event = event
      try {
        plain.exec(args, plain.params)
      } finally {
        args.context = undefined as never
        args.event = undefined as never
      }
    } else {
      this.step(session, event)
    }
    // What the actions raised, in order, each before what it raises in turn (xstate's internal queue).
    const raised = session.context.raised
    if (raised === undefined) return
    while (raised.length > 0 && session.base.status === "active") this.step(session, raised.shift()!)
    session.context.raised = undefined
  }

  /** One event through xstate's transition, or its recording when this step was taken before. */
  private step(session: ChartSession, event: SessionEvent): void {
    const recorded = this.recorded
    // xstate's own events (init, stop, errors) have rules of their own in macrostep; its delayed
    // `after` events have none (the negotiation timer's ticks are replayed like any step).
    if (recorded === undefined || (event.type.startsWith("xstate.") && !event.type.startsWith("xstate.after."))) return this.enter(session, () => sessionMachine.transition(session.snapshot, event, this.scope))
    this.enter(session, () => {
      const snapshot = session.snapshot
      // xstate's own selection, guards included (kept where none could apply); this chart has no parallel states, so at most one.
      const [transition, ...more] = recorded.select(snapshot, event)
      // No transition: macrostep would keep the snapshot and run nothing (the chart has no eventless transitions).
      if (transition === undefined) return session.base
      if (more.length > 0) return sessionMachine.transition(snapshot, event, this.scope)
      const step = recorded.find(snapshot, transition)
      if (step === undefined) return recorded.record(snapshot, event, transition, this.scope)
      if (step === null) return sessionMachine.transition(snapshot, event, this.scope)
      const next = recorded.replay(snapshot, event, step, this.scope)
      // The configuration kept: the base stays (shared, if it was), not the copy made for the step.
      return next === snapshot ? session.base : next
    })
  }

  /** Cancels whatever the session still has armed (a closed chart has none left). */
  stop(session: ChartSession): void {
    this.cancelAll(session)
  }

  /** Called by the timer queue. */
  fired(timer: DelayedEvent): void {
    this.forget(timer)
    this.options.trace?.(timer.session.key, "fired", timer.id)
    this.options.onDelayed(timer.session, timer.event as SessionEvent)
  }

  private enter(session: ChartSession, transition: () => Snapshot): void {
    const outer = this.current
    const timers = this.options.timers
    this.current = session
    // A step that leaves a state cancels its timer and arms the next state's: one clock timer throughout.
    timers.hold()
    try {
      // A recorded snapshot (context undefined) becomes the base; this session's context stays.
      session.snapshot = transition()
      // What the transition deferred (delayed events armed and cancelled), as an actor runs it.
      for (let i = 0; i < this.deferred.length; i++) this.deferred[i]!()
    } finally {
      truncate(this.deferred)
      this.current = outer
      timers.release()
    }
  }

  private schedule(event: EventObject, delay: number, id: string): void {
    const session = this.current!
    // Re-arming an id replaces it: one timer per id, as the chart's ids are meant.
    this.cancel(session, id)
    const timer = new DelayedEvent(this, session, id, event)
    // Appended, so the list keeps the order they were armed in.
    if (session.armed === undefined) session.armed = timer
    else {
      let last = session.armed
      while (last.next !== undefined) last = last.next
      last.next = timer
    }
    this.options.trace?.(session.key, "armed", id)
    this.options.timers.schedule(timer, delay)
  }

  private cancel(session: ChartSession, id: string): void {
    let timer = session.armed
    while (timer !== undefined && timer.id !== id) timer = timer.next
    if (timer === undefined) return
    this.options.timers.cancel(timer)
    this.forget(timer)
    this.options.trace?.(session.key, "cancelled", id)
  }

  private cancelAll(session: ChartSession): void {
    while (session.armed !== undefined) this.cancel(session, session.armed.id)
  }

  private forget(timer: DelayedEvent): void {
    const session = timer.session
    if (session.armed === timer) session.armed = timer.next
    else {
      let before = session.armed
      while (before !== undefined && before.next !== timer) before = before.next
      if (before === undefined) return
      before.next = timer.next
    }
    timer.next = undefined
  }
}
