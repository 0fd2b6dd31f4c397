/**
 * The websocket transport's public contract: its options, the registration a widget gets, the
 * hook that hears of writes, and the counters. The behaviour is described in the package README.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"

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
  /**
   * The widget's requests remembered per widget, with the answers given, so one it sends again
   * after a dropped link (same id) is answered once and never run twice: at most `requests` ids
   * (default 256) and `bytes` of answers (default 64 KiB; past it a repeat after a drop gets an
   * error instead of the answer).
   */
  readonly rememberedAnswers?: { readonly requests?: number; readonly bytes?: number }
  /** Bytes buffered in a socket (ws `bufferedAmount`) beyond which messages wait in the queue. Default 1 MiB. */
  readonly highWaterMarkBytes?: number
  /** A second connection for a connected widget: refuse it (409, default) or close the first (4409). */
  readonly onDuplicate?: "refuse" | "replace"
  /** After the host starts a close handshake, terminate the socket if it is not done by then. Default 5000 ms. */
  readonly closeTimeoutMs?: number
  /** Injectable timers (liveness, rate windows, resume window, close timeout), for simulated time. */
  readonly timers?: Timers
  /**
   * Answers plain HTTP requests (not upgrades), so pages can be served from the transport's own
   * origin (the service's demo widgets). Absent: every such request gets 426. Upgrades never
   * reach it, so it cannot weaken who may connect.
   */
  readonly onHttpRequest?: (req: IncomingMessage, res: ServerResponse) => void
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
  /** toWidget requests written again on a resumed (or replacing) connection because no answer had come. */
  readonly redelivered: number
  /**
   * Written toWidget requests forgotten unanswered (more than `outboundQueueLimit` waited for an
   * answer): a resume cannot deliver them again; the gap notice counts them if the link drops.
   */
  readonly forgotten: number
  /**
   * The widget's requests it sent again with an id already seen (after a dropped link): `dropped`
   * ones had their answer coming or already on the link, `answeredAgain` got the kept answer
   * written again, `answerLost` got an error (the answer was no longer kept). None ran twice.
   */
  readonly repeats: { readonly dropped: number; readonly answeredAgain: number; readonly answerLost: number }
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
   * (and again after a resume window expired) to create its session; `connection.origin` is the
   * connecting page's `Origin` (undefined for a client that sends none), for the session and its
   * approval prompts. Throws on a malformed or already registered `token`.
   */
  readonly register: <M>(
    widgetId: string,
    open: (send: (message: WidgetMessage) => void, connection: { readonly origin: string | undefined }) => WidgetSession,
    options?: RegistrationOptions<M>
  ) => WebsocketRegistration
  readonly stats: () => WebsocketTransportStats
  /** Closes every connection (1001) and session, then the server. */
  readonly close: () => Promise<void>
}
