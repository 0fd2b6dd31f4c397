/**
 * The widget's end of a Widget API transport: postMessage to the hosting window (MSC2764), or a
 * websocket to the host's `$matrix_websocket_uri` (MSC3009). Either way one message is one
 * Widget API envelope; the client above does not know which it has.
 */
import type { WidgetMessage } from "@widgethost/core"

export interface WidgetTransport {
  readonly send: (message: WidgetMessage) => void
  /** Hears every message from the host (unparsed input: the client judges it). Returns the unsubscribe. */
  readonly onMessage: (listener: (message: unknown) => void) => () => void
  /**
   * Hears the transport ending (the socket closed, or `close()`). `resumable`: the link dropped
   * and the host keeps the session for a reconnect (the websocket transport's resumable close
   * codes); absent or false, the end is final.
   */
  readonly onClose: (listener: (reason: string, resumable?: boolean) => void) => () => void
  readonly close: () => void
}

/** The parts of a window the postMessage transport uses, so tests can pass their own. */
export interface MessageWindow {
  readonly postMessage: (message: unknown, targetOrigin: string) => void
}
export interface MessageSource {
  readonly addEventListener: (type: "message", listener: (event: Event) => void) => void
  readonly removeEventListener: (type: "message", listener: (event: Event) => void) => void
}

export interface PostMessageTransportOptions {
  /** The host's origin: messages go only there and are heard only from there (never "*" by default). */
  readonly hostOrigin: string
  /** Default `window.parent`. */
  readonly host?: MessageWindow
  /** Default `window`. */
  readonly self?: MessageSource
}

/** A widget in an iframe talking to its host page. */
export const postMessageTransport = (options: PostMessageTransportOptions): WidgetTransport => {
  const host = options.host ?? (globalThis as unknown as { parent: MessageWindow }).parent
  const self: MessageSource = options.self ?? globalThis
  const closeListeners = new Set<(reason: string) => void>()
  const unsubscribers = new Set<() => void>()
  return {
    send: (message) => host.postMessage(message, options.hostOrigin),
    onMessage: (listener) => {
      // Only the host window, from the host's origin: any other frame on the page could post to us.
      const handler = (received: Event) => {
        const event = received as MessageEvent
        if (event.source !== (host as unknown) || (options.hostOrigin !== "*" && event.origin !== options.hostOrigin)) return
        listener(event.data)
      }
      self.addEventListener("message", handler)
      const unsubscribe = () => {
        self.removeEventListener("message", handler)
        unsubscribers.delete(unsubscribe)
      }
      unsubscribers.add(unsubscribe)
      return unsubscribe
    },
    onClose: (listener) => {
      closeListeners.add(listener)
      return () => closeListeners.delete(listener)
    },
    close: () => {
      for (const unsubscribe of [...unsubscribers]) unsubscribe()
      for (const listener of [...closeListeners]) listener("closed by the widget")
      closeListeners.clear()
    }
  }
}

/** The WebSocket API as browsers (and ws) have it: the client takes a constructor, so Node 20 passes ws's. */
export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: { data?: unknown; code?: number; reason?: string }) => void): void
}
export type WebSocketConstructor = new (url: string) => WebSocketLike

/**
 * Close codes after which the host keeps no session to resume (widgethost's websocket transport:
 * done, going away, internal error, replaced, unregistered); any other end (1006 for a dropped
 * network, 4408 no pong, 4429 rate limit, 4507 overflow, ...) may be resumed.
 */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1001, 1011, 4409, 4410])

/**
 * Connects to a host's websocket URI and resolves once the socket is open. Text frames are JSON
 * envelopes; a frame that is not JSON is passed on as its text.
 */
export const websocketTransport = (uri: string, options: { readonly WebSocket?: WebSocketConstructor } = {}): Promise<WidgetTransport> => {
  const Socket = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket
  if (Socket === undefined) return Promise.reject(new Error("no WebSocket: pass one (in Node 20, ws's WebSocket)"))
  return new Promise((resolve, reject) => {
    const socket = new Socket(uri)
    const messageListeners = new Set<(message: unknown) => void>()
    const closeListeners = new Set<(reason: string, resumable?: boolean) => void>()
    // A host may speak the moment the socket opens (a resumed session delivers its backlog):
    // frames that come before anyone listens wait for the first listener, in order.
    let early: Array<unknown> | undefined = []
    let open = false
    let closedByWidget = false
    socket.addEventListener("message", ({ data }) => {
      const text = typeof data === "string" ? data : String(data)
      let message: unknown = text
      try {
        message = JSON.parse(text)
      } catch {
        // not JSON: the client answers or drops it
      }
      if (early !== undefined && messageListeners.size === 0) early.push(message)
      else for (const listener of [...messageListeners]) listener(message)
    })
    socket.addEventListener("close", ({ code, reason }) => {
      const why = `socket closed (${code ?? "no code"}${reason ? `: ${reason}` : ""})`
      if (!open) return reject(new Error(`${uri}: ${why}`))
      for (const listener of [...closeListeners]) listener(why, !closedByWidget && !FINAL_CLOSE_CODES.has(code ?? 1005))
    })
    socket.addEventListener("error", () => {
      if (!open) reject(new Error(`${uri}: could not connect`))
    })
    socket.addEventListener("open", () => {
      open = true
      resolve({
        send: (message) => socket.send(JSON.stringify(message)),
        onMessage: (listener) => {
          messageListeners.add(listener)
          const waiting = early ?? []
          early = undefined
          for (const message of waiting) listener(message)
          return () => messageListeners.delete(listener)
        },
        onClose: (listener) => {
          closeListeners.add(listener)
          return () => closeListeners.delete(listener)
        },
        close: () => {
          closedByWidget = true
          socket.close(1000, "the widget is done")
        }
      })
    })
  })
}
