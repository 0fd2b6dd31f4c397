/**
 * xstate's steps of the session chart, recorded once and replayed. In this chart, which actions
 * a step runs and which configuration it ends in depend only on the configuration it starts in
 * and the transition xstate's guards select: it has no history or parallel states, no eventless
 * transitions, no invokes, and its actions neither choose actions (`enqueueActions`) nor replace
 * the context (`assign`); its raises are all delayed. `chartIsReplayable` checks exactly that
 * on the chart's definition, and nothing is recorded unless it holds.
 *
 * So the first time a session takes a transition from a configuration, xstate's macrostep runs
 * it as usual and the runtime records what it did: the actions it executed, in order, and the
 * snapshot it ended in. Every later time, the recording is replayed: the same actions, the
 * delayed ones resolved afresh for this session (a delay reads the session's limits), and a
 * snapshot like the recorded one with this session's context. That skips what macrostep spends
 * finding exit and entry sets, conflicts and eventless transitions again on every step (about
 * 10 µs each, several per negotiation). Guards still run every time, in xstate
 * (`getTransitionData`); a selection with no guard on the way is asked of xstate once. A step that was not exactly one microstep of replayable actions is not
 * recorded, and keeps going through macrostep.
 */
import type { AnyActorScope, AnyStateNode, EventObject, SnapshotFrom } from "xstate"
import { type SessionInput, sessionMachine } from "./session-machine.ts"

type Snapshot = SnapshotFrom<typeof sessionMachine>
type Scope = Parameters<typeof sessionMachine.transition>[2]
type Transition = ReturnType<typeof sessionMachine.getTransitionData>[number]

/** What xstate hands its action executor. */
interface ExecutedAction {
  readonly type: string
  readonly info: unknown
  readonly params: unknown
  readonly exec: ((info: unknown, params: unknown) => void) | undefined
}

/** xstate's delayed `raise` and `cancel`, as the chart's definition holds them. */
interface Builtin {
  readonly type: string
  readonly id?: unknown
  readonly delay?: unknown
  readonly sendId?: unknown
  readonly resolve: (scope: AnyActorScope, snapshot: Snapshot, args: unknown, params: unknown, action: unknown, extra: unknown) => [Snapshot, unknown, unknown]
  readonly execute: (scope: AnyActorScope, params: unknown) => void
}

type RecordedAction = { readonly exec: (info: unknown, params: unknown) => void; readonly params: unknown } | { readonly builtin: Builtin }

export interface RecordedStep {
  readonly actions: ReadonlyArray<RecordedAction>
  /** The snapshot the step ended in, when it changed the configuration; undefined when it kept the snapshot. */
  readonly ended: Snapshot | undefined
}

const isBuiltin = (action: unknown): action is Builtin => typeof action === "function" && "resolve" in action
const isPlainImplementation = (type: unknown): boolean => {
  const exec = typeof type === "string" ? (sessionMachine.implementations.actions[type] as unknown) : undefined
  return typeof exec === "function" && !("resolve" in exec)
}
/** An action the replay can run as xstate would: a plain one, a delayed raise, or a cancel by id. */
const replayable = (action: unknown): boolean => {
  if (isBuiltin(action)) return (action.type === "xstate.raise" && action.delay !== undefined && typeof action.id === "string") || (action.type === "xstate.cancel" && typeof action.sendId === "string")
  const type = typeof action === "string" ? action : (action as { type?: unknown } | null)?.type
  const params = (action as { params?: unknown } | null)?.params
  return isPlainImplementation(type) && typeof params !== "function"
}

/** A fresh session's children and history: empty, and frozen so that a write fails loudly instead of reaching every session. */
const noChildren: Snapshot["children"] = /* @__PURE__ */ Object.freeze({})
const noHistory: Snapshot["historyValue"] = /* @__PURE__ */ Object.freeze({})

const noSpawn = (): never => {
  throw new Error("widgethost: the session chart spawns no actors")
}

const nodesOf = (node: AnyStateNode): AnyStateNode[] => [node, ...Object.values(node.states).flatMap(nodesOf)]

/** The chart's definition is inside the shape whose steps depend on nothing but configuration and transition. */
const chartIsReplayable = (): boolean =>
  nodesOf(sessionMachine.root).every(
    (node) =>
      (node.type === "atomic" || node.type === "compound" || node.type === "final") &&
      node.always === undefined &&
      node.invoke.length === 0 &&
      [...node.entry, ...node.exit, ...(node.type === "compound" ? node.initial.actions : [])].every(replayable) &&
      [...node.transitions.values()].flat().every((t) => t.actions.every(replayable))
  )

/** No transition that could match `type` on `leaf` or any state above it has a guard. */
const unguardedFor = (leaf: AnyStateNode, type: string): boolean => {
  for (let node: AnyStateNode | undefined = leaf; node !== undefined; node = node.parent) {
    for (const [descriptor, transitions] of node.transitions) {
      const mayMatch = descriptor === type || descriptor.includes("*")
      if (mayMatch && transitions.some((t) => t.guard !== undefined)) return false
    }
  }
  return true
}

export class RecordedSteps {
  /** Off when the chart's definition is outside the replayable shape. */
  readonly enabled = chartIsReplayable()
  /** By configuration (its deepest state) and the transition taken; null: not replayable. */
  private readonly steps = new Map<AnyStateNode, Map<Transition, RecordedStep | null>>()
  /** By configuration (its deepest state) and event type, xstate's selection; null: guarded, asked every time. */
  private readonly selections = new Map<AnyStateNode, Map<string, ReadonlyArray<Transition> | null>>()
  /** The first session's initial snapshot, without its context; null: not replayable. */
  private initialSnapshot: Snapshot | null | undefined

  /**
   * A session's initial snapshot. Recorded like a step: when xstate's first one ran no action
   * and took no step after entering the initial states (the chart's `loading` has no entry
   * actions and no timers), the later ones are that snapshot with the new session's context,
   * made by the chart's own context factory as xstate's initial `assign` makes it.
   */
  initial(input: SessionInput, scope: Scope): { readonly base: Snapshot; readonly context: Snapshot["context"] } {
    if (this.initialSnapshot === undefined) {
      const [snapshot, executed, microsteps] = this.recording(scope, () => sessionMachine.getInitialSnapshot(scope, input))
      const context = sessionMachine.config.context
      const quiet = executed.length === 0 && microsteps === 0 && snapshot.status === "active" && typeof context === "function"
      // Fresh children and history: empty ones, shared (xstate copies both before writing either,
      // and this chart neither spawns nor has history states), instead of two objects per session.
      this.initialSnapshot = quiet ? { ...snapshot, context: undefined as unknown as Snapshot["context"], children: noChildren, historyValue: noHistory } : null
      return { base: snapshot, context: snapshot.context }
    }
    if (this.initialSnapshot === null) {
      const snapshot = sessionMachine.getInitialSnapshot(scope, input)
      return { base: snapshot, context: snapshot.context }
    }
    const factory = sessionMachine.config.context as (args: { input: SessionInput; self: unknown; spawn: unknown }) => Snapshot["context"]
    // xstate's initial assign copies the factory's object onto an empty context. The snapshot
    // itself is the recorded one, shared by every session (its context undefined: see ChartSession).
    return { base: this.initialSnapshot, context: { ...factory({ input, self: scope.self, spawn: noSpawn }) } }
  }

  /**
   * The transitions xstate selects for `event` from `snapshot`'s configuration
   * (`getTransitionData`). Where no transition that could match the event's type, on the deepest
   * state or any state above it, has a guard, that selection depends on the configuration and
   * the event's type alone: it is asked of xstate once and kept (the candidates are
   * xstate's to find, wildcards included; a descriptor with a `*` counts as matching).
   */
  select(snapshot: Snapshot, event: EventObject): ReadonlyArray<Transition> {
    const leaf = snapshot._nodes[snapshot._nodes.length - 1]!
    let byType = this.selections.get(leaf)
    if (byType === undefined) this.selections.set(leaf, (byType = new Map<string, ReadonlyArray<Transition> | null>()))
    const known = byType.get(event.type)
    if (known !== undefined) return known ?? sessionMachine.getTransitionData(snapshot, event as never)
    const selected = sessionMachine.getTransitionData(snapshot, event as never)
    byType.set(event.type, unguardedFor(leaf, event.type) ? selected : null)
    return selected
  }

  /** The recording of `transition` from `snapshot`'s configuration, if there is one yet. */
  find(snapshot: Snapshot, transition: Transition): RecordedStep | null | undefined {
    return this.steps.get(snapshot._nodes[snapshot._nodes.length - 1]!)?.get(transition)
  }

  /**
   * Takes `transition` from `snapshot` through xstate's macrostep, on `scope`, and records it
   * when it was one microstep of replayable actions. Returns the snapshot macrostep made.
   */
  record(snapshot: Snapshot, event: EventObject, transition: Transition, scope: Scope): Snapshot {
    const [ended, executed, microsteps] = this.recording(scope, () => sessionMachine.transition(snapshot, event as never, scope))
    const leaf = snapshot._nodes[snapshot._nodes.length - 1]!
    let byTransition = this.steps.get(leaf)
    if (byTransition === undefined) this.steps.set(leaf, (byTransition = new Map<Transition, RecordedStep | null>()))
    byTransition.set(transition, this.recordingOf(snapshot, transition, executed, microsteps, ended))
    return ended
  }

  /**
   * Runs a recorded step on `snapshot` (what the step defers goes to `scope.defer`, as in xstate).
   * Returns the recorded snapshot, whose context is undefined, when the step changed the
   * configuration and raised nothing undelayed: the session keeps its own context beside it.
   */
  replay(snapshot: Snapshot, event: EventObject, step: RecordedStep, scope: Scope): Snapshot {
    const args = { context: snapshot.context, event, self: scope.self, system: scope.system }
    // A raise whose delay is not a number goes to xstate's internal queue: taken next, as macrostep would.
    const queued: EventObject[] = []
    for (const action of step.actions) {
      if ("exec" in action) action.exec(args, action.params)
      else {
        const [, params] = action.builtin.resolve(scope, snapshot, args, undefined, action.builtin, { internalQueue: queued })
        action.builtin.execute(scope, params)
      }
    }
    // The recorded snapshot itself (context undefined), shared by every session that replays the
    // step: the caller keeps this session's context beside it (ChartSession).
    if (queued.length === 0) return step.ended ?? snapshot
    let next = step.ended === undefined ? snapshot : { ...step.ended, context: snapshot.context, children: snapshot.children, historyValue: snapshot.historyValue }
    for (const queuedEvent of queued) next = next.status === "active" ? sessionMachine.transition(next, queuedEvent as never, scope) : next
    return next
  }

  /** Runs `run` on `scope`, telling the actions xstate executed and the microsteps its macrostep took. */
  private recording(scope: Scope, run: () => Snapshot): [Snapshot, ExecutedAction[], number] {
    const executed: ExecutedAction[] = []
    let microsteps = 0
    const executor = scope.actionExecutor
    const system = scope.system as unknown as { _sendInspectionEvent: (event: { type: string }) => void }
    const inspect = system._sendInspectionEvent
    scope.actionExecutor = (action) => {
      executed.push(action as unknown as ExecutedAction)
      executor(action)
    }
    system._sendInspectionEvent = (e) => {
      if (e.type === "@xstate.microstep") microsteps++
    }
    try {
      return [run(), executed, microsteps]
    } finally {
      scope.actionExecutor = executor
      system._sendInspectionEvent = inspect
    }
  }

  private recordingOf(snapshot: Snapshot, transition: Transition, executed: ReadonlyArray<ExecutedAction>, microsteps: number, ended: Snapshot): RecordedStep | null {
    // One microstep, the context and children carried over (no assign, no spawn).
    if (microsteps !== 1 || ended.context !== snapshot.context || ended.children !== snapshot.children || ended.historyValue !== snapshot.historyValue) return null
    // The definitions the step's actions can come from: the transition's, and the entry and exit
    // actions of every state it can leave or enter.
    const candidates = [...new Set([...transition.actions, ...[...snapshot._nodes, ...ended._nodes].flatMap((node) => [...node.entry, ...node.exit])])]
    const actions: RecordedAction[] = []
    for (const action of executed) {
      if (action.exec === undefined) return null
      if (isPlainImplementation(action.type) && action.exec === sessionMachine.implementations.actions[action.type]) {
        actions.push({ exec: action.exec, params: action.params })
        continue
      }
      const params = action.params as { id?: unknown; sendId?: unknown } | undefined
      const matches = candidates.filter(
        (c): c is Builtin =>
          isBuiltin(c) && c.type === action.type && ((c.type === "xstate.raise" && c.delay !== undefined && c.id === params?.id) || (c.type === "xstate.cancel" && c.sendId === params?.sendId))
      )
      if (matches.length !== 1) return null
      actions.push({ builtin: matches[0]! })
    }
    // Kept without the recording session's context, which a replay replaces anyway (and which holds the engine's outbox).
    return { actions, ended: ended === snapshot ? undefined : { ...ended, context: undefined as unknown as Snapshot["context"] } }
  }
}

/**
 * The one recording of the chart, shared by every engine `createEngine` makes: what it holds
 * follows from the chart's definition alone (its state nodes, transitions and actions, like the
 * caches xstate keeps on the state nodes themselves), never from a session, so an engine's first
 * session replays what another engine's sessions recorded. (Pure: a bundle that never names it,
 * such as one of `createLeanEngine` alone, drops this module.)
 */
export const recordedSteps: RecordedSteps = /* @__PURE__ */ new RecordedSteps()
