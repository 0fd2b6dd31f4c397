import { type CoreCaches, SPARE_COLLECTIONS } from "../core-caches.ts"
import type { WidgetMessage } from "../envelope.ts"
import { frozenEmptyMap, frozenEmptySet } from "../frozen-empty.ts"
import type { HomeserverRequest } from "../homeserver-port.ts"
import { errorBody, type ProtocolError } from "../protocol-error.ts"
import type { Command, Report } from "./command.ts"
import type { Counters, Gather, PendingCall, PendingToWidget, Phase, RawRequest, SessionState, ToWidgetPurpose } from "./state.ts"

/** The next state and what the edges must do, in order. */
export interface Step {
  readonly state: SessionState
  readonly commands: ReadonlyArray<Command>
}

/**
 * What a handler tells the session chart: something happened that the chart, not the handler,
 * turns into a phase change (the chart's transitions say where each leads, and from where).
 */
export type ChartSignal =
  /** The frame fired `load` (start or new document: the chart's guards decide). */
  | { readonly type: "frame.loaded" }
  /** The widget said `content_loaded`; `raw` is the request to acknowledge. */
  | { readonly type: "widget.contentLoaded"; readonly raw: RawRequest }
  /** A prompt is open: the chart waits for its answer (or its timeout). */
  | { readonly type: "negotiation.prompted" }
  /** The approved set is settled for now and notified: the chart serves. */
  | { readonly type: "negotiation.granted" }
  | { readonly type: "close"; readonly reason: string }

/** Delayed chart events a step asks to arm (the chart owns them: see `session-machine.ts`). */
export interface ArmRequests {
  /** A toWidget request is pending and no timeout sweep is armed. */
  sweep: boolean
  /** The first MSC2974 request of a rate window: arm the window's end. */
  window: boolean
}

/**
 * Accumulates one step. It is mutable, but lives only inside one handler call, so a handler
 * is a function of the state and input it is given (plus the phase the chart is in).
 */
export class Stepper {
  /** Where commands go (an outbox the caller drains), or a fresh list. */
  commands!: Command[]
  /**
   * Signals for the chart, in order; the chart acts on each before the rest of the batch.
   * Undefined until the first: most steps signal nothing, and this is allocated per step.
   */
  signals!: ChartSignal[] | undefined
  /** What the step asks the chart to arm (`armSweep`, `armWindow`); undefined while nothing, as `signals`. */
  arm!: ArmRequests | undefined
  /** The chart's phase while this step runs (the chart changes it between steps, never during one). */
  phase!: Phase
  /** The engine's caches (see `core-caches.ts`): what makes a step fast is passed in, not kept here. */
  caches!: CoreCaches
  private base!: SessionState
  /** This step's private copy of the state, made on the first write. */
  private draft: Mutable<SessionState> | undefined
  /** Per collection, the copy this step owns (identity, so a collection replaced by `set` is not). */
  private ownedCounters: unknown
  private ownedPendingToWidget: unknown
  private ownedPendingCalls: unknown
  private ownedInFlight: unknown

  /**
   * With `inPlace` (what `stepInPlace` passes), the caller hands the state over and promises never
   * to look at it again (the session chart does): the step then writes into it in place instead
   * of copying, like a transient. Collections shared by every fresh state (the
   * frozen empty ones) are still copied on first write.
   */
  constructor(base: SessionState, phase: Phase, caches: CoreCaches, inPlace = false, commands: Command[] = []) {
    this.reset(base, phase, caches, commands)
    if (inPlace) this.own(base)
  }

  /**
   * Starts a new step in place on this Stepper, as `new Stepper(base, phase, caches, true, commands)`
   * would: for a caller that runs one step at a time and reuses one Stepper for all (the chart).
   */
  beginInPlace(base: SessionState, phase: Phase, caches: CoreCaches, commands: Command[]): this {
    this.reset(base, phase, caches, commands)
    this.own(base)
    return this
  }

  /** Every field written here, in one order, so a Stepper reused by `beginInPlace` keeps its shape. */
  private reset(base: SessionState, phase: Phase, caches: CoreCaches, commands: Command[]): void {
    this.commands = commands
    this.signals = undefined
    this.arm = undefined
    this.phase = phase
    this.caches = caches
    this.base = base
    this.draft = undefined
    this.ownedCounters = undefined
    this.ownedPendingToWidget = undefined
    this.ownedPendingCalls = undefined
    this.ownedInFlight = undefined
  }

  private own(base: SessionState): void {
    this.draft = base
    // Identity, not a lookup: this runs once per step on the hot path.
    this.ownedCounters = base.counters === noCounters ? undefined : base.counters
    this.ownedPendingToWidget = base.pendingToWidget === emptyPendingToWidget ? undefined : base.pendingToWidget
    this.ownedPendingCalls = base.pendingCalls === emptyPendingCalls ? undefined : base.pendingCalls
    this.ownedInFlight = base.inFlight === emptyInFlight ? undefined : base.inFlight
  }

  get state(): SessionState {
    return this.draft ?? this.base
  }

  private write(): Mutable<SessionState> {
    return (this.draft ??= { ...this.base })
  }

  set(patch: Partial<SessionState>): void {
    Object.assign(this.write(), patch)
  }

  count(counter: keyof Counters, by = 1): void {
    const draft = this.write()
    if (this.ownedCounters !== draft.counters) {
      draft.counters = copyCounters(draft.counters)
      this.ownedCounters = draft.counters
    }
    ;(draft.counters as Mutable<Counters>)[counter] += by
  }

  /** The pending toWidget map, copied once per step and then written in place. */
  private pendingToWidget(): Map<string, PendingToWidget> {
    const draft = this.write()
    if (this.ownedPendingToWidget !== draft.pendingToWidget) {
      // An empty source is the shared empty: a bare constructor is several times cheaper than a copy.
      draft.pendingToWidget = draft.pendingToWidget.size === 0 ? spareMap(this.caches) : new Map(draft.pendingToWidget)
      this.ownedPendingToWidget = draft.pendingToWidget
    }
    return draft.pendingToWidget as Map<string, PendingToWidget>
  }

  private pendingCalls(): Map<number, PendingCall> {
    const draft = this.write()
    if (this.ownedPendingCalls !== draft.pendingCalls) {
      draft.pendingCalls = draft.pendingCalls.size === 0 ? spareMap(this.caches) : new Map(draft.pendingCalls)
      this.ownedPendingCalls = draft.pendingCalls
    }
    return draft.pendingCalls as Map<number, PendingCall>
  }

  private inFlight(): Set<string> {
    const draft = this.write()
    if (this.ownedInFlight !== draft.inFlight) {
      draft.inFlight = draft.inFlight.size === 0 ? spareSet(this.caches) : new Set(draft.inFlight)
      this.ownedInFlight = draft.inFlight
    }
    return draft.inFlight as Set<string>
  }

  emit(command: Command): void {
    this.commands.push(command)
  }

  /** Tells the chart something it decides on (see `ChartSignal`). */
  signal(signal: ChartSignal): void {
    if (this.signals === undefined) this.signals = [signal]
    else this.signals.push(signal)
  }

  /** Asks the chart to arm the toWidget timeout sweep once this step is done. */
  armSweep(): void {
    ;(this.arm ??= { sweep: false, window: false }).sweep = true
  }

  /** Asks the chart to arm the end of the MSC2974 rate window once this step is done. */
  armWindow(): void {
    ;(this.arm ??= { sweep: false, window: false }).window = true
  }

  report(report: Report): void {
    this.commands.push({ _tag: "Report", report })
  }

  nextSeq(): number {
    const draft = this.write()
    return draft.seq++
  }

  /**
   * Sends a toWidget request and remembers it so its answer can be matched and timed out.
   * `request` is the client's id for purpose `client` (`session.request`).
   */
  sendRequest(action: string, data: object, purpose: ToWidgetPurpose, request?: number): string {
    const requestId = `wh-${this.nextSeq()}`
    const pending = this.pendingToWidget()
    if (!this.state.sweepArmed && purpose !== "capabilities") {
      // The capabilities request has its own timeout in the chart (`negotiating.asking`).
      this.write().sweepArmed = true
      this.armSweep()
    }
    if (pending.size >= this.state.config.limits.maxPendingToWidget) {
      // A widget that never acknowledges must not grow our memory: give up on its oldest request.
      const [oldestId, oldest] = pending.entries().next().value as [string, PendingToWidget]
      pending.delete(oldestId)
      this.count("timedOut")
      this.report({ _tag: "RequestTimedOut", action: oldest.action, requestId: oldestId })
      if (oldest.request !== undefined) this.emit({ _tag: "ClientRequestSettled", id: oldest.request, outcome: { _tag: "TimedOut", ms: this.state.config.limits.requestTimeoutMs } })
    }
    // A client's request is its own entry (it carries the client's id); the engine's share one per action.
    pending.set(requestId, request === undefined ? freshPending(this.caches, action, purpose) : { action, purpose, sweeps: 0, request })
    this.send({ api: "toWidget", widgetId: this.state.config.widgetId, requestId, action, data: data as Readonly<Record<string, unknown>> })
    return requestId
  }

  /**
   * Forgets an answered toWidget request. The sweep timer is left to run out rather than
   * cancelled: a widget that answers promptly would otherwise cost a timer cancel and re-arm per
   * message. The next sweep finds nothing and does not re-arm.
   */
  settle(requestId: string): void {
    this.pendingToWidget().delete(requestId)
  }

  send(message: WidgetMessage): void {
    this.count("sent")
    this.emit({ _tag: "SendToWidget", message })
  }

  /** Answers a widget's request: the request echoed with `response` added. */
  reply(raw: RawRequest, response: unknown): void {
    this.finish(raw)
    this.send(echo(raw, response))
  }

  fail(raw: RawRequest, error: ProtocolError): void {
    this.count("errors")
    this.reply(raw, errorBody(error))
  }

  /** Starts a call whose answer comes back as `CallAnswered` with the returned ticket. */
  call(request: HomeserverRequest, pending: PendingCall): number {
    const ticket = this.nextSeq()
    this.track(ticket, pending)
    this.emit({ _tag: "CallHomeserver", ticket, request })
    return ticket
  }

  track(ticket: number, pending: PendingCall): void {
    this.pendingCalls().set(ticket, pending)
  }

  untrack(ticket: number): PendingCall | undefined {
    const pending = this.state.pendingCalls.get(ticket)
    if (pending !== undefined) this.pendingCalls().delete(ticket)
    return pending
  }

  /** Records (or, with undefined, forgets) a multi-call gather. */
  putGather(id: number, gather: Gather | undefined): void {
    const gathers = new Map(this.state.gathers)
    if (gather === undefined) gathers.delete(id)
    else gathers.set(id, gather)
    this.set({ gathers })
  }

  /** Marks a widget request as being worked on (duplicate ids are refused meanwhile). */
  start(raw: RawRequest): void {
    this.inFlight().add(requestIdOf(raw))
  }

  private finish(raw: RawRequest): void {
    if (this.state.inFlight.size === 0) return
    const id = requestIdOf(raw)
    if (this.state.inFlight.has(id)) this.inFlight().delete(id)
  }

  done(): Step {
    return { state: this.end(), commands: this.commands }
  }

  /** The step's final state, as `done().state`, without building the `Step` (the chart keeps only the state). */
  end(): SessionState {
    // An idle session keeps no collections of its own: emptied ones go back to the shared empties.
    const draft = this.draft
    if (draft === undefined) return this.base
    // This step's own copies are referenced by nothing but the draft: an emptied one is kept for the next step that needs one.
    const { caches } = this
    if (draft.pendingToWidget.size === 0 && this.ownedPendingToWidget === draft.pendingToWidget) {
      keep(caches.spareMaps, draft.pendingToWidget)
      draft.pendingToWidget = emptyPendingToWidget
    }
    if (draft.pendingCalls.size === 0 && this.ownedPendingCalls === draft.pendingCalls) {
      keep(caches.spareMaps, draft.pendingCalls)
      draft.pendingCalls = emptyPendingCalls
    }
    if (draft.inFlight.size === 0 && this.ownedInFlight === draft.inFlight) {
      keep(caches.spareSets, draft.inFlight)
      draft.inFlight = emptyInFlight
    }
    return draft
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** An empty Map of the engine's spares (see `CoreCaches.spareMaps`), or a new one. */
const spareMap = <K, V>(caches: CoreCaches): Map<K, V> => (caches.spareMaps.pop() as Map<K, V> | undefined) ?? new Map<K, V>()
const spareSet = <T>(caches: CoreCaches): Set<T> => (caches.spareSets.pop() as Set<T> | undefined) ?? new Set<T>()
/** Keeps an emptied collection of this step's own for a later step, up to `SPARE_COLLECTIONS`. */
const keep = <T>(spares: T[], emptied: unknown): void => {
  if (spares.length < SPARE_COLLECTIONS) spares.push(emptied as T)
}

/**
 * A session's own counters, every field written out: a spread of the frozen `noCounters` keeps
 * four fields in the object and the rest in a separate property array (120 bytes, not 88).
 */
const copyCounters = (c: Counters): Counters => ({
  received: c.received,
  sent: c.sent,
  errors: c.errors,
  dropped: c.dropped,
  unmatched: c.unmatched,
  timedOut: c.timedOut,
  duplicates: c.duplicates,
  documents: c.documents
})

/**
 * The pending entry of a request that has survived no sweep yet, one per (action, purpose) in the
 * engine's caches: entries are immutable (a sweep replaces them), so a burst of deliveries shares
 * one instead of allocating one per message that lives as long as the widget takes to answer.
 * Bounded by the toWidget actions the engine itself sends.
 */
const freshPending = (caches: CoreCaches, action: string, purpose: ToWidgetPurpose): PendingToWidget => {
  let byPurpose = caches.freshPending.get(action)
  if (byPurpose === undefined) caches.freshPending.set(action, (byPurpose = new Map<ToWidgetPurpose, PendingToWidget>()))
  let entry = byPurpose.get(purpose)
  if (entry === undefined) byPurpose.set(purpose, (entry = Object.freeze({ action, purpose, sweeps: 0 })))
  return entry
}

/**
 * What every fresh state starts with, shared by all of them, so a step in place copies these
 * before its first write (it tells them by identity). Constants: the collections are frozen
 * empties whose writers throw (`frozen-empty.ts`), the counters a frozen object.
 */
export const noCounters: Counters = Object.freeze({ received: 0, sent: 0, errors: 0, dropped: 0, unmatched: 0, timedOut: 0, duplicates: 0, documents: 0 })
export const emptyPendingToWidget: ReadonlyMap<string, PendingToWidget> = frozenEmptyMap()
export const emptyPendingCalls: ReadonlyMap<number, PendingCall> = frozenEmptyMap()
export const emptyInFlight: ReadonlySet<string> = frozenEmptySet()

/**
 * `{ ...raw, response }`: the request echoed with `response` added. `Object.assign` does the same
 * copy several times faster on V8, whose object spread of a cloned or parsed message takes a slow
 * path (~0.5 µs a reply). It would run the `__proto__` setter for an own `__proto__` key, which
 * JSON.parse can produce; spread defines that key instead, so such a message takes the spread.
 */
const echo = (raw: RawRequest, response: unknown): WidgetMessage => {
  const out: Record<string, unknown> = Object.hasOwn(raw, "__proto__") ? { ...raw } : Object.assign({}, raw)
  out["response"] = response
  return out as unknown as WidgetMessage
}

export const requestIdOf = (raw: RawRequest): string => (typeof raw.requestId === "string" ? raw.requestId : String(raw.requestid))
