import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { listen } from "./listen.ts"
import type { Engine, SessionInfo } from "../../machines/src/engine.ts"
import { type ApprovalQueue, parseDecision } from "./approvals.ts"
import { type CreateUserOutcome, type NewUserRequest, parseNewUser } from "./admin-users.ts"

/*
 * The admin API and console: what the service shows a person about its widgets, and where that
 * person answers capability prompts. HTTP + JSON on 127.0.0.1, every request carrying the token.
 *
 * ## Routes (all answers `Cache-Control: no-store`; errors `{ error: { code, message } }`)
 *   GET  /                          the console page (HTML; `?token=` accepted)
 *   GET  /api/widgets               { widgets: [{ id, roomId?, name?, transport, url }] }
 *   GET  /api/identity              { identity: { status, detail } | null }: device trust
 *   GET  /api/sessions              { sessions: [SessionInfo & { state }] }
 *   POST /api/sessions/{id}/close   { closed: true }                       404 unknown session
 *   GET  /api/sessions/{id}/log     { sessionId, entries: [{ at, direction, message }] }
 *   GET  /api/approvals             { approvals: [PendingApproval] }
 *   GET  /api/approvals/{id}        { approval: PendingApproval }          404 unknown prompt
 *   POST /api/approvals/{id}        body { approve?: [...] | "all", deny?: [...] | "all" }
 *                                   → { id, approved, denied }   400 bad JSON or a capability not asked
 *   GET  /api/events                Server-Sent Events (`?token=` accepted): `ready` once per
 *                                   connection, then `change` { kind, sessionId? }, coalesced
 *   POST /api/users                 body { username, password? } → 201 { user_id, access_token,
 *                                   device_id, password? } (password only when generated); 409 a
 *                                   taken name, 400 an invalid one (with the homeserver's `errcode`
 *                                   in `error`); the route exists only on the embedded homeserver
 * Ids are path segments: percent-encode them (session ids contain `#`).
 *
 * ## Who may call
 * `Authorization: Bearer <token>` on every route; the page and the event stream also take
 * `?token=` because a browser cannot put a header on a page load or an `EventSource`. State-changing
 * routes take the header only, so no link or form on another site can act (it cannot set the
 * header, and the server sends no CORS headers). Tokens are compared as SHA-256 digests with
 * `timingSafeEqual`, so the time taken says nothing about the token. An unauthorised request gets
 * 401 before anything is routed, parsed or changed. Status order: 401, 404 (no such route),
 * 405 (route without that method, with `Allow`), then 413 / 400 / 404 from the handler.
 */

/** A widget the service hosts, as the console lists it. */
export interface AdminWidget {
  readonly id: string
  readonly roomId?: string
  readonly name?: string
  readonly transport: string
  readonly url: string
}

export type AdminSession = SessionInfo & { readonly state: string }

export interface LogEntry {
  readonly at: number
  /** `in`: from the widget to the host; `out`: from the host to the widget. */
  readonly direction: "in" | "out"
  readonly message: unknown
}

export interface AdminChange {
  readonly kind: "sessions" | "approvals" | "widgets" | "message"
  readonly sessionId?: string
}

/** What the service exposes to the admin server. */
export interface AdminModel {
  widgets(): ReadonlyArray<AdminWidget>
  /** From `engine.sessions()`, with the service's view of the connection as `state`. */
  sessions(): ReadonlyArray<AdminSession>
  readonly approvals: ApprovalQueue
  /** Closes a session; false when there is no such session. */
  closeSession(sessionId: string): boolean
  /** Recent messages per session (both directions), bounded ring buffer kept by the service. */
  messageLog(sessionId: string): ReadonlyArray<LogEntry>
  onChange(listener: (change: AdminChange) => void): () => void
  /** Creates a homeserver account; absent when the service has no homeserver of its own. */
  readonly createUser?: (request: NewUserRequest) => Promise<CreateUserOutcome>
  /** Whether other users' clients trust this device (cross-signing), and what the operator should do. */
  readonly identity?: () => DeviceTrust
}

/** The console's "Device trust" line: `status` in a word, `detail` in a sentence or two. */
export interface DeviceTrust {
  readonly status: "cross-signed" | "unverified"
  readonly detail: string
}

export interface AdminServerOptions {
  /** Default `127.0.0.1`: only local processes can connect. */
  readonly host?: string
  /** Default 0: a free port. */
  readonly port?: number
  /** The shared secret; at least 16 characters. */
  readonly token: string
  readonly model: AdminModel
  /** Largest request body. Protects the host's memory from a huge POST. Default 64 KiB. */
  readonly maxBodyBytes?: number
  /** Open event streams at once; more get 503. Protects the host from a page reloaded in a loop. Default 16. */
  readonly maxEventStreams?: number
  /** Changes within this window reach event streams as one `change` per kind and session. Default 50 ms. */
  readonly coalesceMs?: number
  /** A comment line on idle streams, so proxies and browsers keep them open. Default 15 000 ms. */
  readonly heartbeatMs?: number
}

export interface AdminServer {
  /** `http://127.0.0.1:PORT`; the console is at `${url}/?token=…`. */
  readonly url: string
  /** Ends the event streams and closes the server. */
  readonly close: () => Promise<void>
}

// ---- the message log ---------------------------------------------------------------------------

export interface MessageLogOptions {
  /** Entries kept per session; older ones are overwritten. Default 200. */
  readonly capacity?: number
  /**
   * Longest entry, in characters of JSON; a longer message is kept as a truncated preview.
   * With `capacity` this bounds the memory one session's log can take. Default 16 384.
   */
  readonly maxEntryChars?: number
  /** Sessions with a log; past it the oldest log is dropped. Protects against logs never forgotten. Default 1000. */
  readonly maxSessions?: number
  readonly now?: () => number
}

interface Ring {
  readonly items: Array<LogEntry>
  start: number
}

/**
 * Recent widget traffic per session, in bounded ring buffers, for the console.
 *
 * @example
 * const log = new MessageLog()
 * const session = engine.openSession({ widget, send: (message) => (log.record(key, "out", message), send(message)) })
 * log.get(session.sessionId)   // oldest first, at most 200
 */
export class MessageLog {
  private readonly rings = new Map<string, Ring>()
  private readonly listeners = new Set<(sessionId: string) => void>()
  private readonly capacity: number
  private readonly maxEntryChars: number
  private readonly maxSessions: number
  private readonly now: () => number

  constructor(options: MessageLogOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 200)
    this.maxEntryChars = options.maxEntryChars ?? 16_384
    this.maxSessions = Math.max(1, options.maxSessions ?? 1000)
    this.now = options.now ?? Date.now
  }

  record(sessionId: string, direction: "in" | "out", message: unknown): void {
    let ring = this.rings.get(sessionId)
    if (ring === undefined) {
      if (this.rings.size >= this.maxSessions) this.rings.delete(this.rings.keys().next().value!)
      this.rings.set(sessionId, (ring = { items: [], start: 0 }))
    }
    const entry: LogEntry = { at: this.now(), direction, message: this.bounded(message) }
    if (ring.items.length < this.capacity) ring.items.push(entry)
    else {
      ring.items[ring.start] = entry
      ring.start = (ring.start + 1) % this.capacity
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(sessionId)
      } catch {
        // the log must not break the session whose traffic it records
      }
    }
  }

  /** A session's entries, oldest first. */
  get(sessionId: string): ReadonlyArray<LogEntry> {
    const ring = this.rings.get(sessionId)
    if (ring === undefined) return []
    return [...ring.items.slice(ring.start), ...ring.items.slice(0, ring.start)]
  }

  forget(sessionId: string): void {
    this.rings.delete(sessionId)
  }

  /** Sessions with a log, oldest first. */
  sessions(): ReadonlyArray<string> {
    return [...this.rings.keys()]
  }

  /** Called after every `record`; returns the function that stops it. */
  onRecord(listener: (sessionId: string) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Keeps small messages as they are and a preview of large ones, so a log never pins a huge message. */
  private bounded(message: unknown): unknown {
    let text: string | undefined
    try {
      text = JSON.stringify(message)
    } catch {
      return { "io.widgethost.unserialisable": true }
    }
    if (text === undefined) return null
    if (text.length <= this.maxEntryChars) return message
    return { "io.widgethost.truncated": true, chars: text.length, preview: text.slice(0, this.maxEntryChars) }
  }
}

// ---- the server --------------------------------------------------------------------------------

type ErrorCode = "Unauthorized" | "NotFound" | "MethodNotAllowed" | "Conflict" | "BadRequest" | "PayloadTooLarge" | "Unavailable" | "Internal"
const statusOf: Record<ErrorCode, number> = {
  BadRequest: 400,
  Conflict: 409,
  Unauthorized: 401,
  NotFound: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  Internal: 500,
  Unavailable: 503
}

const BASE_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer"
} as const

const MAX_STREAM_BACKLOG_BYTES = 256 * 1024

const digest = (value: string) => createHash("sha256").update(value).digest()

const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...BASE_HEADERS, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

const sendError = (res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}, detail: Record<string, string> = {}) =>
  sendJson(res, statusOf[code], { error: { code, message, ...detail } }, headers)

/** A route: which methods it has, whether it takes `?token=`, and its handler. */
interface Route {
  readonly methods: ReadonlyArray<string>
  readonly queryToken: boolean
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void
}

class BodyError extends Error {
  constructor(readonly code: "BadRequest" | "PayloadTooLarge", message: string) {
    super(message)
  }
}

const readJson = (req: IncomingMessage, maxBytes: number): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"])
    if (Number.isFinite(declared) && declared > maxBytes) return reject(new BodyError("PayloadTooLarge", `the body is larger than ${maxBytes} bytes`))
    const chunks: Buffer[] = []
    let size = 0
    let failed = false
    req.on("data", (chunk: Buffer) => {
      if (failed) return
      size += chunk.length
      if (size > maxBytes) {
        failed = true
        chunks.length = 0
        return reject(new BodyError("PayloadTooLarge", `the body is larger than ${maxBytes} bytes`))
      }
      chunks.push(chunk)
    })
    req.on("error", (error) => reject(error))
    req.on("end", () => {
      if (failed) return
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")))
      } catch {
        reject(new BodyError("BadRequest", "the body is not valid JSON"))
      }
    })
  })

/** Decodes one path segment; malformed percent-encoding is `undefined`. */
const segment = (raw: string): string | undefined => {
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}

/**
 * Starts the admin API and console on 127.0.0.1.
 *
 * @example
 * const admin = await startAdminServer({ token, model })
 * console.log(`console: ${admin.url}/?token=${token}`)
 * await admin.close()
 */
/**
 * The admin model of an engine: its sessions (with `phase` as the connection `state`), its approval
 * queue and message log, and a change feed that `notify` fans out to every open event stream.
 */
export const engineAdminModel = (parts: {
  readonly engine: Pick<Engine, "sessions" | "session">
  readonly widgets: () => ReadonlyArray<AdminWidget>
  readonly approvals: ApprovalQueue
  readonly messages: Pick<MessageLog, "get">
  readonly createUser?: AdminModel["createUser"]
  readonly identity?: AdminModel["identity"]
}): AdminModel & { readonly notify: (change: AdminChange) => void } => {
  const { engine, widgets, approvals, messages } = parts
  const listeners = new Set<(change: AdminChange) => void>()
  return {
    widgets,
    sessions: () => engine.sessions().map((info) => ({ ...info, state: info.phase })),
    approvals,
    closeSession: (sessionId) => {
      const session = engine.session(sessionId)
      session?.close("closed from the admin console")
      return session !== undefined
    },
    messageLog: (sessionId) => messages.get(sessionId),
    onChange: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    notify: (change) => {
      for (const listener of listeners) listener(change)
    },
    ...(parts.createUser === undefined ? {} : { createUser: parts.createUser }),
    ...(parts.identity === undefined ? {} : { identity: parts.identity })
  }
}

export const startAdminServer = async (options: AdminServerOptions): Promise<AdminServer> => {
  if (typeof options.token !== "string" || options.token.length < 16) throw new Error("startAdminServer: the token must be at least 16 characters")
  const { model } = options
  const host = options.host ?? "127.0.0.1"
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024
  const maxEventStreams = options.maxEventStreams ?? 16
  const coalesceMs = options.coalesceMs ?? 50
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const tokenDigest = digest(options.token)

  const authorised = (req: IncomingMessage, url: URL, queryToken: boolean): boolean => {
    const header = req.headers.authorization
    let presented: string | undefined
    if (header !== undefined) {
      const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header)
      presented = match?.[1]
    } else if (queryToken) presented = url.searchParams.get("token") ?? undefined
    return presented !== undefined && timingSafeEqual(digest(presented), tokenDigest)
  }

  // ---- event streams -----------------------------------------------------------------------------

  const streams = new Set<ServerResponse>()
  /** A console that stops reading must not make the host buffer changes for it forever. */
  const write = (res: ServerResponse, text: string) => {
    if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
      streams.delete(res)
      return void res.destroy()
    }
    res.write(text)
  }
  let pending = new Map<string, AdminChange>()
  let flushTimer: NodeJS.Timeout | undefined
  const flush = () => {
    flushTimer = undefined
    const changes = [...pending.values()]
    pending = new Map()
    if (changes.length === 0) return
    const text = changes.map((change) => `event: change\ndata: ${JSON.stringify(change)}\n\n`).join("")
    for (const res of [...streams]) write(res, text)
  }
  const notify = (change: AdminChange) => {
    if (streams.size === 0) return
    const key = `${change.kind}\u0000${change.sessionId ?? ""}`
    if (!pending.has(key)) pending.set(key, change.sessionId === undefined ? { kind: change.kind } : { kind: change.kind, sessionId: change.sessionId })
    flushTimer ??= setTimeout(flush, coalesceMs)
  }
  const unsubscribe = [model.onChange(notify), model.approvals.onChange(() => notify({ kind: "approvals" }))]
  const heartbeat = setInterval(() => {
    for (const res of [...streams]) write(res, ": keep-alive\n\n")
  }, heartbeatMs)
  heartbeat.unref()

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    if (streams.size >= maxEventStreams) return sendError(res, "Unavailable", `at most ${maxEventStreams} event streams at once`, { "Retry-After": "5" })
    res.writeHead(200, { ...BASE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive", "X-Accel-Buffering": "no" })
    res.write("retry: 2000\n\nevent: ready\ndata: {}\n\n")
    streams.add(res)
    req.socket.setTimeout(0)
    res.on("close", () => streams.delete(res))
  }

  // ---- routes ------------------------------------------------------------------------------------

  const page = consolePage()

  const routeFor = (parts: ReadonlyArray<string>): Route | "malformed" | undefined => {
    if (parts.length === 0) {
      return { methods: ["GET"], queryToken: true, handle: (_req, res) => void res.writeHead(200, { ...BASE_HEADERS, ...page.headers }).end(page.html) }
    }
    if (parts[0] !== "api") return undefined
    const [, resource, rawId, action, ...rest] = parts
    if (rest.length > 0) return undefined
    if (resource === "widgets" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { widgets: model.widgets() }) }
    if (resource === "events" && rawId === undefined) return { methods: ["GET"], queryToken: true, handle: openStream }
    if (resource === "identity" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { identity: model.identity?.() ?? null }) }
    const { createUser } = model
    if (resource === "users" && rawId === undefined && createUser !== undefined) {
      return {
        methods: ["POST"],
        queryToken: false,
        handle: async (req, res) => {
          const parsed = parseNewUser(await readJson(req, maxBodyBytes))
          if (!parsed.ok) return sendError(res, "BadRequest", parsed.issue)
          const outcome = await createUser(parsed.request)
          if (outcome._tag === "Refused") return sendError(res, outcome.code, outcome.message, {}, { errcode: outcome.errcode })
          sendJson(res, 201, outcome.user)
        }
      }
    }
    if (resource === "sessions") {
      if (rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { sessions: model.sessions() }) }
      const id = segment(rawId)
      if (id === undefined) return "malformed"
      if (action === "close") {
        return {
          methods: ["POST"],
          queryToken: false,
          handle: (req, res) => {
            req.resume() // any body is ignored
            if (!model.closeSession(id)) return sendError(res, "NotFound", `no session ${JSON.stringify(id)}`)
            sendJson(res, 200, { closed: true })
          }
        }
      }
      if (action === "log") {
        return {
          methods: ["GET"],
          queryToken: false,
          handle: (_req, res) => {
            const entries = model.messageLog(id)
            if (entries.length === 0 && !model.sessions().some((session) => session.sessionId === id)) {
              return sendError(res, "NotFound", `no session ${JSON.stringify(id)}`)
            }
            sendJson(res, 200, { sessionId: id, entries })
          }
        }
      }
      return undefined
    }
    if (resource === "approvals" && action === undefined) {
      if (rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { approvals: model.approvals.pending() }) }
      const id = segment(rawId)
      if (id === undefined) return "malformed"
      return {
        methods: ["GET", "POST"],
        queryToken: false,
        handle: async (req, res) => {
          if (req.method === "GET") {
            const approval = model.approvals.get(id)
            return approval === undefined ? sendError(res, "NotFound", `no pending approval ${JSON.stringify(id)}`) : sendJson(res, 200, { approval })
          }
          const parsed = parseDecision(await readJson(req, maxBodyBytes))
          if (!parsed.ok) return sendError(res, "BadRequest", parsed.issue)
          const outcome = model.approvals.decide(id, parsed.decision)
          switch (outcome._tag) {
            case "NotFound":
              return sendError(res, "NotFound", `no pending approval ${JSON.stringify(id)}`)
            case "Invalid":
              return sendError(res, "BadRequest", outcome.issue)
            case "Decided":
              return sendJson(res, 200, { id, approved: outcome.approved, denied: outcome.denied })
          }
        }
      }
    }
    return undefined
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://admin.invalid")
    const parts = url.pathname.split("/").filter((part) => part !== "")
    const route = routeFor(parts)
    // Authorisation comes first: without the token nothing is routed, parsed or changed.
    if (!authorised(req, url, typeof route === "object" && route.queryToken)) {
      req.resume()
      return sendError(res, "Unauthorized", "missing or wrong token: send Authorization: Bearer <token>", { "WWW-Authenticate": 'Bearer realm="widgethost-admin"' })
    }
    if (route === "malformed") return sendError(res, "BadRequest", "malformed percent-encoding in the path")
    if (route === undefined) {
      req.resume()
      return sendError(res, "NotFound", `no route ${url.pathname}`)
    }
    if (!route.methods.includes(req.method ?? "")) {
      req.resume()
      return sendError(res, "MethodNotAllowed", `${req.method ?? "?"} is not allowed here`, { Allow: route.methods.join(", ") })
    }
    try {
      await route.handle(req, res)
    } catch (error) {
      if (res.headersSent) return void res.destroy()
      if (error instanceof BodyError) {
        if (error.code === "PayloadTooLarge") res.setHeader("Connection", "close")
        return sendError(res, error.code, error.message)
      }
      sendError(res, "Internal", "internal error")
    }
  }

  const server = createServer((req, res) => void handle(req, res))
  server.on("clientError", (_error, socket) => socket.destroy())
  const { authority } = await listen(server, options.port ?? 0, host)
  const url = `http://${authority}`

  let closed: Promise<void> | undefined
  const close = () =>
    (closed ??= new Promise<void>((resolve) => {
      for (const stop of unsubscribe) stop()
      clearInterval(heartbeat)
      if (flushTimer !== undefined) clearTimeout(flushTimer)
      for (const res of streams) res.end()
      streams.clear()
      server.close(() => resolve())
      server.closeAllConnections()
    }))

  return { url, close }
}

// ---- the console page --------------------------------------------------------------------------

/*
 * One self-contained page: inline CSS and JS, no framework, nothing fetched from elsewhere. The
 * CSP allows exactly these two inline blocks (by hash) and requests to this server. Everything a
 * widget controls (ids, capability names, messages) reaches the DOM as `textContent`, never as
 * markup. The page reads the token from its own URL (`?token=`), sends it as a Bearer header with
 * every `fetch`, and follows `/api/events`: each `change` re-fetches what it names (one fetch in
 * flight per resource, a change during it fetches once more afterwards). Approval cards are keyed
 * by id and never rebuilt, so ticking boxes survives live updates.
 */

const PAGE_STYLE = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #5f6b7a; --line: #d0d7de; --accent: #0b62d6; --warn: #b35900; --bad: #c62828; --ok: #2e7d32; font: 14px/1.4 system-ui, sans-serif }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #8b949e; --line: #30363d; --accent: #4c8df6; --ok: #3fb950 } }
body { margin: 0; background: var(--bg); color: var(--fg) }
header { display: flex; flex-wrap: wrap; gap: 1em; align-items: baseline; padding: .6em 1em; border-bottom: 1px solid var(--line) }
header h1 { font-size: 1.1em; margin: 0 }
#status.live { color: var(--ok) }
#status.down, #error { color: var(--bad) }
main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1em; padding: 1em }
section { min-width: 0 }
section.wide { grid-column: 1 / -1 }
h2 { font-size: 1em; margin: 0 0 .5em }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6em .8em; margin-bottom: .6em }
.card.approval { border-color: var(--warn) }
.card.decided { opacity: .6 }
fieldset { border: 0; margin: .4em 0; padding: 0 }
legend { color: var(--muted); padding: 0 }
label { display: block; word-break: break-all }
table { border-collapse: collapse; width: 100% }
th, td { text-align: left; padding: .3em .4em; border-bottom: 1px solid var(--line); vertical-align: top }
tr.selected { background: rgba(127, 127, 127, .15) }
.chips span { display: inline-block; border: 1px solid var(--line); border-radius: 3px; padding: 0 .3em; margin: 0 .2em .2em 0; word-break: break-all }
.chips .denied { text-decoration: line-through; color: var(--muted) }
.chips .pending { border-color: var(--warn) }
.muted { color: var(--muted) }
code, .mono, .chips span { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace }
#log { max-height: 60vh; overflow: auto; border: 1px solid var(--line); border-radius: 6px }
.entry { display: grid; grid-template-columns: auto 7.5em minmax(0, 1fr); gap: .5em; padding: .2em .5em; border-bottom: 1px solid var(--line) }
.entry code { white-space: pre-wrap; word-break: break-all }
.entry.in .dir { color: var(--accent) }
.entry.out .dir { color: var(--ok) }
button { font: inherit; padding: .15em .7em; cursor: pointer }
button.primary { background: var(--accent); color: #fff; border: 1px solid var(--accent); border-radius: 4px }
@media (max-width: 900px) { main { grid-template-columns: minmax(0, 1fr) } }
`

const PAGE_SCRIPT = `
"use strict";
(() => {
  const token = new URLSearchParams(location.search).get("token") || "";
  const $ = (id) => document.getElementById(id);
  const h = (tag, attrs, children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  };
  const showError = (message) => { $("error").textContent = message || ""; };
  const setStatus = (text, cls) => { const s = $("status"); s.textContent = text; s.className = cls; };
  const time = (at) => {
    const d = new Date(at);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  };
  const chips = (list, cls) => h("div", { class: "chips" }, list.map((c) => h("span", { class: cls, text: c, title: c })));

  const api = async (method, path, body) => {
    const init = { method, cache: "no-store", headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((data && data.error && data.error.message) || res.status + " " + res.statusText);
    return data;
  };

  // ---- widgets
  const renderWidgets = async () => {
    const { widgets } = await api("GET", "/api/widgets");
    $("widgets").replaceChildren(...(widgets.length === 0 ? [h("p", { class: "muted", text: "None." })] : widgets.map((w) =>
      h("div", { class: "card", "data-widget-id": w.id }, [
        h("strong", { text: w.name || w.id }), " ", h("span", { class: "muted mono", text: w.id }),
        h("div", { class: "muted", text: w.transport + (w.roomId ? " · " + w.roomId : "") }),
        h("div", { class: "mono", text: w.url })
      ]))));
  };

  // ---- device trust (cross-signing, where the recovery key is)
  const renderIdentity = async () => {
    const { identity } = await api("GET", "/api/identity");
    $("identity").textContent = identity === null ? "Unknown." : identity.status + ": " + identity.detail;
    $("identity").className = identity !== null && identity.status === "cross-signed" ? "" : "muted";
  };

  // ---- sessions
  let selected = null;
  const renderSessions = async () => {
    const { sessions } = await api("GET", "/api/sessions");
    const body = $("sessions");
    if (sessions.length === 0) {
      body.replaceChildren(h("tr", {}, [h("td", { colspan: "5", class: "muted", text: "None." })]));
      return;
    }
    body.replaceChildren(...sessions.map((s) => {
      const counters = s.counters || {};
      const undecided = s.requested.filter((c) => !s.approved.includes(c) && !s.denied.includes(c));
      const group = (title, list, cls) => list.length === 0 ? null : h("div", {}, [h("span", { class: "muted", text: title }), chips(list, cls)]);
      return h("tr", { class: s.sessionId === selected ? "selected" : "", "data-session-id": s.sessionId }, [
        h("td", {}, [h("div", { class: "mono", text: s.sessionId }), h("div", { class: "muted", text: s.widgetId })]),
        h("td", {}, [h("div", { class: "state", text: s.state }), s.phase !== s.state ? h("div", { class: "muted", text: s.phase }) : null]),
        h("td", {}, [
          group("approved", s.approved, "approved"), group("denied", s.denied, "denied"), group("waiting", undecided, "pending"),
          s.requested.length === 0 ? h("span", { class: "muted", text: "none requested" }) : null
        ]),
        h("td", { class: "mono counters" }, Object.keys(counters).map((k) => h("div", { text: k + " " + counters[k] }))),
        h("td", {}, [
          h("button", { type: "button", text: s.sessionId === selected ? "Hide log" : "Log", onclick: () => select(s.sessionId) }), " ",
          h("button", { type: "button", text: "Close", onclick: (event) => closeSession(s.sessionId, event.currentTarget) })
        ])
      ]);
    }));
  };
  const select = (id) => {
    selected = selected === id ? null : id;
    schedule("sessions");
    schedule("log");
  };
  const closeSession = async (id, button) => {
    if (!confirm("Close session " + id + "?")) return;
    button.disabled = true;
    try {
      await api("POST", "/api/sessions/" + encodeURIComponent(id) + "/close");
    } catch (e) {
      showError(e.message);
      button.disabled = false;
    }
    schedule("sessions");
  };

  // ---- message log of the selected session
  const summary = (m) => {
    if (m === null || typeof m !== "object") return "";
    const parts = [m.api, m.action].filter((x) => typeof x === "string");
    if ("response" in m) parts.push(m.response && typeof m.response === "object" && "error" in m.response ? "error" : "response");
    return parts.join(" ");
  };
  const renderLog = async () => {
    const box = $("log");
    const id = selected;
    $("log-session").textContent = id === null ? "(choose a session)" : id;
    if (id === null) return box.replaceChildren();
    let data;
    try {
      data = await api("GET", "/api/sessions/" + encodeURIComponent(id) + "/log");
    } catch (e) {
      if (id === selected) box.replaceChildren(h("p", { class: "muted", text: e.message }));
      return;
    }
    if (id !== selected) return;
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.replaceChildren(...(data.entries.length === 0 ? [h("p", { class: "muted", text: "No messages yet." })] : data.entries.map((e) =>
      h("div", { class: "entry " + e.direction }, [
        h("span", { class: "muted mono", text: time(e.at) }),
        h("span", { class: "dir", text: e.direction === "in" ? "widget → host" : "host → widget" }),
        h("div", {}, [h("strong", { text: summary(e.message) }), " ", h("code", { text: JSON.stringify(e.message) })])
      ]))));
    if (atBottom) box.scrollTop = box.scrollHeight;
  };

  // ---- approvals: cards keyed by id, never rebuilt (ticked boxes survive updates)
  const cards = new Map();
  const approvalCard = (a) => {
    const boxes = a.requested.map((c) => h("input", { type: "checkbox", checked: true, value: c }));
    const status = h("div", { class: "muted", role: "status" });
    const buttons = [];
    const send = async (decision) => {
      for (const b of buttons) b.disabled = true;
      status.textContent = "sending…";
      try {
        const result = await api("POST", "/api/approvals/" + encodeURIComponent(a.id), decision);
        status.textContent = "approved: " + (result.approved.length === 0 ? "nothing" : result.approved.join(", "));
        card.classList.add("decided");
        schedule("sessions");
      } catch (e) {
        status.textContent = e.message;
        for (const b of buttons) b.disabled = false;
      }
      schedule("approvals");
    };
    const approve = h("button", { type: "button", class: "primary", text: "Approve", onclick: () => send({
      approve: boxes.filter((b) => b.checked).map((b) => b.value),
      deny: boxes.filter((b) => !b.checked).map((b) => b.value)
    }) });
    const deny = h("button", { type: "button", text: "Deny", onclick: () => send({ deny: "all" }) });
    buttons.push(approve, deny);
    const card = h("div", { class: "card approval", "data-approval-id": a.id }, [
      h("div", {}, [h("strong", { text: a.widgetId }), " ", h("span", { class: "muted mono", text: a.sessionId })]),
      h("div", { class: "muted", text: "asked at " + time(a.createdAt) }),
      a.alreadyApproved.length === 0 ? null : h("div", {}, [h("span", { class: "muted", text: "already approved" }), chips(a.alreadyApproved, "approved")]),
      h("fieldset", {}, [h("legend", { text: "Approve these capabilities:" }), ...boxes.map((b, i) => h("label", {}, [b, " ", h("span", { text: (a.meanings || [])[i] || "" }), " ", h("span", { class: "mono muted", text: b.value })]))]),
      h("div", {}, [approve, " ", deny]),
      status
    ]);
    return card;
  };
  const renderApprovals = async () => {
    const { approvals } = await api("GET", "/api/approvals");
    const live = new Set(approvals.map((a) => a.id));
    for (const [id, card] of cards) if (!live.has(id)) { card.remove(); cards.delete(id); }
    for (const a of approvals) if (!cards.has(a.id)) { const card = approvalCard(a); cards.set(a.id, card); $("approvals").append(card); }
    $("approvals-empty").hidden = cards.size > 0;
    $("approval-count").textContent = cards.size === 0 ? "" : "(" + cards.size + ")";
  };

  // ---- live updates: one fetch in flight per resource; a change meanwhile fetches once more
  const refreshers = { identity: renderIdentity, widgets: renderWidgets, sessions: renderSessions, approvals: renderApprovals, log: renderLog };
  const running = {};
  const schedule = (name) => {
    const r = running[name] || (running[name] = { busy: false, again: false });
    if (r.busy) { r.again = true; return; }
    r.busy = true;
    Promise.resolve().then(refreshers[name]).catch((e) => showError(e.message)).finally(() => {
      r.busy = false;
      if (r.again) { r.again = false; schedule(name); }
    });
  };
  const refreshAll = () => { for (const name of Object.keys(refreshers)) schedule(name); };
  const connect = () => {
    const source = new EventSource("/api/events?token=" + encodeURIComponent(token));
    source.addEventListener("ready", () => { setStatus("live", "live"); showError(""); refreshAll(); });
    source.addEventListener("change", (event) => {
      let change;
      try { change = JSON.parse(event.data); } catch (_) { return; }
      if (change.kind === "message") {
        schedule("sessions");
        if (change.sessionId === selected) schedule("log");
      } else if (change.kind === "sessions") {
        schedule("sessions");
        if (selected !== null) schedule("log");
      } else if (Object.prototype.hasOwnProperty.call(refreshers, change.kind)) schedule(change.kind);
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) return setStatus("reconnecting…", "down");
      setStatus("disconnected; retrying", "down");
      setTimeout(connect, 5000);
    });
  };
  if (token === "") return setStatus("no token: open this page as /?token=…", "down");
  refreshAll();
  connect();
})();
`

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>widgethost console</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header><h1>widgethost console</h1><span id="status" class="down">connecting…</span><span id="error" role="alert"></span></header>
<main>
<section aria-labelledby="h-approvals"><h2 id="h-approvals">Pending approvals <span id="approval-count" class="muted"></span></h2><div id="approvals"><p id="approvals-empty" class="muted">None.</p></div></section>
<section aria-labelledby="h-identity"><h2 id="h-identity">Device trust</h2><p id="identity" class="muted"></p></section>
<section aria-labelledby="h-widgets"><h2 id="h-widgets">Widgets</h2><div id="widgets"></div></section>
<section class="wide" aria-labelledby="h-sessions"><h2 id="h-sessions">Sessions</h2>
<table><thead><tr><th>Session</th><th>State</th><th>Capabilities</th><th>Counters</th><th></th></tr></thead><tbody id="sessions"></tbody></table></section>
<section class="wide" aria-labelledby="h-log"><h2 id="h-log">Message log <span id="log-session" class="muted"></span></h2><div id="log"></div></section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`

const cspHash = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/** The console page and its headers; the CSP admits only its own inline style and script. */
export const consolePage = (): { readonly html: string; readonly headers: Record<string, string> } => ({
  html: PAGE_HTML,
  headers: {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": [
      "default-src 'none'",
      `script-src ${cspHash(PAGE_SCRIPT)}`,
      `style-src ${cspHash(PAGE_STYLE)}`,
      "connect-src 'self'",
      "img-src data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'"
    ].join("; "),
    "X-Frame-Options": "DENY"
  }
})
