import type { WidgetMessage } from "@widgethost/core"

/**
 * One widget's session as a transport sees it. The engine creates it (`engine.openSession`),
 * handing it a `send` function; the transport feeds it what the widget says and tells it when
 * the link goes down or comes back. Queueing of outbound messages while the link is slow or down
 * is the transport's business: the session calls `send` synchronously, in order, and never blocks.
 * The engine's sessions keep their methods on the prototype (no closures per session): to wrap
 * one, delegate to it rather than spreading it.
 */
export interface WidgetSession {
  readonly widgetId: string
  /** An inbound message from the widget: untrusted, already JSON-parsed (or a raw string). */
  readonly receive: (raw: unknown) => void
  /** The frame (iframe load event or equivalent) finished loading: `waitForIframeLoad` widgets start here. */
  readonly frameLoaded: () => void
  /**
   * The link to the widget is down but the session lives on (the transport queues and will
   * deliver again what the link may have lost). Until `transportUp`, toWidget requests do not
   * age: the request timeout counts only time the widget could answer in.
   */
  readonly transportDown: () => void
  readonly transportUp: () => void
  /** Ends the session (client side); idempotent. */
  readonly close: (reason?: string) => void
  /** Called once, when the session closes for any reason. Returns the function that unsubscribes. */
  readonly onClose: (listener: (reason: string) => void) => () => void
}

/** How a transport delivers the engine's messages to the widget. */
export type WidgetSink = (message: WidgetMessage) => void

/**
 * A session that behaves as `session` except where `overrides` say otherwise (e.g. a `receive`
 * that logs first). Use it instead of spreading: the engine's sessions keep their methods on the
 * prototype, which a spread does not copy.
 *
 * @example delegateSession(session, { receive: (raw) => { log(raw); session.receive(raw) } })
 */
export const delegateSession = (session: WidgetSession, overrides: Partial<WidgetSession>): WidgetSession => ({
  widgetId: session.widgetId,
  receive: (raw) => session.receive(raw),
  frameLoaded: () => session.frameLoaded(),
  transportDown: () => session.transportDown(),
  transportUp: () => session.transportUp(),
  close: (reason) => session.close(reason),
  onClose: (listener) => session.onClose(listener),
  ...overrides
})
