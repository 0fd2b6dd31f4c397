/**
 * MSC3009 websocket transport, server side: the host listens, the widget makes first contact, and
 * one text frame carries one Widget API message as JSON, exactly as over postMessage. Who may
 * connect, the close codes, reconnection, backpressure and liveness are described in the package
 * README. This file is the server and its registry of widgets: it admits upgrades (upgrade.ts) and
 * hands each accepted socket to its registration's I/O (registration-io.ts), which carries out
 * what the pure lifecycle (registration-lifecycle.ts) decides.
 *
 * The websocket transport never calls `session.frameLoaded()`: MSC3009 makes
 * `waitForIframeLoad` false, the widget speaks first (`content_loaded`).
 */
import { randomBytes } from "node:crypto"
import { createServer as createHttpServer, type IncomingMessage, type Server, STATUS_CODES } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import type { Duplex } from "node:stream"
import { type WebSocket, WebSocketServer } from "ws"
import { listen } from "./listen.ts"
import type { Registration } from "./registration.ts"
import { admitUpgrade, digestOf, PATH_PREFIX, refuseUpgrade, TOKEN_PATTERN } from "./upgrade.ts"
import { initialLifecycle, type LifecycleConfig } from "./registration-lifecycle.ts"
import { createRegistrationIo } from "./registration-io.ts"
import { newCounters, statsOf } from "./transport-counters.ts"
import { UnansweredRequests } from "./unanswered-requests.ts"
import { AnsweredRequests } from "./answered-requests.ts"
import type { Timers, WebsocketTransport, WebsocketTransportOptions, WebsocketTransportStats, WriteHook } from "./transport-types.ts"


const realTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout)
}

/**
 * Starts the websocket transport, listening before any widget is rendered.
 *
 * @example
 * const transport = await startWebsocketTransport()
 * const { uri } = transport.register(widget.id, (send) => engine.openSession({ widget, send, transport: "m.websockets" }))
 * const url = renderWidgetUrl(widget.url, { ...vars, transport: "m.websockets", websocketUri: uri })
 */
export const startWebsocketTransport = async (options: WebsocketTransportOptions = {}): Promise<WebsocketTransport> => {
  const host = options.host ?? "127.0.0.1"
  const timers = options.timers ?? realTimers
  const maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024
  const rateLimit = options.rateLimit ?? { messages: 500, perMs: 1000 }
  const pingIntervalMs = options.pingIntervalMs ?? 10_000
  const deadAfterMs = options.deadAfterMs ?? 30_000
  const outboundQueueLimit = options.outboundQueueLimit ?? 1000
  const highWaterMarkBytes = options.highWaterMarkBytes ?? 1024 * 1024
  const closeTimeoutMs = options.closeTimeoutMs ?? 5000
  const rememberedAnswers = { requests: options.rememberedAnswers?.requests ?? 256, bytes: options.rememberedAnswers?.bytes ?? 64 * 1024 }
  const allowedOrigins = new Set(options.allowedOrigins ?? [])
  const config: LifecycleConfig = { resumeGraceMs: options.resumeGraceMs ?? 30_000, onDuplicate: options.onDuplicate ?? "refuse" }

  const registrations = new Map<string, Registration>()
  const sockets = new Set<WebSocket>()
  let closing = false

  const counters = newCounters()

  const server: Server = options.tls === undefined ? createHttpServer() : createHttpsServer({ cert: options.tls.cert, key: options.tls.key })
  // No compression: a deflated frame is a decompression bomb waiting for `maxPayload` to catch it.
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes, perMessageDeflate: false, clientTracking: false })

  const { apply, accept } = createRegistrationIo({
    timers,
    config,
    counters,
    sockets,
    rateLimit,
    pingIntervalMs,
    deadAfterMs,
    outboundQueueLimit,
    highWaterMarkBytes,
    closeTimeoutMs
  })

  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy())
    if (closing) {
      counters.refused.closing++
      return refuseUpgrade(socket, 503)
    }
    const admission = admitUpgrade(req, registrations, allowedOrigins, config.onDuplicate)
    if ("refused" in admission) {
      counters.refused[admission.refused]++
      return refuseUpgrade(socket, admission.status)
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(admission.reg, ws, admission.origin))
  })
  wss.on("wsClientError", (_error, socket) => {
    counters.refused.handshake++
    refuseUpgrade(socket, 400)
  })
  server.on("request", (req, res) => {
    if (options.onHttpRequest !== undefined) return options.onHttpRequest(req, res)
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
      lifecycle: initialLifecycle,
      generation: 0,
      session: undefined,
      link: undefined,
      queue: [],
      unanswered: new UnansweredRequests(outboundQueueLimit),
      answered: new AnsweredRequests(rememberedAnswers),
      gapSeq: 0,
      gapRequests: new Set(),
      grace: undefined
    }
    registrations.set(reg.digest, reg)
    return {
      uri: `${url}${PATH_PREFIX}${token}`,
      unregister: () => {
        if (reg.lifecycle.retired !== undefined) return
        registrations.delete(reg.digest)
        apply(reg, { _tag: "Retire", why: "unregistered" })
      }
    }
  }

  const stats = (): WebsocketTransportStats => statsOf(counters, registrations.size, sockets.size)

  const close = async () => {
    if (closing) return
    closing = true
    for (const reg of registrations.values()) apply(reg, { _tag: "Retire", why: "shutting-down" })
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
