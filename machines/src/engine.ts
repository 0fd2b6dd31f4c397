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
  createCoreCaches,
  defaultLimits,
  realClock,
  homeserverErrorFrom,
  isHomeserverPort,
  type Input,
  type CallResult,
  type Limits,
  type SessionState,
  emptyPolicy,
  featureTable
} from "@widgethost/core"
import { Router } from "./router.ts"
import { type ChartSession, SessionCharts } from "./session-charts.ts"
import { phaseOf, type SessionEvent } from "./session-machine.ts"
import { TimerQueue } from "./timer-queue.ts"
import { TurnPoller } from "./turn-poller.ts"
import { callPort, methodOf } from "./port-calls.ts"
import { type EngineSession, type HandleCore, SessionHandle, type SessionInfo, WidgetRequestError } from "./session-handle.ts"
import { type Observed, SessionWatch } from "./lifecycle.ts"
import { PendingRequests } from "./pending-requests.ts"
import { sessionConfigs } from "./session-config.ts"
import { truncate } from "./truncate.ts"

export type { EngineSession, SessionInfo } from "./session-handle.ts"
import { clientServing } from "./client-hooks.ts"
import { executeClientCommand } from "./client-commands.ts"
import { addCloseListener, closeListenersOf, Entry } from "./engine-entry.ts"

export type { ApprovalRequest, Approver, RequestedCapability } from "./approval-prompt.ts"
import type { Engine, EngineFault, EngineOptions, OpenSessionOptions } from "./engine-options.ts"
export type { Engine, EngineFault, EngineOptions, OpenSessionOptions } from "./engine-options.ts"

const settled = Promise.resolve()

const defaultOnError = (error: unknown, where: EngineFault): void => console.error(`widgethost: ${where.fault} failed for session ${where.sessionId}`, error)

/**
 * `createEngine` serving only the core proposals and the `features` given (default: none), so
 * that a bundler drops every feature the host does not pass: what a browser host imports to pay
 * only for what it uses. `createEngine` is this with every feature.
 *
 * @example createLeanEngine({ homeserver, features: [toDeviceFeature, delayedEventsFeature] })
 */
export const createLeanEngine = (options: EngineOptions): Engine => {
  const limits: Limits = { ...defaultLimits, ...options.limits }
  const policy = options.policy ?? emptyPolicy
  // One table per engine, shared by its sessions' configs (their state holds a reference only).
  const features = featureTable(options.features ?? [])
  const serving = clientServing(options.hooks, options.customActions, options.apiVersions, policy.clientCapabilities, options.ungatedRequests, features)
  const clock = options.clock ?? realClock
  const homeserver = options.homeserver
  if (isHomeserverPort(homeserver)) {
    // Running an Effect needs the Effect runtime, which a browser app on a Promise port should not bundle.
    throw new TypeError("widgethost: createEngine takes a PromiseHomeserverPort; convert an Effect-native HomeserverPort with fromEffectPort from @widgethost/core/effect")
  }
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
    truncate(dirty)
  }

  const drainEntry = (entry: Entry): void => {
    const inputs = entry.inbox
    if (inputs === undefined) return
    entry.inbox = undefined
    run(entry, { type: "inputs", inputs })
  }

  /** Sends one event to a session's chart and executes the commands its actions built, in order. */
  const run = (entry: Entry, event: SessionEvent): void => {
    // Executing may run another session's chart (an embedder callback asking `info()`): that run
    // appends its commands after these, executes them and cuts the outbox back to where it began,
    // so this loop executes its own tail in place, with no copy. Whatever happens, this run's
    // commands leave the outbox with it: none is executed again by a later run.
    const start = outbox.length
    const key = entry.key
    try {
      charts.send(entry, event)
      for (let i = start; i < outbox.length; i++) execute(key, outbox[i]!)
    } finally {
      truncate(outbox, start)
    }
    // A closed session told its listeners as it closed (see `Closed`).
    if (entry.watch !== undefined && handles.get(entry.key) === entry) entry.watch.observe(observed(entry))
  }

  const observed = (entry: Entry): Observed => {
    const { base, context } = entry
    const { requested, approved, denied } = context.state
    return { phase: phaseOf(base.value), requested, approved, denied }
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

  /** What the core remembers to be fast, for this engine only: its sessions' steps and its router share it. */
  const caches = createCoreCaches()
  const router = new Router({ deliver: push, caches, sessions: handles })
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

  const clientSide = { approver: options.approver, openIdApprover: options.openIdApprover, serving, features, push, fault }

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
      case "CallHomeserver":
        return callHomeserver(entry, key, command)
      case "AskApprover":
      case "AskOpenIdApprover":
      case "CancelApproval":
      case "CallClient":
      case "CancelClientCall":
      case "ClientRequestSettled":
        return executeClientCommand(clientSide, entry, key, command)
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
        // Its chart's state only: the entry would keep the widget's sink (and its frame) alive.
        closedStates.set(key, { base: entry.base, context: entry.context })
        if (closedStates.size > 1_000) closedStates.delete(closedStates.keys().next().value!)
        for (const prompt of entry.approvals?.values() ?? []) prompt.withdraw()
        for (const call of entry.client?.calls?.values() ?? []) call.withdraw()
        entry.client?.requests?.closeAll(command.reason)
        entry.client = undefined
        turnPoller.unwatch(key)
        handles.delete(key)
        charts.stop(entry) // the closed chart cancelled its timers; this is belt and braces
        router.close(key)
        for (const listener of closeListenersOf(entry)) {
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

  /**
   * Apart from `execute`, so that only a call pays for the closure its answer needs: a closure
   * over `execute`'s parameters would give every command executed a context of its own.
   */
  const callHomeserver = (entry: Entry, key: string, command: Extract<Command, { _tag: "CallHomeserver" }>): void => {
    // The answer arrives as an input of a later drain, however soon the port settles.
    const { ticket } = command
    const answer = (result: CallResult) => push(key, { _tag: "CallAnswered", ticket, result })
    try {
      callPort(homeserver, command.request, answer, features.calls)
    } catch (error) {
      // The port threw instead of returning a promise: a bug of the port, so the embedder hears
      // of it; the widget gets an error as for a rejection.
      fault(error, "homeserver", key, entry.handle.widgetId)
      answer({ _tag: "Failed", error: homeserverErrorFrom(error, methodOf(command.request)) })
    }
  }

  /** Every command of every session's chart lands here, and is executed right after the event. */
  const outbox: Command[] = []
  /** All sessions' charts, with their delayed events in one timer queue (one clock timer for all). */
  const charts = new SessionCharts({
    timers: new TimerQueue(clock),
    outbox,
    caches,
    ...(options.recordedSteps === undefined ? {} : { recorded: options.recordedSteps }),
    onDelayed: (chart, event) => {
      const entry = handles.get(chart.key)
      if (entry === undefined) return
      // What arrived before the timer fired runs first, as it would have in the turn's drain.
      drainEntry(entry)
      run(entry, event)
    }
  })

  /** What `info()` reads of a session's chart (all a closed one keeps). */
  type ChartState = Pick<ChartSession, "base" | "context">

  const infoOf = (key: string, widgetId: string, chart: ChartState): SessionInfo => infoFrom(key, widgetId, phaseOf(chart.base.value), chart.context.state)

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
      return infoOf(key, widgetId, entry ?? closedStates.get(key)!)
    },
    onClose: (key, listener) => {
      const entry = handles.get(key)
      if (entry === undefined) return () => false
      return addCloseListener(entry, listener)
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
  const closedStates = new Map<string, ChartState>()

  /** Every session's config: its own fields over what all of this engine's sessions share. */
  const configFor = sessionConfigs({ policy, limits, openIdApprover: options.openIdApprover !== undefined, client: serving.side, features })

  const openSession = (open: OpenSessionOptions): EngineSession => {
    const { widget } = open
    const key = `${widget.id}#${nextSession++}`
    const homeRoom = widget.kind === "room" ? widget.roomId : viewedRoom
    const handle = new SessionHandle(core, key, widget)
    const config = configFor({
      widgetId: widget.id,
      kind: widget.kind,
      homeRoom,
      waitForIframeLoad: open.waitForIframeLoad ?? widget.waitForIframeLoad,
      origin: open.origin,
      fileEncoding: open.transport === "m.websockets" ? "base64" : "structured-clone"
    })
    const entry = charts.open(new Entry(key, handle, open.send), { config })
    handles.set(key, entry)
    if (options.onLifecycle !== undefined) watchOf(entry)
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
      return [...handles.entries()].map(([key, entry]) => infoOf(key, entry.handle.widgetId, entry))
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
