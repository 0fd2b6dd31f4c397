import type { WidgetMessage } from "../envelope.ts"
import type { HomeserverRequest } from "../homeserver-port.ts"
import { errorBody, type ProtocolError } from "../protocol-error.ts"
import type { Command, Report } from "./command.ts"
import { type Counters, type PendingCall, type RawRequest, type SessionState, type ToWidgetPurpose } from "./state.ts"

/** The next state and what the edges must do, in order. */
export interface Step {
  readonly state: SessionState
  readonly commands: ReadonlyArray<Command>
}

/**
 * Accumulates one step. It is mutable, but lives only inside one `reduce` call, so `reduce`
 * itself stays a pure function of its arguments.
 */
export class Stepper {
  readonly commands: Command[] = []
  constructor(public state: SessionState) {}

  set(patch: Partial<SessionState>): void {
    this.state = { ...this.state, ...patch }
  }

  count(counter: keyof Counters, by = 1): void {
    this.state = { ...this.state, counters: { ...this.state.counters, [counter]: this.state.counters[counter] + by } }
  }

  emit(command: Command): void {
    this.commands.push(command)
  }

  report(report: Report): void {
    this.commands.push({ _tag: "Report", report })
  }

  nextSeq(): number {
    const seq = this.state.seq
    this.state = { ...this.state, seq: seq + 1 }
    return seq
  }

  /** Sends a toWidget request and remembers it so its answer can be matched and timed out. */
  sendRequest(action: string, data: object, purpose: ToWidgetPurpose): string {
    const requestId = `wh-${this.nextSeq()}`
    const pending = new Map(this.state.pendingToWidget)
    if (pending.size === 0) {
      this.emit({ _tag: "StartTimer", timer: "request-timeouts", ms: Math.max(1, Math.floor(this.state.config.limits.requestTimeoutMs / 4)) })
    } else if (pending.size >= this.state.config.limits.maxPendingToWidget) {
      // A widget that never acknowledges must not grow our memory: give up on its oldest request.
      const [oldestId, oldest] = pending.entries().next().value as [string, { action: string }]
      pending.delete(oldestId)
      this.count("timedOut")
      this.report({ _tag: "RequestTimedOut", action: oldest.action, requestId: oldestId })
    }
    pending.set(requestId, { action, purpose, sweeps: 0 })
    this.set({ pendingToWidget: pending })
    this.send({ api: "toWidget", widgetId: this.state.config.widgetId, requestId, action, data: data as Readonly<Record<string, unknown>> })
    return requestId
  }

  send(message: WidgetMessage): void {
    this.count("sent")
    this.emit({ _tag: "SendToWidget", message })
  }

  /** Answers a widget's request: the request echoed with `response` added. */
  reply(raw: RawRequest, response: unknown): void {
    this.finish(raw)
    this.send({ ...(raw as unknown as WidgetMessage), response })
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
    const calls = new Map(this.state.pendingCalls)
    calls.set(ticket, pending)
    this.set({ pendingCalls: calls })
  }

  untrack(ticket: number): PendingCall | undefined {
    const pending = this.state.pendingCalls.get(ticket)
    if (pending !== undefined) {
      const calls = new Map(this.state.pendingCalls)
      calls.delete(ticket)
      this.set({ pendingCalls: calls })
    }
    return pending
  }

  /** Marks a widget request as being worked on (duplicate ids are refused meanwhile). */
  start(raw: RawRequest): void {
    const inFlight = new Set(this.state.inFlight)
    inFlight.add(requestIdOf(raw))
    this.set({ inFlight })
  }

  private finish(raw: RawRequest): void {
    const id = requestIdOf(raw)
    if (this.state.inFlight.has(id)) {
      const inFlight = new Set(this.state.inFlight)
      inFlight.delete(id)
      this.set({ inFlight })
    }
  }

  done(): Step {
    return { state: this.state, commands: this.commands }
  }
}

export const requestIdOf = (raw: RawRequest): string => (typeof raw.requestId === "string" ? raw.requestId : String(raw.requestid))
