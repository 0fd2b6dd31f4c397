import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import * as account from "./account.ts"
import { parseBody } from "./decode.ts"
import { DelayedEvents } from "./delayed-events.ts"
import * as delayedEvents from "./delayed-events.ts"
import * as discovery from "./discovery.ts"
import { AuthChallenge, internal, MatrixError, missingToken, tooLarge, unknownToken } from "./errors.ts"
import * as filters from "./filters.ts"
import { TokenKeyCache } from "./ids.ts"
import { Journal } from "./journal.ts"
import * as keys from "./keys.ts"
import * as keyBackup from "./key-backup.ts"
import * as membership from "./membership.ts"
import * as profile from "./profile.ts"
import * as registration from "./registration.ts"
import * as rtcTransports from "./rtc-transports.ts"
import type { RtcTransport } from "./rtc-transports.ts"
import * as userDirectory from "./user-directory.ts"
import * as media from "./media.ts"
import { MediaStore } from "./media-store.ts"
import type { Auth, DelayedEventsShape, Env, Reply, Route, TurnOptions } from "./routing.ts"
import { readTarget, RouteTable } from "./route-table.ts"
import { Store } from "./store.ts"
import * as sync from "./sync.ts"
import * as timeline from "./timeline.ts"

/**
 * The HTTP edge: a node:http server that decodes requests (path, auth, a bounded JSON body),
 * dispatches them through the route table and writes every answer, errors included, in the
 * spec's shape. It also owns the test hooks (fault injection) and the lifecycle (close ends
 * long-polls, stops timers and flushes the journal).
 */
export interface EmbeddedHomeserverOptions {
  /** Absent: in memory only. Present: every acknowledged write is in `<dataDir>/journal.jsonl`. */
  readonly dataDir?: string
  readonly host?: string
  readonly port?: number
  readonly serverName?: string
  /** Absent: `/voip/turnServer` answers `{}` (no TURN). */
  readonly turn?: { readonly uris: ReadonlyArray<string>; readonly sharedSecret: string; readonly ttlSeconds: number }
  /**
   * Who may register over `/register` (see `registration.ts`). Default "token": the
   * `m.login.registration_token` stage with `registrationToken`. "open": `m.login.dummy` for
   * anyone, including any web page (CORS is `*`): only by explicit choice. "closed": nobody.
   */
  readonly registration?: "token" | "open" | "closed"
  /** The token "token" registration asks for (1-64 of `A-Za-z0-9._~-`); absent: a random one. */
  readonly registrationToken?: string
  /**
   * MatrixRTC transports served at `/_matrix/client/v1/rtc/transports` (MSC4143), e.g.
   * `[{ type: "livekit", livekit_service_url: "https://livekit-jwt.example.org" }]`. Absent or
   * empty: 404 `M_UNRECOGNIZED`.
   */
  readonly rtcTransports?: ReadonlyArray<RtcTransport>
  /**
   * The MSC4140 revision served (`routing.ts` `DelayedEventsShape`): `query-parameter` (default,
   * as Synapse), `endpoint` or `endpoint-stable` (the dedicated `delayed_event` endpoint).
   */
  readonly delayedEvents?: DelayedEventsShape
  /** Largest media upload (`m.upload.size`). Default 10 MiB. */
  readonly maxUploadBytes?: number
  /** Clock for `origin_server_ts`, TURN and OpenID expiry and delayed events. */
  readonly now?: () => number
  /** Largest accepted request body; bigger ones get 413 `M_TOO_LARGE`. Default 1 MiB. */
  readonly maxBodyBytes?: number
}

export type FaultKind =
  | { readonly status: number; readonly body?: object; readonly retryAfterMs?: number; readonly retryAfterHeader?: boolean }
  | "drop-connection"

export interface Fault {
  readonly path: RegExp
  readonly method?: string
  readonly times: number
  readonly kind: FaultKind
}

export interface EmbeddedHomeserver {
  readonly baseUrl: string
  readonly serverName: string
  /** Stops listening, ends long-polls, stops delayed-event timers, flushes the journal. */
  close(): Promise<void>
  /** Test hook: the next `times` requests matching `path` (and `method`) fail as `kind` says, before any processing. */
  injectFault(fault: Fault): void
  /** Registers `localpart` (or logs in if it exists) and returns a fresh session. */
  ensureUser(localpart: string, password: string): Promise<{ userId: string; accessToken: string; deviceId: string }>
  /** Registers `localpart` with a first session; rejects with a `MatrixError` (`M_USER_IN_USE`, `M_INVALID_USERNAME`). */
  createUser(localpart: string, password: string): Promise<{ userId: string; accessToken: string; deviceId: string }>
  /** The token `/register` asks for; undefined unless registration is "token". */
  readonly registrationToken: string | undefined
}

const DEFAULT_MAX_BODY = 1024 * 1024
/** Oversized bodies are read and discarded up to this much, so the client sees the 413 instead of a reset. */
const DRAIN_LIMIT = 64 * 1024 * 1024
/** How long `close` lets in-flight requests finish before cutting connections. */
const CLOSE_GRACE_MS = 2_000

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "X-Requested-With, Content-Type, Authorization"
}

const ROUTES: ReadonlyArray<Route> = [
  ...discovery.routes,
  ...account.routes,
  ...profile.routes,
  ...filters.routes,
  ...membership.routes,
  ...timeline.routes,
  ...sync.routes,
  ...keys.routes,
  ...keyBackup.routes,
  ...delayedEvents.routes,
  ...registration.routes,
  ...rtcTransports.routes,
  ...userDirectory.routes,
  ...media.routes
]

const TABLE = new RouteTable(ROUTES)

const readBody = (req: IncomingMessage, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let size = 0
    let done = false
    const fail = (e: Error) => {
      if (done) return
      done = true
      reject(e)
    }
    if (Number(req.headers["content-length"]) > DRAIN_LIMIT) {
      req.socket.destroy()
      return fail(tooLarge(`Request body larger than ${limit} bytes.`))
    }
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= limit) chunks.push(chunk)
      else if (size > DRAIN_LIMIT) {
        req.socket.destroy()
        fail(tooLarge(`Request body larger than ${limit} bytes.`))
      }
    })
    req.on("end", () => {
      if (size > limit) fail(tooLarge(`Request body larger than ${limit} bytes.`))
      else if (!done) {
        done = true
        resolve(Buffer.concat(chunks))
      }
    })
    req.on("error", fail)
    // Every request closes, most after their body ended: an Error (with its stack) made for each
    // of them only to be ignored was measurable on the account path.
    req.on("close", () => {
      if (!done) fail(new Error("client went away"))
    })
  })

const accessToken = (req: IncomingMessage, query: URLSearchParams): string | undefined => {
  const header = req.headers.authorization
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    return m?.[1]
  }
  return query.get("access_token") ?? undefined
}

const send = (res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void => {
  if (res.headersSent || res.destroyed) return
  if (Buffer.isBuffer(body)) {
    res.writeHead(status, { ...CORS, "content-type": "application/octet-stream", ...headers, "content-length": body.length })
    res.end(body)
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { ...CORS, ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) })
  res.end(text)
}

const faultReply = (kind: Exclude<FaultKind, "drop-connection">): Reply => {
  const limited = kind.status === 429
  const body =
    kind.body ??
    (limited
      ? { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", ...(kind.retryAfterMs !== undefined && { retry_after_ms: kind.retryAfterMs }) }
      : { errcode: "M_UNKNOWN", error: "Injected fault" })
  const headers: Record<string, string> =
    kind.retryAfterHeader === true && kind.retryAfterMs !== undefined ? { "retry-after": String(Math.ceil(kind.retryAfterMs / 1000)) } : {}
  return { status: kind.status, body, headers }
}

/**
 * Starts a homeserver on `host:port` (default 127.0.0.1, a free port), replaying `dataDir`'s
 * journal first when given.
 *
 * @example
 * const hs = await startEmbeddedHomeserver()
 * const alice = await hs.ensureUser("alice", "secret")
 * await fetch(`${hs.baseUrl}/_matrix/client/v3/account/whoami`, { headers: { authorization: `Bearer ${alice.accessToken}` } })
 * await hs.close()
 */
export const startEmbeddedHomeserver = async (options: EmbeddedHomeserverOptions = {}): Promise<EmbeddedHomeserver> => {
  const serverName = options.serverName ?? "localhost"
  const host = options.host ?? "127.0.0.1"
  const now = options.now ?? Date.now
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY
  // Before the journal opens: a malformed token throws with nothing to close.
  const policy = registration.registrationPolicy(options.registration, options.registrationToken)
  const opened = options.dataDir === undefined ? undefined : await Journal.open(options.dataDir, serverName)
  const store = new Store(serverName, now, opened?.journal)
  store.replay(opened?.records ?? [])
  const delayed = new DelayedEvents(store)
  let baseUrl = ""
  const turn: TurnOptions | undefined = options.turn
  const env: Env = {
    store,
    serverName,
    baseUrl: () => baseUrl,
    registration: policy,
    turn,
    rtcTransports: options.rtcTransports ?? [],
    media: new MediaStore(options.dataDir === undefined ? undefined : join(options.dataDir, "media")),
    maxUploadBytes: options.maxUploadBytes ?? 10 * 1024 * 1024,
    now,
    delayed,
    delayedEventsShape: options.delayedEvents ?? "query-parameter"
  }
  const faults: Array<{ fault: Fault; left: number }> = []
  const tokenKeys = new TokenKeyCache()
  const inFlight = new Set<ServerResponse>()
  let idle: (() => void) | undefined

  const takeFault = (method: string, path: string): FaultKind | undefined => {
    for (const f of faults) {
      f.fault.path.lastIndex = 0
      if (f.left <= 0 || !f.fault.path.test(path)) continue
      if (f.fault.method !== undefined && f.fault.method.toUpperCase() !== method) continue
      f.left--
      return f.fault.kind
    }
    return undefined
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Made on first use: only the /sync long-poll reads its signal, and an AbortController with
    // its signal per request was 0.8 % of the homeserver's CPU on the account path.
    let controller: AbortController | undefined
    let clientGone = false
    const signal = () => {
      if (controller === undefined) {
        controller = new AbortController()
        if (clientGone) controller.abort()
      }
      return controller.signal
    }
    inFlight.add(res)
    res.on("close", () => {
      // Only a client gone before its answer needs the handler stopped (a /sync long-poll). Every
      // abort builds a DOMException with its stack: 4 % of the process's CPU on the account path.
      if (!res.writableFinished) {
        clientGone = true
        controller?.abort()
      }
      inFlight.delete(res)
      if (inFlight.size === 0) idle?.()
    })
    const method = (req.method ?? "GET").toUpperCase()
    try {
      const url = readTarget(req.url ?? "/")
      const path = url.pathname.length > 1 && url.pathname.endsWith("/") ? url.pathname.slice(0, -1) : url.pathname
      if (method === "OPTIONS") {
        res.writeHead(204, CORS).end()
        return
      }
      const fault = takeFault(method, url.pathname)
      if (fault === "drop-connection") {
        req.socket.destroy()
        return
      }
      if (fault !== undefined) {
        const reply = faultReply(fault)
        send(res, reply.status!, reply.body, reply.headers)
        return
      }
      const { route, params } = TABLE.match(method, path)
      const raw = method === "GET" || method === "HEAD" ? Buffer.alloc(0) : await readBody(req, route.rawBody === true ? env.maxUploadBytes : maxBody)
      const body = route.rawBody === true ? {} : parseBody(raw)
      let auth: Auth | undefined
      const token = accessToken(req, url.query)
      const key = token === undefined ? undefined : tokenKeys.of(token)
      const session = key === undefined ? undefined : store.tokens.get(key)
      if (session !== undefined && key !== undefined) auth = { ...session, tokenKey: key }
      else if (route.auth === "required") {
        throw token === undefined ? missingToken("Missing access token") : unknownToken("Unknown access token", { soft_logout: false })
      }
      const reply = await route.handle({ env, method, params, query: url.query, body, ...(route.rawBody === true && { raw }), headers: req.headers, auth, get signal() { return signal() } })
      send(res, reply.status ?? 200, reply.body, reply.headers)
    } catch (e) {
      // The client hung up (mid-body, mid-long-poll): nobody is left to answer.
      if (req.socket.destroyed || res.destroyed) return
      if (e instanceof AuthChallenge) {
        send(res, 401, e.body)
        return
      }
      if (e instanceof MatrixError) {
        send(res, e.status, e.body(), e.status === 413 ? { connection: "close", ...e.headers } : e.headers)
        return
      }
      // A bug, not bad input: say so in the server's log and answer 500 rather than crash.
      console.error("embedded homeserver: internal error on", method, req.url, e)
      const err = internal("Internal server error")
      send(res, err.status, err.body())
    }
  }

  const server = createServer((req, res) => void handle(req, res))
  // Long-polls may hold a request for up to two minutes; Node's defaults would cut them.
  server.requestTimeout = 0
  server.keepAliveTimeout = 5_000
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject)
        resolve()
      })
    })
  } catch (e) {
    // e.g. EADDRINUSE: give the journal back so a retry can open it.
    await opened?.journal.close()
    throw e
  }
  const address = server.address() as AddressInfo
  baseUrl = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`
  delayed.start()

  let closing: Promise<void> | undefined
  const close = async (): Promise<void> => {
    store.close()
    delayed.close()
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
    if (inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        idle = resolve
        setTimeout(resolve, CLOSE_GRACE_MS).unref()
      })
    }
    server.closeAllConnections()
    await stopped
    await opened?.journal.close()
  }

  return {
    baseUrl,
    serverName,
    close: () => (closing ??= close()),
    injectFault: (fault) => {
      if (!Number.isInteger(fault.times) || fault.times < 1) throw new RangeError("fault.times must be a positive integer")
      faults.push({ fault, left: fault.times })
    },
    ensureUser: (localpart, password) => account.ensureUser(env, localpart, password),
    createUser: (localpart, password) => account.registerUser(env, localpart, password),
    registrationToken: policy.kind === "token" ? policy.token : undefined
  }
}
