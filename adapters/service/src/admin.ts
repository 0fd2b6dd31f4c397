import { createHash, timingSafeEqual } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { listen } from "@widgethost/websocket"
import type { SessionInfo } from "@widgethost/engine"
import type { SyncHealth } from "@widgethost/homeserver-client"
import { type ApprovalQueue, parseDecision } from "./approvals.ts"
import { type CreateUserOutcome, type NewUserRequest, parseNewUser } from "./admin-users.ts"
import { consolePage } from "./admin-console-page.ts"
import type { AdminAccount } from "./admin-account.ts"
import { parseBlockTarget, type BlockTarget } from "./admin-block.ts"
import type { LogEntry } from "./message-log.ts"
import { BASE_HEADERS, BodyError, readJson, type Route, segment, sendError, sendJson } from "./admin-http.ts"
import { startChangeStreams } from "./admin-events.ts"
import { type AdminVerification, verificationRoute } from "./admin-verification.ts"
import { type LogAnswer, mergedLogAnswer, sessionLogAnswer } from "./admin-log.ts"
export { engineAdminModel } from "./admin-model.ts"

/*
 * The admin API and console: what the service shows a person about its widgets, and where that
 * person answers capability prompts. HTTP + JSON on 127.0.0.1, every request carrying the token.
 *
 * ## Routes (all answers `Cache-Control: no-store`; errors `{ error: { code, message } }`)
 *   GET  /                          the console page (HTML; `?token=` accepted)
 *   GET  /api/widgets               { widgets: [{ id, roomId?, name?, transport, url, blocked? }] }
 *   POST /api/widgets/block         body { id, roomId? } → { blocked: { id, roomId? } }: closes its
 *                                   session and never hosts it again; 404 unknown widget, 400 bad body
 *   GET  /api/identity              { identity: { status, detail } | null }: device trust
 *   GET  /api/verification          { verification: { deviceSigned, flow } | null }; POST asks the
 *                                   account's other devices; POST /api/verification/{flowId}/
 *                                   accept|confirm|cancel: SAS emoji (admin-verification.ts)
 *   GET  /api/account               { account: AdminAccount | null }: the host account, the demo
 *                                   widgets' links, how a second user signs in
 *   GET  /api/homeserver            { homeserver: HomeserverHealth | null }: the sync connection
 *                                   (lag, behind, backoff and retries, errors by kind), sync
 *                                   counters, and the events that could not be decrypted
 *   GET  /api/sessions              { sessions: [SessionInfo & { state }] }
 *   POST /api/sessions/{id}/close   { closed: true }                       404 unknown session
 *   GET  /api/sessions/{id}/log     { sessionId, redacted, entries: [{ at, direction, message }] }
 *   GET  /api/log                   { redacted, entries: [{ sessionId, at, direction, message }] }
 *                                   both take ?widget= &action= &direction=in|out &errors=1
 *                                   (admin-log.ts); 400 a bad filter
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
  /** Blocked from the console: not hosted. */
  readonly blocked?: true
}

export type AdminSession = SessionInfo & { readonly state: string }

export interface AdminChange {
  readonly kind: "sessions" | "approvals" | "widgets" | "message" | "homeserver" | "identity" | "verification"
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
  /** The log keeps message contents and secrets (`--log-content`); default false: redacted. */
  readonly logsContent?: boolean
  onChange(listener: (change: AdminChange) => void): () => void
  /** Creates a homeserver account; absent when the service has no homeserver of its own. */
  readonly createUser?: (request: NewUserRequest) => Promise<CreateUserOutcome>
  /** Whether other users' clients trust this device (cross-signing), and what the operator should do. */
  readonly identity?: () => DeviceTrust
  /** Interactive verification of this device from another of the account's devices (SAS emoji). */
  readonly verification?: AdminVerification
  /** The homeserver connection's counters and recent undecryptable events; undefined before it is up. */
  readonly homeserver?: () => HomeserverHealth | undefined
  /** The console's "Account" section (admin-account.ts). */
  readonly account?: () => AdminAccount
  /** Blocks a widget (admin-block.ts); false when no such widget is hosted. */
  readonly blockWidget?: (ref: BlockTarget) => boolean
}

/**
 * The console's "Homeserver health": the sync loop's counters, and the room events that could not
 * be decrypted (after their late-key hold, or known never to decrypt), newest first.
 */
export interface HomeserverHealth {
  /** The `/sync` connection: lag, backoff and retries, errors by kind; null when not watched. */
  readonly connection: SyncHealth | null
  readonly syncs: number
  readonly syncErrors: number
  /** Room events waiting for a room key now (and those queued behind them). */
  readonly held: number
  readonly delivered: number
  readonly decrypted: number
  /** Delivered after their hold gave up, when their key came after all. */
  readonly lateDelivered: number
  /** Room events reported undecryptable (all of them; `recentUndecryptable` keeps the last few). */
  readonly undecryptable: number
  readonly toDeviceUndecryptable: number
  readonly recentUndecryptable: ReadonlyArray<{
    readonly at: string
    readonly roomId: string
    readonly eventId: string
    readonly kind: "held-too-long" | "failed" | "evicted"
    readonly reason: string
  }>
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


const digest = (value: string) => createHash("sha256").update(value).digest()

const queryOf = (req: IncomingMessage) => new URL(req.url ?? "/", "http://admin.invalid").searchParams

const sendLogAnswer = (res: ServerResponse, answer: LogAnswer) => (answer._tag === "Ok" ? sendJson(res, 200, answer.body) : sendError(res, answer._tag, answer.message))

/**
 * Starts the admin API and console on 127.0.0.1.
 *
 * @example
 * const admin = await startAdminServer({ token, model })
 * console.log(`console: ${admin.url}/?token=${token}`)
 * await admin.close()
 */
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

  const streams = startChangeStreams({ model, maxEventStreams, coalesceMs, heartbeatMs })

  // ---- routes ------------------------------------------------------------------------------------

  const page = consolePage()

  const routeFor = (parts: ReadonlyArray<string>): Route | "malformed" | undefined => {
    if (parts.length === 0) {
      return { methods: ["GET"], queryToken: true, handle: (_req, res) => void res.writeHead(200, { ...BASE_HEADERS, ...page.headers }).end(page.html) }
    }
    if (parts[0] !== "api") return undefined
    const [, resource, rawId, action, ...rest] = parts
    if (rest.length > 0) return undefined
    const { blockWidget } = model
    if (resource === "widgets" && rawId === "block" && action === undefined && blockWidget !== undefined) {
      return {
        methods: ["POST"],
        queryToken: false,
        handle: async (req, res) => {
          const parsed = parseBlockTarget(await readJson(req, maxBodyBytes))
          if (!parsed.ok) return sendError(res, "BadRequest", parsed.issue)
          if (!blockWidget(parsed.ref)) return sendError(res, "NotFound", `no widget ${JSON.stringify(parsed.ref.id)}${parsed.ref.roomId === undefined ? "" : ` in ${parsed.ref.roomId}`}`)
          sendJson(res, 200, { blocked: parsed.ref })
        }
      }
    }
    if (resource === "log" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (req, res) => sendLogAnswer(res, mergedLogAnswer(model, queryOf(req))) }
    if (resource === "widgets" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { widgets: model.widgets() }) }
    if (resource === "events" && rawId === undefined) return { methods: ["GET"], queryToken: true, handle: streams.open }
    if (resource === "identity" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { identity: model.identity?.() ?? null }) }
    if (resource === "verification") return verificationRoute(model.verification, rawId, action)
    if (resource === "account" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { account: model.account?.() ?? null }) }
    if (resource === "homeserver" && rawId === undefined) return { methods: ["GET"], queryToken: false, handle: (_req, res) => sendJson(res, 200, { homeserver: model.homeserver?.() ?? null }) }
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
      if (action === "log") return { methods: ["GET"], queryToken: false, handle: (req, res) => sendLogAnswer(res, sessionLogAnswer(model, id, queryOf(req))) }
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
      streams.close()
      server.close(() => resolve())
      server.closeAllConnections()
    }))

  return { url, close }
}
