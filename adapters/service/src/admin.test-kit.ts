/**
 * What the admin API tests share: a small service around a real engine (as serve.ts builds it)
 * with widgets on in-memory links, an HTTP caller, a waiting prompt, and a Server-Sent Events reader.
 */
import { afterEach, assert, vi } from "vitest"
import type { WidgetMessage } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { ROOM, widgetDefinition } from "@widgethost/testing"
import { type AdminChange, type AdminModel, type AdminServer, type AdminWidget, engineAdminModel, startAdminServer } from "./admin.ts"
import { MessageLog } from "./message-log.ts"
import { ApprovalQueue } from "./approvals.ts"
import { fromEffectPort } from "@widgethost/core/effect"

export const TOKEN = "admin-token-0123456789abcdef"
export const SEND = "org.matrix.msc2762.send.event:m.room.message"
export const READ = "org.matrix.msc2762.receive.event:m.room.message"
export const REACT = "org.matrix.msc2762.send.event:m.reaction"

export type Message = WidgetMessage & Readonly<Record<string, unknown>>

// ---- a small service around a real engine, as serve.ts builds it -------------------------------

export interface World {
  readonly engine: Engine
  readonly approvals: ApprovalQueue
  readonly log: MessageLog
  readonly server: AdminServer
  readonly notify: (change: AdminChange) => void
  /** A widget on an in-memory link: it makes first contact and answers the engine's requests. */
  readonly widget: (id: string, capabilities: ReadonlyArray<string>) => { readonly sessionId: string; readonly inbox: Message[] }
}

export const cleanups: Array<() => Promise<void> | void> = []
/** Runs what each test set up to stop, newest first (register once per test file). */
export const useAdminCleanup = () => {
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
}

export const world = async (options: { maxEventStreams?: number; maxBodyBytes?: number; createUser?: AdminModel["createUser"]; account?: AdminModel["account"]; blockWidget?: AdminModel["blockWidget"] } = {}): Promise<World> => {
  const { createUser, account, blockWidget, ...serverOptions } = options
  const approvals = new ApprovalQueue()
  const log = new MessageLog()
  const engine = createEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver({ rooms: [ROOM] })), approver: approvals.approver })
  cleanups.push(() => engine.stop())
  const widgets: AdminWidget[] = [{ id: "w1", roomId: ROOM, name: "Widget one", transport: "m.websockets", url: "https://widget.example/" }]
  const model = engineAdminModel({ engine, widgets: () => widgets, approvals, messages: log, ...(createUser === undefined ? {} : { createUser }), ...(account === undefined ? {} : { account }), ...(blockWidget === undefined ? {} : { blockWidget }) })
  const notify = model.notify
  const server = await startAdminServer({ token: TOKEN, model, coalesceMs: 5, ...serverOptions })
  cleanups.push(() => server.close())

  const widget = (id: string, capabilities: ReadonlyArray<string>) => {
    const inbox: Message[] = []
    let sessionId = ""
    const receive = (message: unknown) => {
      log.record(sessionId, "in", message)
      notify({ kind: "message", sessionId })
      engine.session(sessionId)?.receive(message)
    }
    const answer = (request: Message) =>
      receive({
        ...request,
        response: request.action === "capabilities" ? { capabilities } : request.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      })
    const session = engine.openSession({
      widget: widgetDefinition({ id, waitForIframeLoad: false }),
      send: (message) => {
        log.record(sessionId, "out", message)
        notify({ kind: "message", sessionId })
        inbox.push(message as Message)
        if (message.api === "toWidget" && !("response" in message)) queueMicrotask(() => answer(message as Message))
      }
    })
    sessionId = session.sessionId
    session.onClose(() => notify({ kind: "sessions" }))
    notify({ kind: "sessions" })
    receive({ api: "fromWidget", widgetId: id, requestId: "r0", action: "content_loaded", data: {} })
    return { sessionId, inbox }
  }
  return { engine, approvals, log, server, notify, widget }
}

// ---- HTTP --------------------------------------------------------------------------------------

export interface CallOptions {
  /** `null`: no Authorization header. Default: the right token. */
  readonly token?: string | null
  readonly authorization?: string
  /** A string is sent as is; anything else as JSON. Not sent with GET. */
  readonly body?: unknown
}

export const call = async (server: AdminServer, method: string, path: string, options: CallOptions = {}) => {
  const headers: Record<string, string> = {}
  const token = options.token === undefined ? TOKEN : options.token
  if (options.authorization !== undefined) headers["authorization"] = options.authorization
  else if (token !== null) headers["authorization"] = `Bearer ${token}`
  const init: RequestInit = { method, headers }
  if (options.body !== undefined && method !== "GET") {
    init.body = typeof options.body === "string" ? options.body : JSON.stringify(options.body)
    headers["content-type"] = "application/json"
  }
  const res = await fetch(`${server.url}${path}`, init)
  const text = await res.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> | undefined }
}

export const errorCode = (json: Record<string, unknown> | undefined) => (json?.["error"] as { code?: string } | undefined)?.code

export const path = (...parts: ReadonlyArray<string>) => parts.map((part) => `/${encodeURIComponent(part)}`).join("")

export const notified = (inbox: ReadonlyArray<Message>) => inbox.filter((m) => m.action === "notify_capabilities" && !("response" in m)).map((m) => m.data)

/** A world with one widget whose prompt for `capabilities` is waiting. */
export const withPrompt = async (capabilities: ReadonlyArray<string> = [SEND, READ]) => {
  const w = await world()
  const widget = w.widget("w1", capabilities)
  await vi.waitFor(() => assert.equal(w.approvals.size, 1))
  const prompt = w.approvals.pending()[0]
  assert.isDefined(prompt, "a prompt is waiting")
  return { ...w, ...widget, prompt }
}

// ---- tests -------------------------------------------------------------------------------------

/** Reads Server-Sent Events from a fetch body. */
export const eventStream = async (server: AdminServer, query = `?token=${encodeURIComponent(TOKEN)}`, headers: Record<string, string> = {}) => {
  const controller = new AbortController()
  const res = await fetch(`${server.url}/api/events${query}`, { headers, signal: controller.signal })
  const events: Array<{ event: string; data: string }> = []
  let ended = false
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  void (async () => {
    let buffer = ""
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let cut: number
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut)
          buffer = buffer.slice(cut + 2)
          const lines = block.split("\n")
          const event = lines.find((l) => l.startsWith("event: "))?.slice(7)
          const data = lines.find((l) => l.startsWith("data: "))?.slice(6)
          if (event !== undefined && data !== undefined) events.push({ event, data })
        }
      }
    } catch {
      // aborted
    }
    ended = true
  })()
  cleanups.push(() => controller.abort())
  return { res, events, ended: () => ended, changes: () => events.filter((e) => e.event === "change").map((e) => JSON.parse(e.data) as AdminChange) }
}
