/**
 * The oracle for `conform host`: our own session chart (`SessionCharts`, the handlers of
 * `@widgethost/core`), run as production runs it, with the host's own decisions made the way
 * the harness says the host under test makes them (approvals per `harness.approve`, every
 * homeserver call succeeding at once). Given the widget's steps, it says what a conforming host
 * answers: which requests succeed and which are refused, and which toWidget requests of the
 * capability exchange the widget is sent.
 *
 * It has no clock: no timer ever fires, so the paths never depend on time (the host under test
 * runs on its own clock, which the tool cannot move).
 */
import { type Command, createCoreCaches, defaultLimits, type HomeserverRequest, type Input, noClientSide, type SessionConfig, type WidgetMessage } from "@widgethost/core"
import { ChartSession, SessionCharts, TimerQueue } from "@widgethost/engine"
import { expectedApproval, type Harness } from "./harness.ts"
import { type Step, stepMessage } from "./widget-steps.ts"

/** toWidget actions whose answers are steps of a path; every other toWidget request is acknowledged at once. */
export const STEERED_ACTIONS: ReadonlySet<string> = new Set(["capabilities", "notify_capabilities"])

export type Outcome = "ok" | "error"

/** What the oracle says a host does in one step. */
export interface Expected {
  /** The request this step sent and how it must be answered (absent for answer steps). */
  readonly request?: { readonly requestId: string; readonly action: string; readonly outcome: Outcome }
  /** toWidget requests of the capability exchange the host sends in this step. */
  readonly toWidget: ReadonlyArray<{ readonly action: string; readonly data: Readonly<Record<string, unknown>> }>
}

const neverFires = { setTimeout: () => 0, clearTimeout: () => undefined, now: () => 0 }

const resultFor = (request: HomeserverRequest, roomId: string): Extract<Input, { _tag: "CallAnswered" }>["result"] => {
  switch (request._tag) {
    case "SendEvent":
      return { _tag: "Sent", value: { roomId: request.roomId, eventId: "$oracle" } }
    case "ReadEvents":
      return { _tag: "Page", value: { events: [] } }
    case "ReadState":
      return { _tag: "State", value: [] }
    case "JoinedRooms":
      return { _tag: "Rooms", value: [roomId] }
    default:
      return { _tag: "Done" }
  }
}

export class HostOracle {
  readonly expected: Expected[] = []
  private readonly outbox: Command[] = []
  private readonly charts: SessionCharts
  private readonly session: ChartSession

  constructor(private readonly harness: Harness) {
    this.charts = new SessionCharts({ timers: new TimerQueue(neverFires), outbox: this.outbox, caches: createCoreCaches(), onDelayed: () => undefined })
    const config: SessionConfig = {
      widgetId: harness.widgetId,
      kind: "room",
      homeRoom: harness.roomId,
      // MSC3009: a websocket widget speaks first (content_loaded).
      waitForIframeLoad: false,
      policy: { rules: [] },
      limits: { ...defaultLimits, requestTimeoutMs: 3_600_000, approvalTimeoutMs: 3_600_000 },
      client: noClientSide
    }
    this.session = this.charts.open(new ChartSession("conform"), { config })
  }

  get state() {
    return this.session.snapshot.context.state
  }

  get value(): unknown {
    return this.session.snapshot.value
  }

  get done(): boolean {
    return this.session.snapshot.status === "done"
  }

  /** The oracle's open toWidget request for `action`, newest first (answer steps answer it). */
  pendingRequest(action: string): string | undefined {
    let found: string | undefined
    for (const [requestId, pending] of this.state.pendingToWidget) if (pending.action === action) found = requestId
    return found
  }

  /** Plays one step (the `index`th of its path) and records what the host must do. */
  play(step: Step, index: number): Expected {
    const sent: WidgetMessage[] = []
    let request: Expected["request"]
    if (step.kind === "request") {
      const message = stepMessage(step, index, this.harness)
      this.feed([{ _tag: "FromWidget", raw: message }], sent)
      const reply = sent.find((m) => m.api === "fromWidget" && m.requestId === message.requestId)
      const outcome: Outcome = reply === undefined || isError((reply as { response?: unknown }).response) ? "error" : "ok"
      request = { requestId: message.requestId, action: message.action, outcome }
    } else {
      const requestId = this.pendingRequest(step.action)
      if (requestId !== undefined) this.feed([{ _tag: "FromWidget", raw: this.answerOf(step.action, requestId) }], sent)
    }
    const toWidget = sent.filter((m) => m.api === "toWidget" && !("response" in m) && STEERED_ACTIONS.has(m.action)).map((m) => ({ action: m.action, data: m.data }))
    const expected: Expected = request === undefined ? { toWidget } : { request, toWidget }
    this.expected.push(expected)
    return expected
  }

  /** The widget's answer to a toWidget request, as the wire runner also sends it. */
  answerOf(action: string, requestId: string): WidgetMessage {
    return { api: "toWidget", widgetId: this.harness.widgetId, requestId, action, data: {}, response: widgetAnswer(action, this.harness) }
  }

  /** Feeds inputs, then makes the host's own decisions until nothing is left to decide. */
  private feed(inputs: ReadonlyArray<Input>, sent: WidgetMessage[]): void {
    let next: Input[] = [...inputs]
    while (next.length > 0 && !this.done) {
      this.charts.send(this.session, { type: "inputs", inputs: next })
      const commands = this.outbox.splice(0)
      next = []
      for (const command of commands) {
        if (command._tag === "SendToWidget") {
          sent.push(command.message)
          const m = command.message
          // Unsteered toWidget requests (versions, pushes) are acknowledged as a widget would.
          if (m.api === "toWidget" && !("response" in m) && !STEERED_ACTIONS.has(m.action)) next.push({ _tag: "FromWidget", raw: this.answerOf(m.action, m.requestId) })
        } else if (command._tag === "AskApprover") {
          next.push({ _tag: "ApprovalDecided", ticket: command.ticket, approved: expectedApproval(this.harness, command.requested) })
        } else if (command._tag === "CallHomeserver") {
          next.push({ _tag: "CallAnswered", ticket: command.ticket, result: resultFor(command.request, this.harness.roomId) })
        }
      }
    }
  }
}

const isError = (response: unknown): boolean => typeof response === "object" && response !== null && "error" in response

/** What a well-behaved widget answers to a toWidget request. */
export const widgetAnswer = (action: string, harness: Harness): Readonly<Record<string, unknown>> =>
  action === "capabilities" ? { capabilities: [harness.sendCapability, harness.receiveCapability] } : action === "supported_api_versions" ? { supported_versions: harness.widgetVersions } : {}
