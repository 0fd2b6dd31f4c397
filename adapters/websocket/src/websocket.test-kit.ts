/**
 * What the websocket transport tests share: simulated timers, a fake session that records and
 * echoes, a transport started on a free port with a register helper, clients that record what
 * they receive, and the cleanup that stops all of them.
 */
import { afterEach, assert, vi } from "vitest"
import { WebSocket } from "ws"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import { type Timers, type WebsocketTransport, type WebsocketTransportOptions } from "./transport-types.ts"
import { startWebsocketTransport } from "./websocket.ts"

// ---- simulated time ----------------------------------------------------------------------------

/** Timers that only move when the test says so. */
export class SimulatedTimers implements Timers {
  now = 0
  private seq = 0
  private readonly tasks = new Map<number, { at: number; run: () => void; every?: number }>()
  readonly setTimeout = (run: () => void, ms: number) => this.add({ at: this.now + ms, run })
  readonly setInterval = (run: () => void, ms: number) => this.add({ at: this.now + ms, run, every: ms })
  readonly clearTimeout = (handle: unknown) => void this.tasks.delete(handle as number)
  readonly clearInterval = (handle: unknown) => void this.tasks.delete(handle as number)
  private add(task: { at: number; run: () => void; every?: number }) {
    this.tasks.set(++this.seq, task)
    return this.seq
  }
  advance(ms: number) {
    const end = this.now + ms
    for (;;) {
      let next: [number, { at: number; run: () => void; every?: number }] | undefined
      for (const entry of this.tasks) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry
      if (next === undefined) break
      const [id, task] = next
      this.now = task.at
      if (task.every === undefined) this.tasks.delete(id)
      else task.at += task.every
      task.run()
    }
    this.now = end
  }
}

// ---- a fake session ----------------------------------------------------------------------------

export class FakeSession implements WidgetSession {
  readonly events: Array<string> = []
  readonly received: Array<unknown> = []
  closedWith: string | undefined
  private readonly listeners = new Set<(reason: string) => void>()
  constructor(
    readonly widgetId: string,
    readonly send: (message: WidgetMessage) => void,
    private readonly behaviour: { echo?: boolean; throwOnReceive?: boolean } = {}
  ) {}
  readonly receive = (raw: unknown) => {
    this.events.push("receive")
    this.received.push(raw)
    if (this.behaviour.throwOnReceive === true) throw new Error("boom")
    if (this.behaviour.echo === true) this.send(reply(this.widgetId, raw))
  }
  readonly frameLoaded = () => void this.events.push("frameLoaded")
  readonly transportDown = () => void this.events.push("transportDown")
  readonly transportUp = () => void this.events.push("transportUp")
  readonly close = (reason?: string) => {
    if (this.closedWith !== undefined) return
    this.closedWith = reason ?? ""
    this.events.push("close")
    for (const listener of this.listeners) listener(this.closedWith)
  }
  readonly onClose = (listener: (reason: string) => void) => {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }
}

export const reply = (widgetId: string, raw: unknown): WidgetMessage => ({
  api: "fromWidget",
  widgetId,
  requestId: typeof raw === "object" && raw !== null && "requestId" in raw ? String(raw.requestId) : "?",
  action: "echo",
  data: {},
  response: { echoed: raw }
})

export const toWidget = (widgetId: string, n: number): WidgetMessage => ({ api: "toWidget", widgetId, requestId: `host-${n}`, action: "test", data: { n } })

export const fromWidget = (n: number) => JSON.stringify({ api: "fromWidget", widgetId: "w", requestId: `r${n}`, action: "test", data: { n } })

// ---- harness -----------------------------------------------------------------------------------

let transports: Array<WebsocketTransport> = []
let clients: Array<WebSocket> = []

/** Stops every transport and client a test started (register once per test file). */
export const useTransportCleanup = () => {
  afterEach(async () => {
    for (const client of clients) client.terminate()
    await Promise.all(transports.map((t) => t.close()))
    transports = []
    clients = []
  })
}

export const start = async (options: WebsocketTransportOptions = {}) => {
  const timers = new SimulatedTimers()
  const transport = await startWebsocketTransport({ timers, ...options })
  transports.push(transport)
  const sessions: Array<FakeSession> = []
  const register = (widgetId = "w", behaviour: { echo?: boolean; throwOnReceive?: boolean } = {}, origins?: ReadonlyArray<string>) =>
    transport.register(
      widgetId,
      (send) => {
        const session = new FakeSession(widgetId, send, behaviour)
        sessions.push(session)
        return session
      },
      origins === undefined ? undefined : { origins }
    )
  return { transport, timers, sessions, register }
}

/** A connected client that records what it receives. */
export interface Client {
  readonly ws: WebSocket
  readonly inbox: Array<Record<string, unknown>>
  readonly closed: Promise<{ code: number; reason: string }>
}

export const connect = async (uri: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<Client> => {
  const ws = new WebSocket(uri, options)
  clients.push(ws)
  const inbox: Array<Record<string, unknown>> = []
  ws.on("message", (data) => inbox.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>))
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })))
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.once("error", reject)
  })
  return { ws, inbox, closed }
}

/** Connects and expects the upgrade to be refused; returns the HTTP status. */
export const refusedStatus = (uri: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) =>
  new Promise<number>((resolve, reject) => {
    const ws = new WebSocket(uri, options)
    clients.push(ws)
    ws.once("open", () => reject(new Error("the connection was accepted")))
    ws.once("unexpected-response", (req, res) => {
      resolve(res.statusCode ?? 0)
      req.destroy()
    })
    ws.once("error", () => undefined)
  })

/** Sends a marker and waits until the session saw it: everything sent before it has been processed. */
export const roundTrip = async (client: Client, session: FakeSession) => {
  const marker = `sync-${Math.random()}`
  client.ws.send(JSON.stringify({ marker }))
  await vi.waitFor(() => assert.isTrue(session.received.some((m) => typeof m === "object" && m !== null && (m as { marker?: unknown }).marker === marker)))
}

export const settle = () => new Promise((resolve) => setImmediate(resolve))

/** The widget answers a toWidget request it received (an acknowledgement). */
export const answer = (client: Client, request: Record<string, unknown>, response: unknown = {}) => client.ws.send(JSON.stringify({ ...request, response }))
