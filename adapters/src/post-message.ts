import type { WidgetMessage } from "../../core/src/envelope.ts"
import type { WidgetSession } from "../../machines/src/widget-session.ts"

/*
 * The postMessage transport, browser host side (MSC2764 "Widget API", MSC4412 checks).
 *
 * Inbound, a `message` event on the host window reaches the session only when all hold:
 *   1. `event.source` is the widget iframe's `contentWindow` (not another frame, tab, or the host);
 *   2. `event.origin` is exactly the origin of the widget's rendered URL;
 *   3. `event.data` is an object with `api: "fromWidget"` (the widget's requests), or with
 *      `api: "toWidget"` and a `response` field (the widget's answers to our requests).
 * Anything else is ignored and counted in `stats().ignored`; nothing is thrown at the sender.
 * Outbound, every message is posted with `targetOrigin` set to the widget's origin, never `*`: if
 * the frame has navigated elsewhere, the browser drops it instead of leaking it.
 *
 * The reference host (matrix-widget-api's `PostmessageTransport`) checks neither `event.source`
 * nor the origin of what it receives; a widget URL's origin must therefore be a real origin. An
 * iframe sandboxed without `allow-same-origin` has the opaque origin `"null"` and cannot be
 * served without `*`, so it is not supported.
 *
 * Lifecycle: the session is opened at attach; every iframe `load` event is `session.frameLoaded()`
 * (attach before setting `src`, or the first load is missed). `detach()` removes the listeners and
 * closes the session; a session closed by the engine detaches the transport.
 */

/** The iframe, or anything with its window (then the caller reports loads through `frameLoaded`). */
export type WidgetFrame =
  | HTMLIFrameElement
  | { readonly contentWindow: Window | null; readonly addEventListener?: undefined; readonly removeEventListener?: undefined }

export interface PostMessageTransportOptions {
  readonly iframe: WidgetFrame
  /** The rendered widget URL (after templating); its origin is the only one we talk to. */
  readonly widgetUrl: string
  readonly open: (send: (message: WidgetMessage) => void) => WidgetSession
  /** The host window that receives the widget's messages. Default: the global `window`. */
  readonly window?: Window
}

export interface PostMessageTransportStats {
  readonly received: number
  readonly sent: number
  readonly ignored: { readonly source: number; readonly origin: number; readonly shape: number }
  /** Sends after detach, or while the frame had no window. */
  readonly dropped: number
}

export interface PostMessageTransport {
  readonly session: WidgetSession
  readonly origin: string
  /** For frames given without `addEventListener`: report a load yourself. */
  readonly frameLoaded: () => void
  readonly stats: () => PostMessageTransportStats
  /** Removes the listeners and closes the session. Idempotent. */
  readonly detach: () => void
}

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** True for what a widget may send: its requests, and its responses to our requests. */
const isWidgetTraffic = (data: unknown): boolean =>
  isObject(data) && (data["api"] === "fromWidget" || (data["api"] === "toWidget" && "response" in data))

/** One attachment as the host window's shared listener sees it. */
interface Attachment {
  readonly frame: WidgetFrame
  readonly onMessage: (event: MessageEvent) => void
  readonly ignoreForeign: () => void
}

/**
 * One `message` listener per host window, whatever the number of widgets: each message goes to
 * the attachment whose frame sent it, found by `event.source` in a map. A listener per widget
 * would make every message cost one check per widget (the reference's cost at 1000 widgets).
 */
interface Dispatcher {
  readonly attachments: Set<Attachment>
  readonly bySource: Map<unknown, Attachment>
  readonly listener: (event: MessageEvent) => void
}

const dispatchers = new WeakMap<object, Dispatcher>()

const dispatcherFor = (host: Window): Dispatcher => {
  let dispatcher = dispatchers.get(host)
  if (dispatcher !== undefined) return dispatcher
  const attachments = new Set<Attachment>()
  const bySource = new Map<unknown, Attachment>()
  const listener = (event: MessageEvent) => {
    const source = event.source
    let attachment = source === null ? undefined : bySource.get(source)
    if (attachment === undefined || attachment.frame.contentWindow !== source) {
      // A frame's window appears once it is in the document: find it, then remember it.
      attachment = undefined
      for (const candidate of attachments) {
        if (source !== null && candidate.frame.contentWindow === source) {
          attachment = candidate
          bySource.set(source, candidate)
          break
        }
      }
    }
    if (attachment === undefined) {
      for (const candidate of attachments) candidate.ignoreForeign()
      return
    }
    attachment.onMessage(event)
  }
  dispatcher = { attachments, bySource, listener }
  dispatchers.set(host, dispatcher)
  return dispatcher
}

/**
 * Connects one widget iframe to a new session over postMessage, with strict source and origin
 * checks both ways.
 *
 * @example
 * const iframe = document.createElement("iframe")
 * const transport = attachPostMessageTransport({ iframe, widgetUrl: url, open: (send) => engine.openSession({ widget, send }) })
 * iframe.src = url
 * document.body.append(iframe)
 */
export const attachPostMessageTransport = (options: PostMessageTransportOptions): PostMessageTransport => {
  const url = new URL(options.widgetUrl)
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`widget URL must be http(s): ${url.protocol}`)
  const origin = url.origin
  const host = options.window ?? window
  const frame = options.iframe
  const counters = { received: 0, sent: 0, ignored: { source: 0, origin: 0, shape: 0 }, dropped: 0 }
  let attached = true

  const send = (message: WidgetMessage) => {
    const target = frame.contentWindow
    if (!attached || target === null) {
      counters.dropped++
      return
    }
    counters.sent++
    target.postMessage(message, origin)
  }

  const session = options.open(send)

  const onMessage = (event: MessageEvent) => {
    if (!attached) return
    if (event.source === null || event.source !== frame.contentWindow) {
      counters.ignored.source++
      return
    }
    if (event.origin !== origin) {
      counters.ignored.origin++
      return
    }
    if (!isWidgetTraffic(event.data)) {
      counters.ignored.shape++
      return
    }
    counters.received++
    session.receive(event.data)
  }

  const onLoad = () => {
    if (attached) session.frameLoaded()
  }

  const dispatcher = dispatcherFor(host)
  const attachment: Attachment = { frame, onMessage, ignoreForeign: () => void counters.ignored.source++ }
  if (dispatcher.attachments.size === 0) host.addEventListener("message", dispatcher.listener)
  dispatcher.attachments.add(attachment)
  frame.addEventListener?.("load", onLoad)

  const detachListeners = () => {
    if (!attached) return false
    attached = false
    dispatcher.attachments.delete(attachment)
    for (const [source, entry] of dispatcher.bySource) if (entry === attachment) dispatcher.bySource.delete(source)
    if (dispatcher.attachments.size === 0) host.removeEventListener("message", dispatcher.listener)
    frame.removeEventListener?.("load", onLoad)
    unsubscribe()
    return true
  }
  const unsubscribe = session.onClose(() => void detachListeners())

  return {
    session,
    origin,
    frameLoaded: onLoad,
    stats: () => ({ ...counters, ignored: { ...counters.ignored } }),
    detach: () => {
      if (detachListeners()) session.close("transport detached")
    }
  }
}
