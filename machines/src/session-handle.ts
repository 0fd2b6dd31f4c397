/**
 * A session as the embedding client holds it: what a transport feeds it (`WidgetSession`), its
 * state (`info`), toWidget requests of the client's own (`request`) and lifecycle events (`on`).
 * Methods live on the prototype and reach the engine through one shared core: a thousand idle
 * sessions pay for no closures.
 */
import type { ClientRequestOutcome, Input, Phase, SessionState, WidgetDefinition } from "@widgethost/core"
import type { LifecycleEvents, LifecycleListener } from "./lifecycle.ts"
import type { WidgetSession } from "./widget-session.ts"

export interface SessionInfo {
  readonly sessionId: string
  readonly widgetId: string
  /** The session chart's state (its phase). */
  readonly phase: Phase
  readonly requested: ReadonlyArray<string>
  readonly approved: ReadonlyArray<string>
  readonly denied: ReadonlyArray<string>
  readonly counters: SessionState["counters"]
  readonly homeRoom: string | undefined
}

export interface EngineSession extends WidgetSession {
  readonly sessionId: string
  /** The definition the session was opened with. */
  readonly widget: WidgetDefinition
  readonly info: () => SessionInfo
  /**
   * Sends a toWidget request of the client's (`theme_change`, `language_change`, `visibility`,
   * `screenshot`, MSC2790's `widget_config` / `button_clicked` / `close_modal`, `io.element.*`) and
   * resolves with the widget's response. Rejects with a {@link WidgetRequestError}: the widget's
   * error answer, the request timeout (`limits.requestTimeoutMs`, MSC2764's 10 s, not counting
   * time the transport reported its link down), the session
   * closing, or a refusal (an action only the engine sends, a session not ready yet, a widget
   * without the version the action needs, unless `ungatedRequests` names it).
   * `supported_api_versions` resolves with the widget's answer to the engine's own request, which
   * is sent once per document, now if nothing needed it yet.
   *
   * @example await session.request("theme_change", { name: "dark" })
   */
  readonly request: (action: string, data?: Readonly<Record<string, unknown>>) => Promise<unknown>
  /**
   * Listens to one kind of lifecycle event; returns the function that stops listening.
   *
   * @example session.on("phase", ({ phase }) => phase === "ready" && void session.request("theme_change", theme))
   */
  readonly on: <K extends keyof LifecycleEvents>(type: K, listener: LifecycleListener<K>) => () => void
}

/** Why `session.request` rejected: `kind` is the stable code, `response` the widget's error object when it answered one. */
export class WidgetRequestError extends Error {
  override readonly name = "WidgetRequestError"
  constructor(
    readonly kind: "refused" | "widget-error" | "timed-out" | "dropped" | "closed",
    message: string,
    readonly response?: unknown
  ) {
    super(message)
  }
}

/** The rejection for an outcome other than an answer. */
export const requestError = (action: string, outcome: Exclude<ClientRequestOutcome, { _tag: "Answered" }>): WidgetRequestError => {
  switch (outcome._tag) {
    case "Refused":
      return new WidgetRequestError("refused", `${action} was not sent: ${outcome.reason}`)
    case "TimedOut":
      return new WidgetRequestError("timed-out", `the widget did not answer ${action} within ${outcome.ms} ms`)
    case "Dropped":
      return new WidgetRequestError("dropped", `${action} will not be answered: ${outcome.reason}`)
    case "WidgetError": {
      const message = (outcome.error as { message?: unknown } | null)?.message
      return new WidgetRequestError("widget-error", `the widget refused ${action}: ${typeof message === "string" ? message : "no message"}`, outcome.error)
    }
  }
}

/** Engine internals a session handle calls. */
export interface HandleCore {
  readonly push: (key: string, input: Input) => void
  readonly info: (key: string, widgetId: string) => SessionInfo
  readonly onClose: (key: string, listener: (reason: string) => void) => () => void
  readonly request: (key: string, action: string, data: unknown) => Promise<unknown>
  readonly on: <K extends keyof LifecycleEvents>(key: string, type: K, listener: LifecycleListener<K>) => () => void
}

export class SessionHandle implements EngineSession {
  constructor(
    private readonly core: HandleCore,
    readonly sessionId: string,
    readonly widget: WidgetDefinition
  ) {}
  get widgetId(): string {
    return this.widget.id
  }
  receive(raw: unknown): void {
    this.core.push(this.sessionId, { _tag: "FromWidget", raw })
  }
  frameLoaded(): void {
    this.core.push(this.sessionId, { _tag: "FrameLoaded" })
  }
  transportDown(): void {
    this.core.push(this.sessionId, { _tag: "TransportDown" })
  }
  transportUp(): void {
    this.core.push(this.sessionId, { _tag: "TransportUp" })
  }
  close(reason = "closed by the client"): void {
    this.core.push(this.sessionId, { _tag: "Close", reason })
  }
  onClose(listener: (reason: string) => void): () => void {
    return this.core.onClose(this.sessionId, listener)
  }
  info(): SessionInfo {
    return this.core.info(this.sessionId, this.widgetId)
  }
  request(action: string, data: Readonly<Record<string, unknown>> = {}): Promise<unknown> {
    return this.core.request(this.sessionId, action, data)
  }
  on<K extends keyof LifecycleEvents>(type: K, listener: LifecycleListener<K>): () => void {
    return this.core.on(this.sessionId, type, listener)
  }
}
