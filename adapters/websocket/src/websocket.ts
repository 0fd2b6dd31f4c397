import { createHash, randomBytes } from "node:crypto"
import { createServer as createHttpServer, type IncomingMessage, type Server, STATUS_CODES } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import type { Duplex } from "node:stream"
import { type RawData, WebSocket, WebSocketServer } from "ws"
import { listen } from "./listen.ts"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"

/*
 * MSC3009 websocket transport, server side: the host listens, the widget makes first contact.
 * One text frame carries one Widget API message as JSON, exactly as over postMessage.
 *
 * ## Who may connect
 * `register` hands out a URI `ws://127.0.0.1:PORT/widget/<token>` (token: 32 random bytes,
 * base64url, or the caller's own of that shape, so a widget can keep its URI across restarts) for
 * `$matrix_websocket_uri`. Everything is refused in the HTTP upgrade, before a single frame is read:
 *   401  no token, or a token that is not registered (the two are indistinguishable)
 *   403  the request carries `Origin` and the origin is not allowed
 *   409  the widget already has a live connection (`onDuplicate: "refuse"`, the default)
 *   503  the transport is closing
 *   400  a malformed websocket handshake (answered by ws)
 *   426  a plain HTTP request
 * Origin policy: requests without `Origin` (native widgets, CLIs) pass on the token alone. A
 * request with `Origin` comes from a browser, where any web page the user visits can try to reach
 * 127.0.0.1; it passes only when its origin is in `allowedOrigins` or in the registration's
 * `origins` (normally the widget URL's origin). With neither list, every browser is refused.
 * Tokens are kept only as SHA-256 digests, so a lookup never compares the secret itself.
 *
 * ## Close codes (each connection end is counted once under its code in `stats().closed`)
 *   code  sent by  meaning                                                     afterwards
 *   1000  host     the engine closed the session (reason: the session's)       session over
 *   1000  widget   the widget is done                                          session closed now
 *   1001  host     the transport is shutting down (`close()`)                  session over
 *   1002  ws       WebSocket protocol error                                    resumable
 *   1003  host     binary frame (the Widget API is JSON text)                  resumable
 *   1005  widget   closed without a status code                                resumable
 *   1006  -        the socket dropped without a close frame                    resumable
 *   1007  ws       text frame that is not valid UTF-8                          resumable
 *   1009  ws       message larger than `maxFrameBytes`                         resumable
 *   1011  host     `open` or `session.receive` threw                           session over
 *   4408  host     liveness: no pong nor message for `deadAfterMs` (socket     resumable
 *                  terminated, the widget never sees the code)
 *   4409  host     replaced by a newer connection with the same token          session lives on
 *                  (`onDuplicate: "replace"`)                                  the new connection
 *   4410  host     the host unregistered the widget                            session over
 *   4429  host     more than `rateLimit.messages` messages in `perMs`          resumable
 *   4507  host     outbound queue overflow: the backlog was dropped            resumable, gap notice
 *   other widget   whatever code the widget sent                               resumable
 * "Resumable" means the session is suspended (`transportDown()`) for `resumeGraceMs`; see below.
 *
 * ## Reconnection (MSC3009 leaves it undefined; this is our definition)
 * - A session belongs to a registration (a token), not to a connection. When a connection ends
 *   in a resumable way, the session is told `transportDown()` and kept for `resumeGraceMs`
 *   (default 30 s). Messages the session sends meanwhile wait, in order, in the registration's
 *   outbound queue.
 * - The widget resumes by connecting again with the same URI within the window. The queued
 *   messages are delivered first, exactly once and in order, then `transportUp()` is called and
 *   live traffic follows. The widget must not redo the capability exchange: the session is the same.
 * - When the window expires, the session is closed (`session.close(...)`) and the queue dropped. A
 *   later connection with the same token starts a new session through `open`, from scratch (the
 *   widget sends `content_loaded` again, as at first contact).
 * - Ends that are not resumable: the widget closing with 1000, the engine closing the session,
 *   `unregister`, `close`, an exception in the session. `resumeGraceMs: 0` disables resuming.
 * - Limits of "exactly once": there are no acknowledgements in the Widget API, so messages already
 *   handed to the operating system when a link silently dies may be lost (at most once). The
 *   guarantee covers what was queued: messages sent while the link was down or backpressured.
 * - A registration's `onWrite` hook hears of each message it marked right before the message is
 *   handed to the socket (`ws.send`), never for one still queued or dropped: the service journals
 *   delivery positions there, so a position never runs ahead of what left the process.
 *
 * ## Backpressure and overflow
 * Each registration has its own queue and each connection its own socket, so a slow widget never
 * stalls another. Once a socket buffers `highWaterMarkBytes` (default 1 MiB, ws `bufferedAmount`)
 * messages wait in the queue until the write that crossed the mark is flushed (its send callback). When the queue would
 * exceed `outboundQueueLimit` messages (default 1000), whether the widget is connected but not
 * reading or disconnected, the whole backlog is dropped and counted (`stats().dropped.overflow`)
 * and a live connection is closed with 4507 and the reason "outbound queue overflow". Nothing is
 * lost silently: on its next connection, the first message the widget receives is
 *   { api: "toWidget", widgetId, requestId: "widgethost-gap-<n>",
 *     action: "io.widgethost.transport_gap", data: { dropped: <count>, reason: "overflow" } }
 * before anything newer. The widget should treat its view as stale (re-read what it needs); the
 * engine's pending requests in the dropped backlog time out as usual. The widget's answer to this
 * request (ack or "unknown action" error) is consumed by the transport, not passed to the session.
 *
 * ## Liveness
 * Every `pingIntervalMs` (default 10 s) the host pings. A connection with neither a pong nor a
 * message for `deadAfterMs` (default 30 s) is terminated (4408) within one more interval, and the
 * session suspended as above. A widget that connects and never speaks is not dead as long as it
 * answers pings (browsers and ws do so automatically): its session just waits for it.
 *
 * The websocket transport never calls `session.frameLoaded()`: MSC3009 makes
 * `waitForIframeLoad` false, the widget speaks first (`content_loaded`).
 */

/** Host-side close codes; see the table above. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  Unsupported: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidPayload: 1007,
  TooBig: 1009,
  InternalError: 1011,
  DeadPeer: 4408,
  Replaced: 4409,
  Unregistered: 4410,
  RateLimited: 4429,
  Overflow: 4507
} as const

/** The `toWidget` action that announces dropped messages on resume. */
export const TRANSPORT_GAP_ACTION = "io.widgethost.transport_gap"

export type RefusalReason = "token" | "origin" | "duplicate" | "closing" | "handshake" | "not-websocket"

export interface Timers {
  readonly setTimeout: (callback: () => void, ms: number) => unknown
  readonly clearTimeout: (handle: unknown) => void
  readonly setInterval: (callback: () => void, ms: number) => unknown
  readonly clearInterval: (handle: unknown) => void
}

export interface WebsocketTransportOptions {
  /** Default `127.0.0.1`: only local processes can connect. */
  readonly host?: string
  /** Default 0: a free port. */
  readonly port?: number
  /** Serve `wss://` with this certificate. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer }
  /** Browser origins allowed for every widget (each registration can add its own). Default: none. */
  readonly allowedOrigins?: ReadonlyArray<string>
  /** Largest inbound message; larger ones close with 1009. Protects the host's memory from one huge frame. Default 1 MiB. */
  readonly maxFrameBytes?: number
  /** Inbound messages per connection; more closes with 4429. Protects the engine and the homeserver from a flooding widget. Default 500 per 1000 ms. */
  readonly rateLimit?: { readonly messages: number; readonly perMs: number }
  /** Default 10 000 ms. */
  readonly pingIntervalMs?: number
  /** Silence after which the peer is dead. Default 30 000 ms. */
  readonly deadAfterMs?: number
  /** How long a suspended session waits for the widget to reconnect (its queue is kept meanwhile). Default 30 000 ms; 0 disables resuming. */
  readonly resumeGraceMs?: number
  /** Messages that may wait per widget; more is an overflow (4507). Protects the host's memory from a widget that stops reading. Default 1000. */
  readonly outboundQueueLimit?: number
  /** Bytes buffered in a socket (ws `bufferedAmount`) beyond which messages wait in the queue. Default 1 MiB. */
  readonly highWaterMarkBytes?: number
  /** A second connection for a connected widget: refuse it (409, default) or close the first (4409). */
  readonly onDuplicate?: "refuse" | "replace"
  /** After the host starts a close handshake, terminate the socket if it is not done by then. Default 5000 ms. */
  readonly closeTimeoutMs?: number
  /** Injectable timers (liveness, rate windows, resume window, close timeout), for simulated time. */
  readonly timers?: Timers
}

export interface WebsocketTransportStats {
  readonly registered: number
  readonly connections: number
  readonly accepted: number
  readonly refused: Readonly<Record<RefusalReason, number>>
  readonly closed: Readonly<Record<number, number>>
  readonly messagesIn: number
  readonly messagesOut: number
  readonly dropped: { readonly overflow: number; readonly stale: number; readonly unserialisable: number }
  readonly overflows: number
  readonly sessionsOpened: number
  readonly sessionsResumed: number
  readonly sessionsExpired: number
  readonly sessionErrors: number
}

/**
 * Tells a registration's owner which of its messages reached the socket. `mark` is asked once per
 * message as the session sends it (`undefined`: not of interest); `written` gets that mark,
 * synchronously, right before the message is handed to `ws.send`. Messages dropped (overflow, a
 * session that ended with its queue) are never reported.
 */
export interface WriteHook<M = unknown> {
  readonly mark: (message: WidgetMessage) => M | undefined
  readonly written: (mark: M) => void
}

export interface RegistrationOptions<M = unknown> {
  /** Browser origins allowed for this widget besides `allowedOrigins`. */
  readonly origins?: ReadonlyArray<string>
  /** The widget's token (43 base64url characters, as `register` makes them), to keep its URI across restarts; default: a fresh random one. */
  readonly token?: string
  readonly onWrite?: WriteHook<M>
}

export interface WebsocketRegistration {
  /** The URI for `$matrix_websocket_uri`; it carries the widget's secret token. */
  readonly uri: string
  /** Closes the connection (4410) and the session, and forgets the token. Idempotent. */
  readonly unregister: () => void
}

export interface WebsocketTransport {
  /** `ws://host:port` (or `wss://`). */
  readonly url: string
  /**
   * Registers a widget before it is rendered. `open` is called when the widget makes first contact
   * (and again after a resume window expired) to create its session. Throws on a malformed or
   * already registered `token`.
   */
  readonly register: <M>(widgetId: string, open: (send: (message: WidgetMessage) => void) => WidgetSession, options?: RegistrationOptions<M>) => WebsocketRegistration
  readonly stats: () => WebsocketTransportStats
  /** Closes every connection (1001) and session, then the server. */
  readonly close: () => Promise<void>
}

const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout)
}

/** One connection. It ends once; events after that are ignored. */
interface Link {
  readonly ws: WebSocket
  /** A write past the high water mark is not yet flushed: new messages queue. */
  blocked: boolean
  received: number
  active: boolean
  idleMs: number
  ended: boolean
  ticker: unknown
  rateWindow: unknown
}

/** A queued message whose writing the registration's `onWrite` hook wants to hear of. */
interface Marked {
  readonly data: string
  readonly mark: unknown
}

/** One outbound message, serialised: most are plain strings. */
type Outbound = string | Marked

/** One registered widget: its token, its session (if any) and its outbound queue. */
interface Registration {
  readonly widgetId: string
  readonly digest: string
  readonly open: (send: (message: WidgetMessage) => void) => WidgetSession
  readonly origins: ReadonlySet<string>
  readonly onWrite: WriteHook | undefined
  /** Bumped whenever a session ends; a `send` of an older session is stale. */
  generation: number
  session: { readonly session: WidgetSession; readonly unsubscribe: () => void } | undefined
  suspended: boolean
  link: Link | undefined
  queue: Array<Outbound>
  /** Messages dropped since the widget last heard from us; announced on the next connection. */
  dropped: number
  gapSeq: number
  readonly gapRequests: Set<string>
  grace: unknown
  unregistered: boolean
}

type After = "suspend" | "end-session" | "keep"
interface Ending {
  readonly code: number
  readonly reason: string
  /** `close`: send a close frame; `terminate`: destroy the socket; `none`: ws is already closing it. */
  readonly action: "close" | "terminate" | "none"
  readonly after: After
}

const PATH_PREFIX = "/widget/"
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

const digestOf = (token: string) => createHash("sha256").update(token).digest("base64url")

/** Close reasons are limited to 123 bytes of UTF-8. */
const clampReason = (reason: string) => {
  let out = reason
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1)
  return out
}

const codeOfWsError = (code: string | undefined): number | undefined => {
  if (code === undefined || !code.startsWith("WS_ERR_")) return undefined
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return CloseCode.TooBig
  if (code === "WS_ERR_INVALID_UTF8") return CloseCode.InvalidPayload
  return CloseCode.ProtocolError
}

/** Answers an upgrade request with a plain HTTP error, as ws's `abortHandshake` does. */
const refuseUpgrade = (socket: Duplex, status: number) => {
  const body = STATUS_CODES[status] ?? "Refused"
  socket.once("finish", () => socket.destroy())
  socket.end(
    `HTTP/1.1 ${status} ${body}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}

/**
 * Starts the websocket transport, listening before any widget is rendered.
 *
 * @example
 * const transport = await startWebsocketTransport()
 * const { uri } = transport.register(widget.id, (send) => engine.openSession({ widget, send }))
 * const url = renderWidgetUrl(widget.url, { ...vars, transport: "m.websockets", websocketUri: uri })
 */
export const startWebsocketTransport = async (options: WebsocketTransportOptions = {}): Promise<WebsocketTransport> => {
  const host = options.host ?? "127.0.0.1"
  const timers = options.timers ?? realTimers
  const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024
  const rateLimit = options.rateLimit ?? { messages: 500, perMs: 1000 }
  const pingIntervalMs = options.pingIntervalMs ?? 10_000
  const deadAfterMs = options.deadAfterMs ?? 30_000
  const resumeGraceMs = options.resumeGraceMs ?? 30_000
  const outboundQueueLimit = options.outboundQueueLimit ?? 1000
  const highWaterMarkBytes = options.highWaterMarkBytes ?? 1024 * 1024
  const onDuplicate = options.onDuplicate ?? "refuse"
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000
  const allowedOrigins = new Set(options.allowedOrigins ?? [])

  const registrations = new Map<string, Registration>()
  const sockets = new Set<WebSocket>()
  let closing = false

  const counters = {
    accepted: 0,
    refused: { token: 0, origin: 0, duplicate: 0, closing: 0, handshake: 0, "not-websocket": 0 } as Record<RefusalReason, number>,
    closed: {} as Record<number, number>,
    messagesIn: 0,
    messagesOut: 0,
    dropped: { overflow: 0, stale: 0, unserialisable: 0 },
    overflows: 0,
    sessionsOpened: 0,
    sessionsResumed: 0,
    sessionsExpired: 0,
    sessionErrors: 0
  }

  const server: Server = options.tls === undefined ? createHttpServer() : createHttpsServer({ cert: options.tls.cert, key: options.tls.key })
  // No compression: a deflated frame is a decompression bomb waiting for `maxPayload` to catch it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes, perMessageDeflate: false, clientTracking: false })

  // ---- outbound --------------------------------------------------------------------------------

  /**
   * Hands one message to the socket. Only the write that takes the socket's buffer past the high
   * water mark carries a callback (a callback per message costs throughput); until it fires, which
   * means everything before it reached the OS, the link is blocked and messages wait in the queue.
   */
  const write = (reg: Registration, link: Link, item: Outbound) => {
    counters.messagesOut++
    let data: string
    if (typeof item === "string") data = item
    else {
      data = item.data
      try {
        reg.onWrite?.written(item.mark)
      } catch {
        // The hook's owner keeps its own books; its failure must not cost the widget the message.
      }
    }
    if (link.ws.bufferedAmount + data.length < highWaterMarkBytes) return link.ws.send(data)
    link.blocked = true
    link.ws.send(data, () => {
      link.blocked = false
      if (reg.link === link) pump(reg)
    })
  }

  const pump = (reg: Registration) => {
    const link = reg.link
    if (link === undefined) return
    while (reg.queue.length > 0 && !link.blocked) write(reg, link, reg.queue.shift()!)
  }

  const overflow = (reg: Registration) => {
    counters.overflows++
    counters.dropped.overflow += reg.queue.length
    reg.dropped += reg.queue.length
    reg.queue = []
    if (reg.link !== undefined) {
      endLink(reg, reg.link, {
        code: CloseCode.Overflow,
        reason: `outbound queue overflow: ${reg.dropped} messages dropped; reconnect to resume`,
        action: "close",
        after: "suspend"
      })
    }
  }

  const enqueue = (reg: Registration, item: Outbound) => {
    const link = reg.link
    if (link !== undefined && reg.queue.length === 0 && !link.blocked) return write(reg, link, item)
    reg.queue.push(item)
    if (reg.queue.length > outboundQueueLimit) overflow(reg)
    else pump(reg)
  }

  /** The `send` handed to one session: bound to its generation, so it can never reach a later session's widget. */
  const sinkFor = (reg: Registration, generation: number) => (message: WidgetMessage) => {
    if (reg.generation !== generation) {
      counters.dropped.stale++
      return
    }
    let data: string
    try {
      data = JSON.stringify(message)
    } catch {
      counters.dropped.unserialisable++
      return
    }
    const mark = reg.onWrite?.mark(message)
    enqueue(reg, mark === undefined ? data : { data, mark })
  }

  const gapNotice = (reg: Registration): string => {
    const requestId = `widgethost-gap-${++reg.gapSeq}`
    reg.gapRequests.add(requestId)
    const message: WidgetMessage = {
      api: "toWidget",
      widgetId: reg.widgetId,
      requestId,
      action: TRANSPORT_GAP_ACTION,
      data: { dropped: reg.dropped, reason: "overflow" }
    }
    reg.dropped = 0
    return JSON.stringify(message)
  }

  // ---- sessions --------------------------------------------------------------------------------

  const forgetSession = (reg: Registration) => {
    const current = reg.session
    reg.generation++
    reg.session = undefined
    reg.suspended = false
    reg.queue = []
    reg.dropped = 0
    reg.gapRequests.clear()
    if (reg.grace !== undefined) timers.clearTimeout(reg.grace)
    reg.grace = undefined
    current?.unsubscribe()
    return current?.session
  }

  /** The transport ends the session (grace expired, unregister, shutdown, widget closed with 1000). */
  const closeSession = (reg: Registration, reason: string) => {
    const session = forgetSession(reg)
    if (session === undefined) return
    try {
      session.close(reason)
    } catch {
      counters.sessionErrors++
    }
  }

  const suspend = (reg: Registration) => {
    if (reg.session === undefined) return
    if (resumeGraceMs <= 0) return closeSession(reg, "transport: the widget disconnected")
    reg.suspended = true
    reg.grace = timers.setTimeout(() => {
      reg.grace = undefined
      counters.sessionsExpired++
      closeSession(reg, `transport: the widget did not reconnect within ${resumeGraceMs} ms`)
    }, resumeGraceMs)
    // Deferred: a link can end inside the session's own `send` (overflow), and the session must
    // not be re-entered in the middle of its step.
    const { session } = reg.session
    const generation = reg.generation
    queueMicrotask(() => {
      if (reg.generation !== generation || !reg.suspended) return
      try {
        session.transportDown()
      } catch {
        counters.sessionErrors++
      }
    })
  }

  const openSession = (reg: Registration, link: Link) => {
    forgetSession(reg)
    const generation = reg.generation
    let session: WidgetSession
    try {
      session = reg.open(sinkFor(reg, generation))
    } catch {
      counters.sessionErrors++
      return endLink(reg, link, { code: CloseCode.InternalError, reason: "the host could not open a session", action: "close", after: "keep" })
    }
    counters.sessionsOpened++
    // The session may have closed itself, or the link died, while it was being opened.
    if (reg.generation !== generation) return
    const unsubscribe = session.onClose((reason) => {
      if (reg.generation !== generation) return
      forgetSessionAfterEngineClose(reg, reason)
    })
    reg.session = { session, unsubscribe }
  }

  /** The engine closed the session: flush what it said last, then close the link with 1000. */
  const forgetSessionAfterEngineClose = (reg: Registration, reason: string) => {
    const link = reg.link
    if (link !== undefined) for (const item of reg.queue) write(reg, link, item)
    reg.queue = []
    forgetSession(reg)
    if (link !== undefined) endLink(reg, link, { code: CloseCode.Normal, reason: reason || "session closed", action: "close", after: "keep" })
  }

  // ---- connections -----------------------------------------------------------------------------

  const endLink = (reg: Registration, link: Link, ending: Ending) => {
    if (link.ended) return
    link.ended = true
    timers.clearInterval(link.ticker)
    timers.clearInterval(link.rateWindow)
    if (reg.link === link) reg.link = undefined
    counters.closed[ending.code] = (counters.closed[ending.code] ?? 0) + 1
    if (ending.action === "terminate") link.ws.terminate()
    else if (link.ws.readyState !== WebSocket.CLOSED) {
      if (ending.action === "close") link.ws.close(ending.code, clampReason(ending.reason))
      // A peer that never answers the close frame (or never reads) must not hold the socket.
      const killer = timers.setTimeout(() => link.ws.terminate(), closeTimeoutMs)
      link.ws.once("close", () => timers.clearTimeout(killer))
    }
    if (ending.after === "suspend") suspend(reg)
    else if (ending.after === "end-session") closeSession(reg, ending.reason)
  }

  const receive = (reg: Registration, link: Link, data: RawData, isBinary: boolean) => {
    if (link.ended) return
    link.active = true
    if (isBinary) {
      return endLink(reg, link, { code: CloseCode.Unsupported, reason: "binary frames are not supported: send JSON text", action: "close", after: "suspend" })
    }
    if (++link.received > rateLimit.messages) {
      return endLink(reg, link, {
        code: CloseCode.RateLimited,
        reason: `rate limit: more than ${rateLimit.messages} messages in ${rateLimit.perMs} ms`,
        action: "close",
        after: "suspend"
      })
    }
    counters.messagesIn++
    const text = (data as Buffer).toString()
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      message = text // the session counts or answers what it cannot decode
    }
    if (isGapAnswer(reg, message)) return
    const session = reg.session?.session
    if (session === undefined) return
    try {
      session.receive(message)
    } catch {
      counters.sessionErrors++
      endLink(reg, link, { code: CloseCode.InternalError, reason: "internal error", action: "close", after: "end-session" })
    }
  }

  const isGapAnswer = (reg: Registration, message: unknown): boolean => {
    if (reg.gapRequests.size === 0 || typeof message !== "object" || message === null) return false
    const { api, requestId } = message as { api?: unknown; requestId?: unknown }
    return api === "toWidget" && typeof requestId === "string" && reg.gapRequests.delete(requestId)
  }

  const accept = (reg: Registration, ws: WebSocket) => {
    sockets.add(ws)
    ws.once("close", () => sockets.delete(ws))
    counters.accepted++
    const link: Link = { ws, blocked: false, received: 0, active: true, idleMs: 0, ended: false, ticker: undefined, rateWindow: undefined }
    if (reg.unregistered || closing) {
      return endLink(reg, link, { code: reg.unregistered ? CloseCode.Unregistered : CloseCode.GoingAway, reason: "not available", action: "close", after: "keep" })
    }
    const previous = reg.link
    if (previous !== undefined) {
      if (onDuplicate === "refuse") {
        counters.refused.duplicate++
        return endLink(reg, link, { code: CloseCode.Replaced, reason: "the widget is already connected", action: "close", after: "keep" })
      }
      endLink(reg, previous, { code: CloseCode.Replaced, reason: "replaced by a newer connection", action: "close", after: "keep" })
    }
    reg.link = link
    ws.on("message", (data, isBinary) => receive(reg, link, data, isBinary))
    ws.on("pong", () => {
      link.active = true
    })
    ws.on("error", (error: Error & { code?: string }) => {
      // Protocol errors: ws is already closing with the right code. Socket errors: "close" follows.
      const code = codeOfWsError(error.code)
      if (code !== undefined) endLink(reg, link, { code, reason: error.message, action: "none", after: "suspend" })
    })
    ws.on("close", (code) => {
      endLink(reg, link, { code, reason: "the widget closed the connection", action: "none", after: code === CloseCode.Normal ? "end-session" : "suspend" })
    })
    link.ticker = timers.setInterval(() => {
      if (link.active) {
        link.active = false
        link.idleMs = 0
      } else link.idleMs += pingIntervalMs
      if (link.idleMs >= deadAfterMs) {
        endLink(reg, link, { code: CloseCode.DeadPeer, reason: "no pong", action: "terminate", after: "suspend" })
      } else ws.ping()
    }, pingIntervalMs)
    link.rateWindow = timers.setInterval(() => {
      link.received = 0
    }, rateLimit.perMs)

    if (previous !== undefined && reg.session !== undefined) return pump(reg) // replaced: same session, no gap in the link
    if (reg.session === undefined) return openSession(reg, link)
    // Resume: cancel the window, announce what was dropped, deliver the backlog, then live traffic.
    counters.sessionsResumed++
    if (reg.grace !== undefined) timers.clearTimeout(reg.grace)
    reg.grace = undefined
    if (reg.dropped > 0) reg.queue.unshift(gapNotice(reg))
    pump(reg)
    if (reg.suspended) {
      reg.suspended = false
      try {
        reg.session.session.transportUp()
      } catch {
        counters.sessionErrors++
      }
    }
  }

  const allowsOrigin = (reg: Registration, origin: string) => allowedOrigins.has(origin) || reg.origins.has(origin)

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy())
    if (closing) {
      counters.refused.closing++
      return refuseUpgrade(socket, 503)
    }
    const path = new URL(req.url ?? "/", "http://host").pathname
    const token = path.startsWith(PATH_PREFIX) ? path.slice(PATH_PREFIX.length) : ""
    const reg = TOKEN_PATTERN.test(token) ? registrations.get(digestOf(token)) : undefined
    if (reg === undefined) {
      counters.refused.token++
      return refuseUpgrade(socket, 401)
    }
    const origin = req.headers.origin
    if (origin !== undefined && !allowsOrigin(reg, origin)) {
      counters.refused.origin++
      return refuseUpgrade(socket, 403)
    }
    if (reg.link !== undefined && onDuplicate === "refuse") {
      counters.refused.duplicate++
      return refuseUpgrade(socket, 409)
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(reg, ws))
  })
  wss.on("wsClientError", (_error, socket) => {
    counters.refused.handshake++
    refuseUpgrade(socket, 400)
  })
  server.on("request", (_req, res) => {
    counters.refused["not-websocket"]++
    res.writeHead(426, { "Content-Type": "text/plain", Connection: "close" }).end(STATUS_CODES[426])
  })
  server.on("clientError", (_error, socket) => socket.destroy())

  const { authority } = await listen(server, options.port ?? 0, host)
  const url = `${options.tls === undefined ? "ws" : "wss"}://${authority}`

  const register: WebsocketTransport["register"] = (widgetId, open, registrationOptions) => {
    const token = registrationOptions?.token ?? randomBytes(32).toString("base64url")
    if (!TOKEN_PATTERN.test(token)) throw new Error(`register ${widgetId}: a token is 43 base64url characters`)
    const digest = digestOf(token)
    if (registrations.has(digest)) throw new Error(`register ${widgetId}: that token is already registered`)
    const reg: Registration = {
      widgetId,
      digest,
      open,
      origins: new Set(registrationOptions?.origins ?? []),
      onWrite: registrationOptions?.onWrite as WriteHook | undefined,
      generation: 0,
      session: undefined,
      suspended: false,
      link: undefined,
      queue: [],
      dropped: 0,
      gapSeq: 0,
      gapRequests: new Set(),
      grace: undefined,
      unregistered: false
    }
    registrations.set(reg.digest, reg)
    return {
      uri: `${url}${PATH_PREFIX}${token}`,
      unregister: () => {
        if (reg.unregistered) return
        reg.unregistered = true
        registrations.delete(reg.digest)
        closeSession(reg, "widget unregistered")
        if (reg.link !== undefined) endLink(reg, reg.link, { code: CloseCode.Unregistered, reason: "widget unregistered", action: "close", after: "keep" })
      }
    }
  }

  const stats = (): WebsocketTransportStats => ({
    registered: registrations.size,
    connections: sockets.size,
    accepted: counters.accepted,
    refused: { ...counters.refused },
    closed: { ...counters.closed },
    messagesIn: counters.messagesIn,
    messagesOut: counters.messagesOut,
    dropped: { ...counters.dropped },
    overflows: counters.overflows,
    sessionsOpened: counters.sessionsOpened,
    sessionsResumed: counters.sessionsResumed,
    sessionsExpired: counters.sessionsExpired,
    sessionErrors: counters.sessionErrors
  })

  const close = async () => {
    if (closing) return
    closing = true
    for (const reg of registrations.values()) {
      closeSession(reg, "transport closed")
      if (reg.link !== undefined) endLink(reg, reg.link, { code: CloseCode.GoingAway, reason: "host shutting down", action: "close", after: "keep" })
    }
    registrations.clear()
    // Peers get a moment to answer the close frame; the rest are cut, so close() always finishes.
    const pending = [...sockets].map((ws) => new Promise<void>((resolve) => ws.once("close", () => resolve())))
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, Math.min(closeTimeoutMs, 1000)).unref())
    await Promise.race([Promise.all(pending), deadline])
    for (const ws of sockets) ws.terminate()
    await new Promise<void>((resolve) => {
      wss.close()
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  return { url, register, stats, close }
}
