/**
 * One widget session: this statechart is the session. Its states are the phases (there is no
 * phase field anywhere else); its transitions, guards and delays decide when a session starts
 * negotiating, is ready, re-negotiates, starts over for a new document and closes. The pure
 * handlers of `@widgethost/core` (decode, capability checks, building commands) are its actions
 * and guards: an action runs one handler on the session's data and appends the commands it
 * builds to the outbox, which the engine drains after each event.
 *
 * Execution: production runs this chart through `SessionCharts` (`session-charts.ts`), xstate's
 * own transition algorithm on one actor scope for all of an engine's sessions. Actions mutate
 * the context the chart owns (`context.state`), never the snapshot, so a step that changes no
 * phase allocates no snapshot; every input of one turn arrives as one `inputs` event. What an
 * action raises (`context.raised`) the runtime sends next, before anything else.
 *
 * Timers are the chart's: `after` for the capabilities request (`capabilitiesTick`, a quarter
 * of the request timeout, not counted while the link is down) and open prompts (`approvalTimeout`), delayed events for the toWidget timeout sweep (`sweepInterval`)
 * and the MSC2974 rate window (`capabilityWindow`). Leaving a state cancels its `after`; the
 * final state cancels the delayed events.
 */
import {
  acknowledge,
  ageCapabilitiesRequest,
  askCapabilities,
  capabilitiesDue,
  type ChartSignal,
  closeSession,
  type Command,
  contentBringsNewDocument,
  type CoreCaches,
  initialState,
  type Input,
  loadBringsNewDocument,
  onApprovalTimeout,
  onCapabilitiesTimeout,
  onCapabilityWindowEnd,
  onContentLoadedOfNewDocument,
  onFirstContentLoaded,
  onFrameLoad,
  onFrameLoadOfNewDocument,
  onInput,
  type Phase,
  type SessionConfig,
  type SessionState,
  startStateLoad,
  Stepper,
  sweepTimeouts,
  sweepsToTimeout
} from "@widgethost/core"
import { and, cancel, createMachine, raise, setup } from "xstate"

/**
 * xstate's `setup`, typed as it is, without its helpers: `setup()` returns every action creator
 * (`assign`, `sendTo`, `enqueueActions`, `emit`, `log`, ...) in one object, so a bundler keeps
 * them all, and this chart uses none of them. Its `createMachine` is what `setup`'s does.
 */
const chartSetup = ((implementations: Parameters<typeof createMachine>[1]) => ({
  createMachine: (config: Parameters<typeof createMachine>[0]) => createMachine(config, implementations)
})) as unknown as typeof setup

/**
 * `inputs` carries every input that arrived since the session last ran, in arrival order: under
 * load one event serves many messages, so the chart's fixed cost per event is paid per batch.
 * The other events are the chart's own: signals its handlers raise, and its delayed events.
 */
export type SessionEvent =
  | { readonly type: "inputs"; readonly inputs: ReadonlyArray<Input> }
  | ChartSignal
  | { readonly type: "requests.pending" }
  | { readonly type: "requests.sweep" }
  | { readonly type: "capabilities.windowOpened" }
  | { readonly type: "capabilities.windowEnds" }

export interface SessionContext {
  /** The session's data. Written only by this chart's actions, in place (the chart owns it). */
  state: SessionState
  /** Where actions append commands; the runner drains it after every event. */
  readonly outbox: Command[]
  /** The engine's caches, which every step of this session is handed (`@widgethost/core`'s `CoreCaches`). */
  readonly caches: CoreCaches
  /**
   * Events the actions raised, for the chart next (the runtime sends them before anything else).
   * Always present, undefined while none: adding it later would give every session's context a
   * hidden class of its own (V8 does not share transitions from a spread copy), about 200 bytes each.
   */
  raised: SessionEvent[] | undefined
}

export interface SessionInput {
  readonly config: SessionConfig
  readonly outbox: Command[]
  readonly caches: CoreCaches
}

/** Ids of the chart's delayed events (cancelled by id). */
const SWEEP = "sweep"
const WINDOW = "capability-window"

type Params = { readonly phase: Phase }

/**
 * Keeps a step's state and queues what it asks the chart: its signals in order, and the arming
 * of its delayed events. The runtime sends queued events next, before anything else (what
 * `raise` does; a plain action costs a fraction of an `enqueueActions` on the hot path).
 */
const commit = (context: SessionContext, s: Stepper): void => {
  context.state = s.end()
  const { arm, signals } = s
  if (arm === undefined && signals === undefined) return
  const raised = (context.raised ??= [])
  if (arm?.sweep === true) raised.push(requestsPending)
  if (arm?.window === true) raised.push(windowOpened)
  if (signals !== undefined) for (const signal of signals) raised.push(signal)
}
/** The chart's own events carry no data: one of each serves every session. */
const requestsPending: SessionEvent = Object.freeze({ type: "requests.pending" })
const windowOpened: SessionEvent = Object.freeze({ type: "capabilities.windowOpened" })

/**
 * The Stepper of the step under way, reused by the next: a step never starts inside another (a
 * handler calls no chart; embedder code runs after the step, when its commands are executed),
 * so one serves every session of every engine. Taken while in use (a handler that threw keeps
 * it), a step makes its own.
 */
let spare: Stepper | undefined

/** A step in place on the session's data, in the chart's phase, on the spare Stepper if it is free. */
const begin = (context: SessionContext, params: Params): Stepper => {
  const reused = spare
  spare = undefined
  return reused === undefined ? new Stepper(context.state, params.phase, context.caches, true, context.outbox) : reused.beginInPlace(context.state, params.phase, context.caches, context.outbox)
}

/** Keeps the step's state, queues what it asks the chart (`commit`), and frees its Stepper. */
const finish = (context: SessionContext, s: Stepper): void => {
  commit(context, s)
  spare = s
}

/** Runs `handler` on the session's data in the chart's phase. */
const runHandler = (context: SessionContext, params: Params, handler: (s: Stepper) => void): void => {
  const s = begin(context, params)
  handler(s)
  finish(context, s)
}

/**
 * The turn's inputs, one by one, until one needs the chart (a signal): the chart takes that
 * first, then the rest of the batch in whatever state it is then in.
 */
const fold = (context: SessionContext, event: SessionEvent, params: Params): void => {
  if (event.type !== "inputs") return
  const { inputs } = event
  const s = begin(context, params)
  let next = 0
  while (next < inputs.length) {
    onInput(s, inputs[next++]!)
    if (s.signals !== undefined) break
  }
  finish(context, s)
  if (next < inputs.length) (context.raised ??= []).push({ type: "inputs", inputs: inputs.slice(next) })
}

const rawOf = (event: SessionEvent) => (event.type === "widget.contentLoaded" ? event.raw : {})
const reasonOf = (event: SessionEvent) => (event.type === "close" ? event.reason : "closed")

export const sessionMachine = chartSetup({
  // Not unnecessary: xstate infers the machine's context, events and input from this assertion.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
  types: {} as { context: SessionContext; events: SessionEvent; input: SessionInput },
  delays: {
    // Never early: `sweepsToTimeout` ticks are at least the request timeout.
    capabilitiesTick: ({ context }) => Math.max(1, Math.ceil(context.state.config.limits.requestTimeoutMs / sweepsToTimeout)),
    sweepInterval: ({ context }) => Math.max(1, Math.floor(context.state.config.limits.requestTimeoutMs / 4)),
    approvalTimeout: ({ context }) => context.state.config.limits.approvalTimeoutMs,
    capabilityWindow: ({ context }) => context.state.config.limits.capabilityRequests.windowMs
  },
  guards: {
    // Guards read the session's data; only the actions change it.
    waitsForLoad: ({ context }) => context.state.config.waitForIframeLoad,
    capabilitiesDue: ({ context }) => capabilitiesDue(context.state),
    loadBringsNewDocument: ({ context }) => loadBringsNewDocument(context.state),
    contentBringsNewDocument: ({ context }) => contentBringsNewDocument(context.state)
  },
  actions: {
    // Each runs a pure handler on the session's data (plain actions: see `commit`).
    fold: ({ context, event }, params: Params) => fold(context, event, params),
    noteFrameLoad: ({ context }, params: Params) => runHandler(context, params, onFrameLoad),
    replaceDocumentByLoad: ({ context }, params: Params) => runHandler(context, params, onFrameLoadOfNewDocument),
    noteContentLoaded: ({ context }, params: Params) => runHandler(context, params, onFirstContentLoaded),
    replaceDocumentByContent: ({ context }, params: Params) => runHandler(context, params, onContentLoadedOfNewDocument),
    acknowledge: ({ context, event }, params: Params) => runHandler(context, params, (s) => acknowledge(s, rawOf(event))),
    askCapabilities: ({ context }, params: Params) => runHandler(context, params, askCapabilities),
    capabilitiesTimedOut: ({ context }, params: Params) => runHandler(context, params, onCapabilitiesTimeout),
    ageCapabilities: ({ context }, params: Params) => runHandler(context, params, ageCapabilitiesRequest),
    approvalTimedOut: ({ context }, params: Params) => runHandler(context, params, onApprovalTimeout),
    startStateLoad: ({ context }, params: Params) => runHandler(context, params, startStateLoad),
    sweep: ({ context }, params: Params) => runHandler(context, params, sweepTimeouts),
    endWindow: ({ context }, params: Params) => runHandler(context, params, onCapabilityWindowEnd),
    close: ({ context, event }, params: Params) => runHandler(context, params, (s) => closeSession(s, reasonOf(event)))
  }
}).createMachine({
  id: "session",
  context: ({ input }) => ({ state: initialState(input.config), outbox: input.outbox, caches: input.caches, raised: undefined }),
  initial: "loading",
  on: {
    // A step asked for the sweep or the rate window: the chart's delayed events, by id.
    "requests.pending": { actions: raise({ type: "requests.sweep" }, { id: SWEEP, delay: "sweepInterval" }) },
    "capabilities.windowOpened": { actions: raise({ type: "capabilities.windowEnds" }, { id: WINDOW, delay: "capabilityWindow" }) }
  },
  states: {
    loading: {
      on: {
        ...common("loading"),
        "frame.loaded": [
          { guard: and(["loadBringsNewDocument", "waitsForLoad"]), target: "negotiating", actions: at("replaceDocumentByLoad", "loading") },
          { guard: "loadBringsNewDocument", actions: at("replaceDocumentByLoad", "loading") },
          { guard: "waitsForLoad", target: "negotiating", actions: at("noteFrameLoad", "loading") },
          { actions: at("noteFrameLoad", "loading") }
        ],
        "widget.contentLoaded": [
          { guard: "waitsForLoad", actions: at("acknowledge", "loading") },
          { guard: "contentBringsNewDocument", target: "negotiating", actions: [at("replaceDocumentByContent", "loading"), at("acknowledge", "loading")] },
          { target: "negotiating", actions: [at("noteContentLoaded", "loading"), at("acknowledge", "loading")] }
        ]
      }
    },
    negotiating: {
      entry: at("askCapabilities", "negotiating"),
      initial: "asking",
      states: {
        // An unanswered capabilities request counts as asking for nothing. Its timeout is counted
        // in ticks that do not count while the link is down (the widget cannot answer then):
        // back, it has what was left, as toWidget requests have under the sweep.
        asking: {
          after: {
            capabilitiesTick: [
              { guard: "capabilitiesDue", actions: at("capabilitiesTimedOut", "negotiating") },
              { target: "asking", reenter: true, actions: at("ageCapabilities", "negotiating") }
            ]
          }
        },
        // A prompt nobody answers is taken as "deny all".
        prompting: { after: { approvalTimeout: { actions: at("approvalTimedOut", "negotiating") } } }
      },
      on: {
        ...common("negotiating"),
        ...documents("negotiating"),
        "negotiation.prompted": ".prompting",
        "negotiation.granted": "ready"
      }
    },
    ready: {
      // What the grant unlocked (state for update_state) loads once the session serves.
      entry: at("startStateLoad", "ready"),
      on: {
        ...common("ready"),
        ...documents("ready"),
        "negotiation.prompted": "renegotiating"
      }
    },
    renegotiating: {
      after: { approvalTimeout: { actions: at("approvalTimedOut", "renegotiating") } },
      on: {
        ...common("renegotiating"),
        ...documents("renegotiating"),
        "negotiation.granted": "ready",
        // What was asked meanwhile needs a prompt of its own: its timeout starts afresh.
        "negotiation.prompted": { target: "renegotiating", reenter: true }
      }
    },
    closed: {
      type: "final",
      entry: [cancel(SWEEP), cancel(WINDOW)]
    }
  }
})

/** An action of the chart, told the phase it runs in. */
function at<T extends string>(type: T, phase: Phase) {
  return { type, params: { phase } }
}

/** What every open phase does with the turn's inputs, its delayed events and a close. */
function common(phase: Phase) {
  return {
    inputs: { actions: at("fold", phase) },
    "requests.sweep": { actions: at("sweep", phase) },
    "capabilities.windowEnds": { actions: at("endWindow", phase) },
    close: { target: "#session.closed", actions: at("close", phase) }
  } as const
}

/**
 * A new document in a negotiating or serving session (a reload): back to `loading`, or straight
 * into a fresh negotiation for widgets that start on the frame's load.
 */
function documents(phase: Phase) {
  return {
    "frame.loaded": [
      { guard: and(["loadBringsNewDocument", "waitsForLoad"]), target: "#session.negotiating", reenter: true, actions: at("replaceDocumentByLoad", phase) },
      { guard: "loadBringsNewDocument", target: "#session.loading", actions: at("replaceDocumentByLoad", phase) },
      { actions: at("noteFrameLoad", phase) }
    ],
    "widget.contentLoaded": [
      { guard: "waitsForLoad", actions: at("acknowledge", phase) },
      {
        guard: "contentBringsNewDocument",
        target: "#session.negotiating",
        reenter: true,
        actions: [at("replaceDocumentByContent", phase), at("acknowledge", phase)]
      },
      { actions: [at("noteContentLoaded", phase), at("acknowledge", phase)] }
    ]
  } as const
}

/** The chart's phase in a snapshot's state value (`negotiating` has sub-states). */
export const phaseOf = (value: unknown): Phase => (typeof value === "string" ? value : Object.keys(value as object)[0]!) as Phase
