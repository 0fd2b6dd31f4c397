/**
 * The engine: what a Matrix client embeds to host widgets. It owns the router and every
 * session (each one the session chart, run by `SessionCharts`), executes the commands sessions emit against the homeserver port, the approver and the
 * transports, and feeds the homeserver's updates to the router.
 *
 * @example
 * const engine = createEngine({ homeserver, approver: async ({ requested }) => requested })
 * const session = engine.openSession({ widget, send: (message) => iframe.postMessage(message, origin) })
 * session.frameLoaded()
 */
import {
  type Command,
  defaultLimits,
  type HomeserverPort,
  type HomeserverRequest,
  type PromiseHomeserverPort,
  toHomeserverPort,
  type Input,
  HomeserverError,
  type ApprovalPolicy,
  type CallResult,
  type Limits,
  type Report,
  type SessionState,
  type WidgetDefinition,
  emptyPolicy
} from "@widgethost/core"
import { Cause, Effect, Exit, Option } from "effect"
import { type Clock, realClock } from "./clock.ts"
import { Router } from "./router.ts"
import { type ChartSession, SessionCharts } from "./session-charts.ts"
import { phaseOf, type SessionEvent } from "./session-machine.ts"
import { TimerQueue } from "./timer-queue.ts"
import { TurnPoller, type TurnPollerOptions } from "./turn-poller.ts"
import { askOpenIdApprover, type OpenIdApprover, OpenIdPrompt } from "./openid-approver.ts"
import type { WidgetSink } from "./widget-session.ts"
import { type EngineSession, type HandleCore, SessionHandle, type SessionInfo, WidgetRequestError } from "./session-handle.ts"
import { type LifecycleEvent, type Observed, SessionWatch } from "./lifecycle.ts"
import { PendingRequests } from "./pending-requests.ts"

export type { EngineSession, SessionInfo } from "./session-handle.ts"
import { callClient, clientServing, type ClientHooks, type CustomAction, HookCall } from "./client-hooks.ts"
import { type Approver, Prompt } from "./approval-prompt.ts"

export type { ApprovalRequest, Approver, RequestedCapability } from "./approval-prompt.ts"

export interface EngineOptions {
  /**
   * The Matrix account widgets act as: a `PromiseHomeserverPort` (plain async functions, no
   * Effect; e.g. `fromMatrixClient` of `@widgethost/matrix-js-sdk`) or the Effect-native
   * `HomeserverPort` (e.g. `connectHomeserver` of `@widgethost/homeserver-client`), told apart
   * by the mark the latter carries (`HomeserverPortTypeId`).
   */
  readonly homeserver: HomeserverPort | PromiseHomeserverPort
  /** Absent: whatever the policy leaves undecided is denied. */
  readonly approver?: Approver
  readonly policy?: ApprovalPolicy
  /** Asked about MSC1960 `get_openid` when the policy has no `m.openid` rule for it. Absent: blocked. */
  readonly openIdApprover?: OpenIdApprover
  readonly limits?: Partial<Limits>
  /** The actor clock: `new SimulatedClock()` in tests; real timers otherwise. */
  readonly clock?: Clock
  readonly turn?: TurnPollerOptions
  readonly onReport?: (sessionId: string, widgetId: string, report: Report) => void
  /**
   * A callback of the embedder threw or rejected (a widget sink, the approver, the homeserver
   * port, `onReport`, a close listener). The engine carries on: that message is lost, that
   * prompt is denied, that homeserver call answers the widget with an error; other sessions
   * never notice. Default: `console.error`.
   */
  readonly onError?: (error: unknown, where: EngineFault) => void
  /** Whether to subscribe to the homeserver port's updates (default true). */
  readonly subscribe?: boolean
  /**
   * The client-side actions the client serves (navigate, always-on-screen, stickers, modals), one
   * hook each. Without a hook the action is unserved: its capability is denied, the action unknown.
   */
  readonly hooks?: ClientHooks
  /**
   * fromWidget actions the engine does not know, served by the client (`io.element.join`, ...).
   * Engine actions cannot be overridden: `createEngine` throws when one is named here.
   */
  readonly customActions?: Readonly<Record<string, CustomAction>>
  /**
   * Extra `supported_api_versions` entries, for what the client serves (its custom actions, its
   * toWidget requests such as MSC2873 `theme_change`). A known version whose actions nothing
   * serves is refused at `createEngine`. Versions the hooks serve are added without asking.
   */
  readonly apiVersions?: ReadonlyArray<string>
  /**
   * Every lifecycle event of every session (phase, capabilities, closed, error), beside each
   * session's own `on`. Given, every session is watched; absent, only those someone listens to.
   */
  readonly onLifecycle?: (sessionId: string, widgetId: string, event: LifecycleEvent) => void
}

/** Which embedder callback failed, for which session. */
export interface EngineFault {
  readonly fault: "send" | "approver" | "homeserver" | "report" | "close-listener" | "listener"
  readonly sessionId: string
  readonly widgetId: string
}

export interface OpenSessionOptions {
  readonly widget: WidgetDefinition
  readonly send: WidgetSink
  /** The widget's origin, for policy rules. */
  readonly origin?: string
  /** Overrides the definition's waitForIframeLoad (MSC3009: false for websockets). */
  readonly waitForIframeLoad?: boolean
}

export interface Engine {
  readonly openSession: (options: OpenSessionOptions) => EngineSession
  /** The room the user is viewing; account widgets act there. */
  readonly setViewedRoom: (roomId: string | undefined) => void
  readonly sessions: () => ReadonlyArray<SessionInfo>
  readonly session: (sessionId: string) => EngineSession | undefined
  /** Feed a homeserver update by hand (when `subscribe` is false, or from a recorded run). */
  readonly deliver: (update: Parameters<Parameters<HomeserverPort["subscribe"]>[0]>[0]) => void
  /** Runs every input still waiting in session inboxes (normally done at the end of each turn). */
  readonly flush: () => void
  readonly turnPoller: TurnPoller
  readonly stop: () => void
}

interface Entry {
  /** The session: its chart. */
  readonly chart: ChartSession
  readonly handle: EngineSession
  readonly send: WidgetSink
  /** Hook calls at work and the client's toWidget requests waiting; none allocated before the first. */
  client: ClientWork | undefined
  /** Lifecycle listeners and the last state they were told; none while nobody listens. */
  watch: SessionWatch | undefined
  /** Open prompts by ticket; none allocated while no prompt is open. */
  approvals: Map<number, Prompt | OpenIdPrompt> | undefined
  closeListeners: Array<(reason: string) => void> | undefined
  /** Inputs waiting for the next drain; none allocated while idle. */
  inbox: Input[] | undefined
}

/**
 * Runs one homeserver request and hands its result to `answer`; failures become `Failed` results,
 * never exceptions. The port's effect runs as it is (no mapping step: one primitive less per call),
 * and its value is tagged in the exit callback.
 */
const callPort = (port: HomeserverPort, request: HomeserverRequest, answer: (result: CallResult) => void): void => {
  switch (request._tag) {
    case "SendEvent":
      return run(port.sendEvent(request), tagged.sent, answer)
    case "Redact":
      return run(port.redact(request), tagged.sent, answer)
    case "ReadEvents":
      return run(port.readEvents(request.query), tagged.page, answer)
    case "ReadState":
      return run(port.readState(request.roomId, request.type, request.stateKey), tagged.state, answer)
    case "SendToDevice":
      return run(port.sendToDevice(request), tagged.done, answer)
    case "JoinedRooms":
      return run(port.joinedRooms(), tagged.rooms, answer)
    case "TurnServers":
      return run(port.turnServers(), tagged.turn, answer)
    case "RtcTransports":
      return run(port.rtcTransports(), tagged.body, answer)
    case "UpdateDelayedEvent":
      return run(port.updateDelayedEvent(request), tagged.done, answer)
    case "UserDirectorySearch":
      return run(port.userDirectorySearch(request), tagged.body, answer)
    case "RequestOpenIdToken":
      return run(port.requestOpenIdToken(), tagged.openIdToken, answer)
    case "ReadRelations":
      return run(port.readRelations(request.query), tagged.relations, answer)
    case "ReadRoomAccountData":
      return run(port.readRoomAccountData(request.roomId, request.type), tagged.accountData, answer)
  }
}

type ValueOf<T extends CallResult["_tag"]> = Extract<CallResult, { _tag: T; value: unknown }>["value"]
const done: CallResult = { _tag: "Done" }
/** A port's value as the reducer takes it. */
const tagged = {
  sent: (value: ValueOf<"Sent">): CallResult => ({ _tag: "Sent", value }),
  page: (value: ValueOf<"Page">): CallResult => ({ _tag: "Page", value }),
  state: (value: ValueOf<"State">): CallResult => ({ _tag: "State", value }),
  rooms: (value: ValueOf<"Rooms">): CallResult => ({ _tag: "Rooms", value }),
  turn: (value: ValueOf<"Turn">): CallResult => ({ _tag: "Turn", value }),
  body: (value: ValueOf<"Body">): CallResult => ({ _tag: "Body", value }),
  openIdToken: (value: ValueOf<"OpenIdToken">): CallResult => ({ _tag: "OpenIdToken", value }),
  relations: (value: ValueOf<"Relations">): CallResult => ({ _tag: "Relations", value }),
  accountData: (value: ValueOf<"AccountData">): CallResult => ({ _tag: "AccountData", value }),
  done: (): CallResult => done
}

const run = <A>(effect: Effect.Effect<A, HomeserverError>, tag: (value: A) => CallResult, answer: (result: CallResult) => void): void => {
  Effect.runCallback(effect, { onExit: (exit) => answer(Exit.isSuccess(exit) ? tag(exit.value) : failed(exit.cause)) })
}

const failed = (cause: Cause.Cause<HomeserverError>): CallResult => ({ _tag: "Failed", error: Option.getOrUndefined(Cause.findErrorOption(cause)) ?? adapterFailed() })

/** What the widget hears when the port died or threw instead of failing with a HomeserverError. */
const adapterFailed = () => new HomeserverError({ message: "The homeserver adapter failed unexpectedly" })

const settled = Promise.resolve()

const defaultOnError = (error: unknown, where: EngineFault): void => console.error(`widgethost: ${where.fault} failed for session ${where.sessionId}`, error)

/** A session's work with its client, made at first use (most sessions never have any). */
interface ClientWork {
  /** Client hooks and custom actions at work, by ticket. */
  calls: Map<number, HookCall> | undefined
  /** The client's toWidget requests waiting for the widget. */
  requests: PendingRequests | undefined
}

/** The widget's origin, as the session was opened with it (kept in its config, not twice). */
const originOf = (entry: Entry): string | undefined => entry.chart.snapshot.context.state.config.origin

/** Forgets a client call at work; false when it was not (cancelled, or already answered). */
const settleClientCall = (entry: Entry, ticket: number): boolean => {
  const calls = entry.client?.calls
  if (calls?.delete(ticket) !== true) return false
  if (calls.size === 0) entry.client!.calls = undefined
  return true
}

/** Forgets an open prompt; false when it was not open. */
const settleApproval = (entry: Entry, ticket: number): boolean => {
  const approvals = entry.approvals
  if (approvals?.delete(ticket) !== true) return false
  if (approvals.size === 0) entry.approvals = undefined
  return true
}

export const createEngine = (options: EngineOptions): Engine => {
  const limits: Limits = { ...defaultLimits, ...options.limits }
  const policy = options.policy ?? emptyPolicy
  const client = clientServing(options.hooks, options.customActions, options.apiVersions, policy.clientCapabilities)
  const clock = options.clock ?? realClock
  const homeserver = toHomeserverPort(options.homeserver)
  const handles = new Map<string, Entry>()
  /**
   * Sessions with inputs waiting, in the order they got their first one: a session is appended
   * when its inbox goes from none to one input. (One that `info()` drained early may appear twice;
   * the second visit finds no inbox.)
   */
  const dirty: Entry[] = []
  let drainScheduled = false

  /**
   * Every input a session gets goes through its inbox. The inboxes are drained together at the
   * end of the current turn (a microtask), one `inputs` event per session: a burst of room events
   * or widget messages costs one statechart transition per session, not one per message.
   */
  const push = (key: string, input: Input): void => {
    const entry = handles.get(key)
    if (entry === undefined) return
    if (entry.inbox !== undefined) return void entry.inbox.push(input)
    entry.inbox = [input]
    dirty.push(entry)
    if (!drainScheduled) {
      drainScheduled = true
      // A promise reaction rather than queueMicrotask, which wraps each callback in an AsyncResource.
      // A throw while draining becomes an unhandled rejection, which Node (by default) and
      // browsers report like the uncaught exception queueMicrotask would have raised.
      void settled.then(flush)
    }
  }

  /** Runs every waiting input now. Tests and embedders call it to observe effects synchronously. */
  const flush = (): void => {
    drainScheduled = false
    // Draining may queue more (an approver answering at once): those sessions are appended and
    // run in this same loop, until all is quiet.
    for (let i = 0; i < dirty.length; i++) drainEntry(dirty[i]!)
    dirty.length = 0
  }

  const drainEntry = (entry: Entry): void => {
    const inputs = entry.inbox
    if (inputs === undefined) return
    entry.inbox = undefined
    run(entry, { type: "inputs", inputs })
  }

  /** Sends one event to a session's chart and executes the commands its actions built, in order. */
  const run = (entry: Entry, event: SessionEvent): void => {
    charts.send(entry.chart, event)
    if (outbox.length > 0) {
      // Executing may run another session's chart (an embedder callback asking `info()`): take these first.
      const commands = outbox.slice()
      outbox.length = 0
      for (const command of commands) execute(entry.chart.key, command)
    }
    // A closed session told its listeners as it closed (see `Closed`).
    if (entry.watch !== undefined && handles.get(entry.chart.key) === entry) entry.watch.observe(observed(entry))
  }

  const observed = (entry: Entry): Observed => {
    const { snapshot } = entry.chart
    const { requested, approved, denied } = snapshot.context.state
    return { phase: phaseOf(snapshot.value), requested, approved, denied }
  }

  /** The session's watch, made at its first listener (or at open, for an engine-wide listener). */
  const watchOf = (entry: Entry): SessionWatch => {
    const { sessionId, widgetId } = entry.handle
    const everyone = options.onLifecycle
    return (entry.watch ??= new SessionWatch(
      observed(entry),
      everyone === undefined ? undefined : (event) => everyone(sessionId, widgetId, event),
      (error) => fault(error, "listener", sessionId, widgetId, false)
    ))
  }

  const router = new Router({ deliver: push })
  let nextSession = 0

  const turnPoller = new TurnPoller(
    homeserver,
    clock,
    {
      answer: (key, ticket, result) => {
        push(key, { _tag: "CallAnswered", ticket, result: result.ok ? { _tag: "Turn", value: result.servers } : { _tag: "Failed", error: result.error } })
      },
      push: (keys, servers) => router.turnServers(keys, servers)
    },
    options.turn
  )


  /**
   * An embedder callback failed: tell `onError` (whose own failure is swallowed: nowhere left to
   * go) and the session's `error` listeners (unless a listener is what failed: no loops).
   */
  const fault = (error: unknown, kind: EngineFault["fault"], key: string, widgetId: string, tellListeners = true): void => {
    try {
      ;(options.onError ?? defaultOnError)(error, { fault: kind, sessionId: key, widgetId })
    } catch {
      // ignored
    }
    const watch = handles.get(key)?.watch
    if (tellListeners && watch !== undefined) watch.emit({ type: "error", fault: kind, error })
  }

  // Every call into embedder code below is guarded: one session's broken sink or approver must
  // not stop the drain of the others (try/catch costs nothing on V8 while nothing throws).
  const execute = (key: string, command: Command): void => {
    const entry = handles.get(key)
    if (entry === undefined) return
    switch (command._tag) {
      case "SendToWidget":
        try {
          entry.send(command.message)
        } catch (error) {
          fault(error, "send", key, entry.handle.widgetId)
        }
        return
      case "CallHomeserver": {
        // A port that answers synchronously (a cache, an in-memory store) is answered in this same
        // turn; an HTTP one whenever its response arrives.
        const answer = (result: CallResult) => push(key, { _tag: "CallAnswered", ticket: command.ticket, result })
        try {
          callPort(homeserver, command.request, answer)
        } catch (error) {
          // The port threw instead of returning a failing effect.
          fault(error, "homeserver", key, entry.handle.widgetId)
          answer({ _tag: "Failed", error: adapterFailed() })
        }
        return
      }
      case "AskApprover": {
        const prompt = new Prompt(key, entry.handle.widget, originOf(entry), command.requested, command.alreadyApproved)
        ;(entry.approvals ??= new Map()).set(command.ticket, prompt)
        const decide = (approved: ReadonlyArray<string>) => {
          if (!settleApproval(entry, command.ticket)) return // cancelled meanwhile
          push(key, { _tag: "ApprovalDecided", ticket: command.ticket, approved })
        }
        if (options.approver === undefined) return decide([])
        const refuse = (error: unknown) => {
          // A withdrawn prompt's approver may well reject (an AbortError): that is no fault.
          if (entry.approvals?.has(command.ticket) === true) fault(error, "approver", key, entry.handle.widgetId)
          decide([])
        }
        try {
          options.approver(prompt).then(decide, refuse)
        } catch (error) {
          refuse(error)
        }
        return
      }
      case "AskOpenIdApprover": {
        const prompt = new OpenIdPrompt(key, entry.handle.widgetId, command.origin)
        ;(entry.approvals ??= new Map()).set(command.ticket, prompt)
        const decide = (allowed: boolean) => {
          if (settleApproval(entry, command.ticket)) push(key, { _tag: "OpenIdDecided", ticket: command.ticket, allowed })
        }
        // A withdrawn prompt's approver may well reject (an AbortError): that is no fault.
        const onFault = (error: unknown) => void (entry.approvals?.has(command.ticket) === true && fault(error, "approver", key, entry.handle.widgetId))
        askOpenIdApprover(options.openIdApprover, prompt, decide, onFault)
        return
      }
      case "CancelApproval":
        entry.approvals?.get(command.ticket)?.withdraw()
        settleApproval(entry, command.ticket)
        return
      case "CallClient": {
        const { widget } = entry.handle
        const context = new HookCall(key, widget.id, widget, originOf(entry), command.roomId, command.action, entry.chart.snapshot.context.state.approved)
        ;((entry.client ??= { calls: undefined, requests: undefined }).calls ??= new Map()).set(command.ticket, context)
        callClient(client, command.call, context, (outcome) => {
          // Cancelled meanwhile (timed out, new document, closed): the session answered already.
          if (!settleClientCall(entry, command.ticket)) return
          push(key, { _tag: "ClientAnswered", ticket: command.ticket, outcome })
        })
        return
      }
      case "CancelClientCall":
        entry.client?.calls?.get(command.ticket)?.withdraw()
        settleClientCall(entry, command.ticket)
        return
      case "ClientRequestSettled":
        entry.client?.requests?.settle(command.id, command.outcome)
        return
      case "WatchTurn":
        turnPoller.watch(key, command.ticket)
        return
      case "UnwatchTurn":
        turnPoller.unwatch(key)
        return
      case "Subscribe":
        router.subscribe(key, command.permissions, command.homeRoom)
        return
      case "Report":
        try {
          options.onReport?.(key, entry.handle.widgetId, command.report)
        } catch (error) {
          fault(error, "report", key, entry.handle.widgetId)
        }
        return
      case "Closed": {
        // Kept (bounded) so a handle asked for info() after closing still answers.
        closedStates.set(key, entry.chart)
        if (closedStates.size > 1_000) closedStates.delete(closedStates.keys().next().value!)
        for (const prompt of entry.approvals?.values() ?? []) prompt.withdraw()
        for (const call of entry.client?.calls?.values() ?? []) call.withdraw()
        entry.client?.requests?.closeAll(command.reason)
        entry.client = undefined
        turnPoller.unwatch(key)
        handles.delete(key)
        charts.stop(entry.chart) // the closed chart cancelled its timers; this is belt and braces
        router.close(key)
        for (const listener of [...(entry.closeListeners ?? [])]) {
          try {
            listener(command.reason)
          } catch (error) {
            fault(error, "close-listener", key, entry.handle.widgetId)
          }
        }
        if (entry.watch !== undefined) {
          entry.watch.observe(observed(entry))
          entry.watch.emit({ type: "closed", reason: command.reason })
        }
        return
      }
    }
  }

  /** Every command of every session's chart lands here, and is executed right after the event. */
  const outbox: Command[] = []
  /** All sessions' charts, with their delayed events in one timer queue (one clock timer for all). */
  const charts = new SessionCharts({
    timers: new TimerQueue(clock),
    outbox,
    onDelayed: (chart, event) => {
      const entry = handles.get(chart.key)
      if (entry === undefined) return
      // What arrived before the timer fired runs first, as it would have in the turn's drain.
      drainEntry(entry)
      run(entry, event)
    }
  })

  const infoOf = (key: string, widgetId: string, chart: ChartSession): SessionInfo => infoFrom(key, widgetId, phaseOf(chart.snapshot.value), chart.snapshot.context.state)

  const infoFrom = (key: string, widgetId: string, phase: SessionInfo["phase"], session: SessionState): SessionInfo => ({
    sessionId: key,
    widgetId,
    phase,
    requested: session.requested,
    approved: session.approved,
    denied: session.denied,
    counters: { ...session.counters },
    homeRoom: session.homeRoom
  })

  let viewedRoom: string | undefined

  /** What every session handle calls back into: shared by all handles, so a handle holds no closures. */
  const core: HandleCore = {
    push,
    info: (key, widgetId) => {
      const entry = handles.get(key)
      if (entry !== undefined) drainEntry(entry)
      return infoOf(key, widgetId, entry?.chart ?? closedStates.get(key)!)
    },
    onClose: (key, listener) => {
      const entry = handles.get(key)
      if (entry === undefined) return () => false
      const listeners = (entry.closeListeners ??= [])
      listeners.push(listener)
      return () => {
        const at = listeners.indexOf(listener)
        if (at >= 0) listeners.splice(at, 1)
      }
    },
    request: (key, action, data) => {
      const entry = handles.get(key)
      if (entry === undefined) return Promise.reject(new WidgetRequestError("closed", `${String(action)} was not sent: the session is closed`))
      if (typeof action !== "string") return Promise.reject(new WidgetRequestError("refused", "the action must be a string"))
      const id = nextRequest++
      const answer = ((entry.client ??= { calls: undefined, requests: undefined }).requests ??= new PendingRequests()).add(id, action)
      push(key, { _tag: "ClientRequest", id, action, data })
      return answer
    },
    on: (key, type, listener) => {
      const entry = handles.get(key)
      if (entry === undefined) return () => false
      return watchOf(entry).on(type, listener)
    }
  }
  let nextRequest = 0
  /** The charts of closed sessions whose handles may still be asked for `info()`. */
  const closedStates = new Map<string, ChartSession>()

  const openSession = (open: OpenSessionOptions): EngineSession => {
    const { widget } = open
    const key = `${widget.id}#${nextSession++}`
    const homeRoom = widget.kind === "room" ? widget.roomId : viewedRoom
    const handle = new SessionHandle(core, key, widget)
    const config = {
      widgetId: widget.id,
      kind: widget.kind,
      ...(homeRoom === undefined ? {} : { homeRoom }),
      waitForIframeLoad: open.waitForIframeLoad ?? widget.waitForIframeLoad,
      ...(open.origin === undefined ? {} : { origin: open.origin }),
      policy,
      limits,
      openIdApprover: options.openIdApprover !== undefined,
      client: client.side
    }
    const chart = charts.open(key, { config })
    const entry: Entry = { chart, handle, send: open.send, client: undefined, watch: undefined, approvals: undefined, closeListeners: undefined, inbox: undefined }
    handles.set(key, entry)
    if (options.onLifecycle !== undefined) watchOf(entry)
    router.open(key)
    return handle
  }

  const deliver: Engine["deliver"] = (update) => {
    if (update._tag === "RoomEvent") router.roomEvent(update.event)
    else router.toDevice(update.event)
  }
  const unsubscribe = options.subscribe === false ? () => {} : homeserver.subscribe(deliver)

  return {
    openSession,
    setViewedRoom: (roomId) => {
      viewedRoom = roomId
      router.viewedRoom(roomId)
    },
    sessions: () => {
      flush()
      return [...handles.entries()].map(([key, entry]) => infoOf(key, entry.handle.widgetId, entry.chart))
    },
    session: (sessionId) => handles.get(sessionId)?.handle,
    deliver,
    flush,
    turnPoller,
    stop: () => {
      unsubscribe()
      for (const entry of [...handles.values()]) entry.handle.close("engine stopped")
      flush()
      turnPoller.stop()
    }
  }
}
