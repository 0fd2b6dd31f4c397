/**
 * The drop-in's place between the postMessage transport and the engine's session, where the
 * reference's own behaviours live on: each fromWidget request is first offered to the client as
 * a cancelable `action:<name>` event, and one a listener takes over (`preventDefault()`) is the
 * listener's to answer through `transport.reply`, never the engine's. It also tells the client
 * when the widget acknowledged `notify_capabilities` (`capabilitiesNotified`).
 *
 * One answer per request: `transport.reply` answers only a request a listener took over, once.
 * With the reference, a listener that replies without `preventDefault()` answers a request the
 * host answers too (two replies), and nothing stops a second `reply`; here those are dropped.
 */
import type { WidgetMessage } from "@widgethost/core"
import type { EngineSession, WidgetSession } from "@widgethost/engine"
import type { IWidgetApiRequest, IWidgetApiResponseData } from "matrix-widget-api"
import type { OpaqueCapabilities } from "./opaque-capabilities.ts"

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => typeof value === "object" && value !== null && !Array.isArray(value)

/** Where the traffic's events go: the `ClientWidgetApi` (an EventEmitter). */
export interface TrafficEvents {
  readonly emit: (event: string, ...args: unknown[]) => boolean
}

/** The part of matrix-widget-api's `ITransport` a client uses on `ClientWidgetApi.transport`. */
export interface DropInTransport {
  readonly widgetId: string
  /** The widget's origin: the only one messages go to or are taken from. */
  readonly targetOrigin: string
  /** True while the widget can be talked to (from attach until `stop`). */
  readonly ready: boolean
  /**
   * Sends a toWidget request of the client's (`io.element.*`, `theme_change`, …) and resolves with
   * the widget's response; rejects with the engine's `WidgetRequestError` (timeout, widget error,
   * an action only the engine sends, a session not ready).
   */
  send<T extends object, R = unknown>(action: string, data: T): Promise<R>
  /** Answers a request an `action:` listener took over with `preventDefault()`; anything else is dropped. */
  reply<T extends IWidgetApiResponseData>(request: IWidgetApiRequest, response: T): void
  stop(): void
}

export class WidgetTraffic implements DropInTransport {
  private session: EngineSession | undefined
  private sink: ((message: WidgetMessage) => void) | undefined
  /** Requests `action:` listeners took over and have not answered yet. */
  private readonly taken = new Set<string>()
  /** The request being offered to the `action:` listeners right now (a listener may reply inside `emit`). */
  private offering: { readonly requestId: string; readonly event: CustomEvent; answered: boolean } | undefined
  /** Our `notify_capabilities` requests waiting for the widget's acknowledgement. */
  private readonly notifying = new Set<string>()
  private stopped = false

  constructor(
    readonly widgetId: string,
    readonly targetOrigin: string,
    private readonly events: TrafficEvents,
    private readonly opaque: OpaqueCapabilities,
    private readonly onStop: () => void
  ) {}

  get ready(): boolean {
    return !this.stopped && this.session !== undefined
  }

  /** The engine's `send` for the session: notes our notify_capabilities ids on the way out. */
  outgoing(sink: (message: WidgetMessage) => void): (message: WidgetMessage) => void {
    this.sink = sink
    return (message) => {
      if (message.api === "toWidget" && !("response" in message) && message.action === "notify_capabilities") this.notifying.add(message.requestId)
      sink(message)
    }
  }

  /** What the postMessage transport feeds: the session, with the action events in front. */
  attach(session: EngineSession): WidgetSession {
    this.session = session
    return {
      widgetId: session.widgetId,
      receive: (raw) => this.receive(session, raw),
      frameLoaded: () => session.frameLoaded(),
      transportDown: () => session.transportDown(),
      transportUp: () => session.transportUp(),
      close: (reason) => session.close(reason),
      onClose: (listener) => session.onClose(listener)
    }
  }

  private receive(session: EngineSession, raw: unknown): void {
    if (this.stopped) return
    this.opaque.admitFrom(raw)
    if (isRecord(raw) && raw["api"] === "fromWidget" && raw["widgetId"] === this.widgetId && typeof raw["action"] === "string" && typeof raw["requestId"] === "string") {
      const name = `action:${raw["action"]}`
      const event = new CustomEvent(name, { detail: raw, cancelable: true })
      const offer = { requestId: raw["requestId"], event, answered: false }
      this.offering = offer
      try {
        this.events.emit(name, event)
      } catch (error) {
        // A throwing listener must not cost the widget its answer: the engine serves it unless taken over.
        console.error(`[ClientWidgetApi] a listener of ${name} threw`, error)
      } finally {
        this.offering = undefined
      }
      if (event.defaultPrevented) {
        if (!offer.answered) this.taken.add(offer.requestId)
        return
      }
    }
    session.receive(raw)
    if (isRecord(raw) && raw["api"] === "toWidget" && "response" in raw && typeof raw["requestId"] === "string" && this.notifying.delete(raw["requestId"])) {
      this.events.emit("capabilitiesNotified")
    }
  }

  send<T extends object, R = unknown>(action: string, data: T): Promise<R> {
    if (this.session === undefined || this.stopped) return Promise.reject(new Error(`${action} was not sent: the transport is stopped`))
    return this.session.request(action, data as Readonly<Record<string, unknown>>) as Promise<R>
  }

  reply<T extends IWidgetApiResponseData>(request: IWidgetApiRequest, response: T): void {
    if (this.stopped || this.sink === undefined) return
    const offer = this.offering
    if (offer !== undefined && offer.requestId === request.requestId && offer.event.defaultPrevented && !offer.answered) {
      // Answered from inside the listener that took it over.
      offer.answered = true
    } else if (!this.taken.delete(request.requestId)) {
      console.warn(`[ClientWidgetApi] reply to ${request.action} (${request.requestId}) dropped: no action listener took it over, or it was answered already`)
      return
    }
    this.sink({ ...request, response })
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.taken.clear()
    this.notifying.clear()
    this.onStop()
  }
}
