import { isObject, type WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"

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

/** Methods live on the prototype: call them on the transport (`transport.detach()`), don't pass them around bare. */
export interface PostMessageTransport {
  readonly session: WidgetSession
  readonly origin: string
  /** For frames given without `addEventListener`: report a load yourself. */
  frameLoaded(): void
  stats(): PostMessageTransportStats
  /** Removes the listeners and closes the session. Idempotent. */
  detach(): void
}


/** True for what a widget may send: its requests, and its responses to our requests. */
const isWidgetTraffic = (data: unknown): boolean =>
  isObject(data) && (data["api"] === "fromWidget" || (data["api"] === "toWidget" && "response" in data))

/**
 * One `message` listener per host window, whatever the number of widgets: each message goes to
 * the attachment whose frame sent it, found by `event.source` in a map. A listener per widget
 * would make every message cost one check per widget (the reference's cost at 1000 widgets).
 */
class Dispatcher {
  readonly attachments = new Set<PostMessageAttachment>()
  private readonly bySource = new Map<unknown, PostMessageAttachment>()
  /**
   * One copy of each widget origin: `URL.origin` makes a new string every time (about 80 B, a
   * rope and its first part), and a host embeds many widgets from few origins. Bounded.
   */
  private readonly origins = new Map<string, string>()

  constructor(private readonly host: Window) {}

  static for(host: Window): Dispatcher {
    let dispatcher = dispatchers.get(host)
    if (dispatcher === undefined) dispatchers.set(host, (dispatcher = new Dispatcher(host)))
    return dispatcher
  }

  /** The window's one copy of `origin`. */
  origin(origin: string): string {
    const known = this.origins.get(origin)
    if (known !== undefined) return known
    if (this.origins.size >= MAX_SHARED_ORIGINS) this.origins.delete(this.origins.keys().next().value!)
    this.origins.set(origin, origin)
    return origin
  }

  add(attachment: PostMessageAttachment): void {
    if (this.attachments.size === 0) this.host.addEventListener("message", this)
    this.attachments.add(attachment)
  }

  remove(attachment: PostMessageAttachment): void {
    this.attachments.delete(attachment)
    for (const [source, entry] of this.bySource) if (entry === attachment) this.bySource.delete(source)
    if (this.attachments.size === 0) this.host.removeEventListener("message", this)
  }

  /** The host window's `message` listener (an EventListener object: no closure per window). */
  handleEvent(event: MessageEvent): void {
    const source = event.source
    let attachment = source === null ? undefined : this.bySource.get(source)
    if (attachment === undefined || attachment.frame.contentWindow !== source) {
      // A frame's window appears once it is in the document: find it, then remember it.
      attachment = undefined
      for (const candidate of this.attachments) {
        if (source !== null && candidate.frame.contentWindow === source) {
          attachment = candidate
          this.bySource.set(source, candidate)
          break
        }
      }
    }
    if (attachment === undefined) {
      for (const candidate of this.attachments) candidate.ignoredSource++
      return
    }
    attachment.onMessage(event)
  }
}

const dispatchers = new WeakMap<object, Dispatcher>()

/** Origins a dispatcher keeps one copy of; past it the oldest is forgotten (sharing only saves memory). */
const MAX_SHARED_ORIGINS = 256

/**
 * One widget frame connected to its session. A class with its methods on the prototype, and
 * itself the frame's `load` listener (`handleEvent`): a host with a thousand idle widgets pays
 * for one object each, not a dozen closures.
 */
class PostMessageAttachment implements PostMessageTransport {
  readonly session: WidgetSession
  received = 0
  sent = 0
  ignoredSource = 0
  ignoredOrigin = 0
  ignoredShape = 0
  dropped = 0
  private attached = true

  constructor(
    readonly frame: WidgetFrame,
    readonly origin: string,
    private readonly dispatcher: Dispatcher,
    open: (send: (message: WidgetMessage) => void) => WidgetSession
  ) {
    // One bound function is both the session's sink (a message) and its close listener (a reason):
    // one closure per widget instead of two. Never unsubscribed: once detached, the session is
    // closed and its listeners go with it.
    const fromSession = this.fromSession.bind(this)
    this.session = open(fromSession)
    dispatcher.add(this)
    frame.addEventListener?.("load", this)
    this.session.onClose(fromSession)
  }

  /** The session sends `message` to the widget, or (given its close reason) has closed. */
  private fromSession(message: WidgetMessage | string): void {
    if (typeof message === "object" && message !== null) this.send(message)
    else this.detachListeners()
  }

  private send(message: WidgetMessage): void {
    const target = this.frame.contentWindow
    if (!this.attached || target === null) {
      this.dropped++
      return
    }
    this.sent++
    target.postMessage(message, this.origin)
  }

  /**
   * A message from this frame's window: the dispatcher found this attachment by `event.source`
   * and checked it against `frame.contentWindow` (read once per message: in a browser, a getter
   * across realms).
   */
  onMessage(event: MessageEvent): void {
    if (!this.attached) return
    if (event.origin !== this.origin) {
      this.ignoredOrigin++
      return
    }
    if (!isWidgetTraffic(event.data)) {
      this.ignoredShape++
      return
    }
    this.received++
    this.session.receive(event.data)
  }

  /** The frame's `load` listener. */
  handleEvent(): void {
    this.frameLoaded()
  }

  frameLoaded(): void {
    if (this.attached) this.session.frameLoaded()
  }

  stats(): PostMessageTransportStats {
    return {
      received: this.received,
      sent: this.sent,
      ignored: { source: this.ignoredSource, origin: this.ignoredOrigin, shape: this.ignoredShape },
      dropped: this.dropped
    }
  }

  detach(): void {
    if (this.detachListeners()) this.session.close("transport detached")
  }

  private detachListeners(): boolean {
    if (!this.attached) return false
    this.attached = false
    this.dispatcher.remove(this)
    this.frame.removeEventListener?.("load", this)
    return true
  }
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
  const dispatcher = Dispatcher.for(options.window ?? window)
  return new PostMessageAttachment(options.iframe, dispatcher.origin(url.origin), dispatcher, options.open)
}
