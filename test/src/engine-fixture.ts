/**
 * Helpers for tests that run the real engine on real timers against a real homeserver port
 * (HTTP + E2EE over the embedded homeserver): a scripted widget that answers the engine the way
 * a well-behaved widget does, condition waits with deadlines, and a small HTTP proxy that can
 * hold a request back (a room key late in transit).
 *
 * Nothing here uses a simulated clock: the engine's timers, the ports' sync loops and the
 * homeserver all run in real time, so every wait is on a condition, never a fixed sleep.
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { request as undiciRequest } from "undici"
import { isResponse, type WidgetDefinition, type WidgetMessage, type WidgetRequest } from "@widgethost/core"
import type { Engine, EngineSession } from "@widgethost/engine"
import type { MatrixHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"

/** Polls `cond` until it holds; fails naming `what` (and the `detail`, if given) after `timeoutMs`. */
export const waitUntil = async (what: string, cond: () => boolean, timeoutMs = 30_000, detail?: () => unknown): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) {
      const more = detail === undefined ? "" : `: ${JSON.stringify(detail())}`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${more}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export interface RealtimeWidgetOptions {
  readonly engine: Engine
  readonly widget: WidgetDefinition
  /** What the widget answers to `capabilities`. */
  readonly capabilities: ReadonlyArray<string>
  /** What it answers to `supported_api_versions` (default: 0.0.2 without update_state). */
  readonly versions?: ReadonlyArray<string>
}

/**
 * A scripted widget on a real-time engine: it answers every toWidget request as a widget would
 * (`capabilities`, `supported_api_versions`, everything else with `{}`), asynchronously like a
 * transport, and records everything the engine sent it.
 */
export class RealtimeWidget {
  readonly session: EngineSession
  /** Everything the engine sent, in order (structured clones, as postMessage delivers them). */
  readonly received: Array<WidgetMessage> = []
  closedWith: string | undefined
  private nextId = 0
  private readonly widgetId: string

  constructor(private readonly options: RealtimeWidgetOptions) {
    this.widgetId = options.widget.id
    this.session = options.engine.openSession({
      widget: options.widget,
      send: (message) => {
        const copy = structuredClone(message)
        this.received.push(copy)
        if (copy.api === "toWidget" && !isResponse(copy)) setImmediate(() => this.answer(copy))
      }
    })
    this.session.onClose((reason) => (this.closedWith = reason))
  }

  private answer(request: WidgetRequest): void {
    let response: unknown = {}
    if (request.action === "capabilities") response = { capabilities: this.options.capabilities }
    else if (request.action === "supported_api_versions") response = { supported_versions: this.options.versions ?? ["0.0.2"] }
    this.session.receive(structuredClone({ ...request, response }))
  }

  /** Loads the frame and waits until the session is ready with everything it asked for approved. */
  async ready(timeoutMs = 30_000): Promise<void> {
    this.session.frameLoaded()
    await waitUntil(`${this.widgetId} to be ready`, () => this.toWidget("notify_capabilities").length > 0 && this.session.info().phase === "ready", timeoutMs, () => this.session.info())
    const approved = new Set(this.session.info().approved)
    const missing = this.options.capabilities.filter((c) => !approved.has(c))
    if (missing.length > 0) throw new Error(`${this.widgetId}: not approved: ${missing.join(", ")}`)
  }

  /** Sends a fromWidget request and resolves with its response (which may be an error body). */
  async request(action: string, data: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const requestId = `req${this.nextId++}`
    this.session.receive(structuredClone({ api: "fromWidget", widgetId: this.widgetId, requestId, action, data }))
    let found: unknown
    await waitUntil(`the response to ${action} (${requestId})`, () => (found = this.responseTo(requestId)) !== undefined, timeoutMs)
    return found as Record<string, unknown>
  }

  /** Like `request`, but fails when the response is an error. */
  async call(action: string, data: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const response = await this.request(action, data, timeoutMs)
    if ("error" in response) throw new Error(`${action} failed: ${JSON.stringify(response)}`)
    return response
  }

  responseTo(requestId: string): unknown {
    const found = this.received.find((m) => m.api === "fromWidget" && m.requestId === requestId && isResponse(m))
    return found === undefined ? undefined : (found as { response: unknown }).response
  }

  /** The toWidget requests of one action, in arrival order. */
  toWidget(action: string): Array<WidgetRequest> {
    return this.received.filter((m): m is WidgetRequest => m.api === "toWidget" && !isResponse(m) && m.action === action)
  }

  /** The `data` of every toWidget `send_event`: the room events delivered, in order. */
  events(): Array<Record<string, unknown> & { type: string; event_id: string; content: Record<string, unknown> }> {
    return this.toWidget("send_event").map((m) => m.data as Record<string, unknown> & { type: string; event_id: string; content: Record<string, unknown> })
  }

  /** The `data` of every toWidget `send_to_device`, in order. */
  toDevice(): Array<{ type: string; sender: string; content: Record<string, unknown>; encrypted: boolean }> {
    return this.toWidget("send_to_device").map((m) => m.data as { type: string; sender: string; content: Record<string, unknown>; encrypted: boolean })
  }
}

/** A room widget definition for `roomId`. */
export const roomWidget = (id: string, roomId: string): WidgetDefinition => ({
  id,
  kind: "room",
  roomId,
  type: "m.custom",
  url: `https://widget.example/${id}`,
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"]
})

/**
 * A pass-through HTTP proxy on 127.0.0.1 for fault tests: a matching request is held (answered
 * `{}` at once, sent upstream on `release`) or has its response lost after upstream acted.
 */
export interface ProxyRule {
  readonly method: string
  readonly path: RegExp
  times: number
  /** Default `hold`. */
  readonly action?: "hold" | "lose-response"
}

export interface HoldingProxy {
  readonly baseUrl: string
  readonly log: Array<{ readonly method: string; readonly url: string }>
  /** Requests matching one of these are held or lose their response (each rule `times` times). */
  readonly rules: Array<ProxyRule>
  readonly held: Array<{ readonly method: string; readonly url: string }>
  /** Sends the held requests upstream now, in order. */
  readonly release: () => Promise<void>
  readonly close: () => Promise<void>
}

export const startHoldingProxy = async (target: () => string): Promise<HoldingProxy> => {
  const log: HoldingProxy["log"] = []
  const rules: HoldingProxy["rules"] = []
  const held: Array<{ method: string; url: string; headers: Record<string, string>; body: Buffer }> = []
  const forward = (method: string, url: string, headers: Record<string, string>, body: Buffer) =>
    undiciRequest(`${target()}${url}`, { method: method as "GET", headers, ...(body.length > 0 ? { body } : {}) })
  const server: Server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      void (async () => {
        const method = req.method ?? "GET"
        const url = req.url ?? "/"
        const body = Buffer.concat(chunks)
        log.push({ method, url })
        const headers: Record<string, string> = {}
        for (const h of ["authorization", "content-type", "accept"]) if (typeof req.headers[h] === "string") headers[h] = req.headers[h]
        const rule = rules.find((r) => r.times > 0 && r.method === method && r.path.test(url.split("?")[0] ?? ""))
        if (rule !== undefined) rule.times -= 1
        if (rule !== undefined && rule.action !== "lose-response") {
          held.push({ method, url, headers, body })
          res.writeHead(200, { "content-type": "application/json" }).end("{}")
          return
        }
        try {
          const upstream = await forward(method, url, headers, body)
          const payload = Buffer.from(await upstream.body.arrayBuffer())
          if (rule?.action === "lose-response") {
            req.socket.destroy()
            return
          }
          const out: Record<string, string> = { "content-type": "application/json" }
          const retryAfter = upstream.headers["retry-after"]
          if (typeof retryAfter === "string") out["retry-after"] = retryAfter
          res.writeHead(upstream.statusCode, out).end(payload)
        } catch {
          req.socket.destroy()
        }
      })()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    log,
    rules,
    held,
    release: async () => {
      for (const h of held.splice(0)) await (await forward(h.method, h.url, h.headers, h.body)).body.dump()
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/**
 * Alice creates an encrypted room and invites Bob, Bob joins, and both ports start syncing;
 * resolves with the room id once each has finished its first sync.
 */
export const startInEncryptedRoom = async (alice: MatrixHomeserver, bob: MatrixHomeserver): Promise<string> => {
  const { room_id: roomId } = await alice.http.request<{ room_id: string }>({
    method: "POST",
    path: "/_matrix/client/v3/createRoom",
    body: {
      preset: "private_chat",
      invite: [bob.userId],
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }]
    }
  })
  await bob.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
  const synced = [alice.nextSync(), bob.nextSync()]
  alice.start()
  bob.start()
  await Promise.all(synced)
  return roomId
}
