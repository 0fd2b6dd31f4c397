/**
 * The widget's side of the Widget API, over either transport: it answers the host's capability
 * exchange, sends fromWidget requests and awaits their answers, and answers every toWidget
 * request exactly once (with what a listener returns, `{}` for the notifications a widget only
 * acknowledges, or an error for an action nobody here handles). Widgets use it as their API
 * client; tests and simulations use it to script widgets.
 *
 * Exactly once across reconnects: a host may deliver a toWidget request again after the link
 * dropped (the websocket transport redelivers what was written and not answered), since the
 * request or its answer may have been lost. Request ids are unique per direction (MSC2762), so
 * the client dedupes by id: a request seen before is not handled again; it gets the answer given
 * the first time (the answer may be what was lost), or, still being handled, its one answer when
 * ready. `resume(transport)` carries the client over to a new connection.
 *
 * The other direction, too: an answer to the widget's own request may be lost with a dropped
 * link. A link that drops resumably (the transport says so) leaves the pending requests waiting
 * (their timeouts run on), and `resume` sends each again with the same id; the host answers a
 * repeated id once, from what it answered before, without running the request again
 * (widgethost's websocket transport does: see its README, "Redelivery").
 *
 * @example
 * const client = new WidgetClient({ transport: await websocketTransport(uri, { WebSocket }), widgetId, capabilities: ["m.send.event:m.room.message"] })
 * client.contentLoaded()
 * await client.ready
 * const { event_id } = await client.sendEvent("m.room.message", { msgtype: "m.text", body: "hello" })
 */
import type { WidgetMessage, WidgetRequest } from "@widgethost/core"
import type { WidgetTransport } from "./widget-transport.ts"

/** The host answered a request with `{ error }`. `body` is the whole error object it sent. */
export class WidgetApiError extends Error {
  constructor(
    readonly action: string,
    readonly body: Readonly<Record<string, unknown>>
  ) {
    super(`${action}: ${typeof body["message"] === "string" ? body["message"] : JSON.stringify(body)}`)
    this.name = "WidgetApiError"
  }
}

/** What the widget says it speaks when the host asks; MSC2871 among them, so the host notifies it. */
export const DEFAULT_WIDGET_VERSIONS: ReadonlyArray<string> = [
  "0.0.1",
  "0.0.2",
  "org.matrix.msc2762",
  "org.matrix.msc2762_update_state",
  "org.matrix.msc2871",
  "org.matrix.msc2974",
  "org.matrix.msc3819",
  "org.matrix.msc3846",
  "org.matrix.msc3869",
  "org.matrix.msc3973",
  "org.matrix.msc4039",
  "org.matrix.msc4157"
]

/** toWidget actions a widget acknowledges with `{}` when no listener answers otherwise. */
const NOTIFICATIONS = new Set(["send_event", "update_state", "send_to_device", "update_turn_servers", "openid_credentials", "theme_change", "language_change", "visibility", "io.widgethost.transport_gap"])

export type ToWidgetListener = (data: Readonly<Record<string, unknown>>, request: WidgetRequest) => unknown

export interface WidgetClientOptions {
  readonly transport: WidgetTransport
  readonly widgetId: string
  /** What the widget asks for when the host asks `capabilities`. */
  readonly capabilities: ReadonlyArray<string>
  readonly supportedVersions?: ReadonlyArray<string>
  /** How long a fromWidget request waits for its answer (MSC2764: 10 s). */
  readonly timeoutMs?: number
  /** toWidget answers remembered to answer a redelivered request again (the newest are kept). Default 1000. */
  readonly rememberedAnswers?: number
}

/** A toWidget request being handled: its answer is not known yet. */
const ANSWERING: unique symbol = Symbol("answering")

export interface Approval {
  readonly requested: ReadonlyArray<string>
  readonly approved: ReadonlyArray<string>
}

interface Pending {
  readonly action: string
  readonly data: Readonly<Record<string, unknown>>
  readonly resolve: (response: unknown) => void
  readonly reject: (error: Error) => void
  readonly timer: ReturnType<typeof setTimeout>
}

export class WidgetClient {
  /** Resolves with the host's first `notify_capabilities`. */
  readonly ready: Promise<Approval>
  /** The latest approval the host notified (MSC2974 may widen it). */
  approval: Approval | undefined
  private readonly pending = new Map<string, Pending>()
  private readonly listeners = new Map<string, Set<ToWidgetListener>>()
  /** toWidget request id → the answer sent (or `ANSWERING`), oldest first. */
  private readonly answers = new Map<string, unknown>()
  private transport: WidgetTransport
  private stopListening: () => void = () => undefined
  private stopClose: () => void = () => undefined
  private nextId = 0
  private closed: string | undefined
  private closedByWidget = false
  private markReady: (approval: Approval) => void = () => undefined

  constructor(private readonly options: WidgetClientOptions) {
    this.ready = new Promise((resolve) => (this.markReady = resolve))
    this.transport = options.transport
    this.attach(options.transport)
  }

  /**
   * Carries the client over to a new connection after its transport dropped (for the websocket
   * transport: the same URI, within the host's resume window). The session is the same: no new
   * capability exchange, `ready` and `approval` stand, and requests the host delivers again are
   * deduped. fromWidget requests still pending (the drop was resumable: see `WidgetTransport.onClose`)
   * are sent again with their ids, oldest first; those pending at a final close were rejected then.
   * Throws after `close()`.
   */
  resume(transport: WidgetTransport): void {
    if (this.closedByWidget) throw new Error("resume: the widget closed this client")
    if (this.closed === undefined) {
      this.stopListening()
      this.stopClose()
    }
    this.closed = undefined
    this.transport = transport
    this.attach(transport)
    for (const [requestId, pending] of this.pending) this.transport.send({ api: "fromWidget", widgetId: this.options.widgetId, requestId, action: pending.action, data: pending.data })
  }

  private attach(transport: WidgetTransport): void {
    this.stopListening = transport.onMessage((message) => this.hear(message))
    this.stopClose = transport.onClose((reason, resumable) => this.end(reason, resumable === true))
  }

  /** Tells the host the widget has loaded (MSC2764 `content_loaded`): websocket widgets and `waitForIframeLoad: false` must. */
  contentLoaded(): Promise<unknown> {
    return this.request("content_loaded", {})
  }

  /** Sends a fromWidget request and resolves with the host's `response`; rejects on `{ error }`, timeout or close. */
  request(action: string, data: Readonly<Record<string, unknown>> = {}): Promise<unknown> {
    if (this.closed !== undefined) return Promise.reject(new Error(`${action}: the transport is closed (${this.closed})`))
    const requestId = `widget-${++this.nextId}`
    return new Promise((resolve, reject) => {
      const timeoutMs = this.options.timeoutMs ?? 10_000
      const timer = setTimeout(() => {
        this.pending.delete(requestId)
        reject(new Error(`${action}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(requestId, { action, data, resolve, reject, timer })
      this.transport.send({ api: "fromWidget", widgetId: this.options.widgetId, requestId, action, data })
    })
  }

  /**
   * Listens to one toWidget action. A listener's return value (or what its Promise resolves to)
   * answers the request, when it is an object; the first listener that answers wins. Returns the
   * function that stops listening.
   */
  on(action: string, listener: ToWidgetListener): () => void {
    let set = this.listeners.get(action)
    if (set === undefined) this.listeners.set(action, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  // ---- typed requests ----------------------------------------------------------------------------

  sendEvent(type: string, content: Readonly<Record<string, unknown>>, options: { readonly stateKey?: string; readonly roomId?: string; readonly delay?: number } = {}): Promise<{ room_id: string; event_id?: string; delay_id?: string }> {
    const data: Record<string, unknown> = { type, content }
    if (options.stateKey !== undefined) data["state_key"] = options.stateKey
    if (options.roomId !== undefined) data["room_id"] = options.roomId
    if (options.delay !== undefined) data["delay"] = options.delay
    return this.request("send_event", data) as Promise<{ room_id: string; event_id?: string; delay_id?: string }>
  }

  readEvents(type: string, options: { readonly stateKey?: string; readonly limit?: number; readonly roomIds?: ReadonlyArray<string> | "*" } = {}): Promise<{ events: Array<Record<string, unknown>> }> {
    const data: Record<string, unknown> = { type }
    if (options.stateKey !== undefined) data["state_key"] = options.stateKey
    if (options.limit !== undefined) data["limit"] = options.limit
    if (options.roomIds !== undefined) data["room_ids"] = options.roomIds
    return this.request("org.matrix.msc2876.read_events", data) as Promise<{ events: Array<Record<string, unknown>> }>
  }

  sendToDevice(type: string, messages: Readonly<Record<string, Readonly<Record<string, unknown>>>>, encrypted = false): Promise<unknown> {
    return this.request("send_to_device", { type, encrypted, messages })
  }

  watchTurnServers(): Promise<unknown> {
    return this.request("watch_turn_servers", {})
  }

  requestCapabilities(capabilities: ReadonlyArray<string>): Promise<unknown> {
    return this.request("org.matrix.msc2974.request_capabilities", { capabilities })
  }

  getOpenId(): Promise<unknown> {
    return this.request("get_openid", {})
  }

  /** Stops listening, fails what is pending and closes the transport. */
  close(): void {
    this.closedByWidget = true
    this.end("closed by the widget", false)
    this.transport.close()
  }

  // ---- incoming ----------------------------------------------------------------------------------

  /** The link ended. Resumable: what is pending waits for `resume` (or its timeout); else it fails now. */
  private end(reason: string, resumable: boolean): void {
    const already = this.closed !== undefined
    this.closed ??= reason
    if (!already) {
      this.stopListening()
      this.stopClose()
    }
    if (resumable) return
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer)
      pending.reject(new Error(`${pending.action}: the transport closed (${reason})`))
      this.pending.delete(id)
    }
  }

  private hear(message: unknown): void {
    if (typeof message !== "object" || message === null) return
    const m = message as Partial<WidgetMessage> & { response?: unknown }
    if (typeof m.requestId !== "string" || typeof m.action !== "string") return
    if (m.api === "fromWidget" && "response" in m) return this.answered(m.requestId, m.response)
    if (m.api === "toWidget" && !("response" in m)) this.heardRequest(m as WidgetRequest)
  }

  /** A request seen before is delivered again, not new: answer it as the first time, never twice at once. */
  private heardRequest(request: WidgetRequest): void {
    if (!this.answers.has(request.requestId)) return void this.answer(request)
    const answered = this.answers.get(request.requestId)
    if (answered !== ANSWERING) this.transport.send({ ...request, response: answered })
  }

  private remember(requestId: string, answer: unknown): void {
    this.answers.delete(requestId) // re-inserted as the newest
    this.answers.set(requestId, answer)
    const limit = this.options.rememberedAnswers ?? 1000
    for (const oldest of this.answers.keys()) {
      if (this.answers.size <= limit) break
      this.answers.delete(oldest)
    }
  }

  private answered(requestId: string, response: unknown): void {
    const pending = this.pending.get(requestId)
    if (pending === undefined) return
    this.pending.delete(requestId)
    clearTimeout(pending.timer)
    const error = (response as { error?: unknown } | null)?.error
    if (typeof error === "object" && error !== null) pending.reject(new WidgetApiError(pending.action, error as Record<string, unknown>))
    else pending.resolve(response)
  }

  private async answer(request: WidgetRequest): Promise<void> {
    this.remember(request.requestId, ANSWERING)
    const data = typeof request.data === "object" && request.data !== null ? request.data : {}
    let response: unknown
    if (request.action === "capabilities") response = { capabilities: this.options.capabilities }
    else if (request.action === "supported_api_versions") response = { supported_versions: this.options.supportedVersions ?? DEFAULT_WIDGET_VERSIONS }
    else if (request.action === "notify_capabilities") {
      const approval = { requested: (data["requested"] as ReadonlyArray<string>) ?? [], approved: (data["approved"] as ReadonlyArray<string>) ?? [] }
      this.approval = approval
      this.markReady(approval)
    }
    for (const listener of this.listeners.get(request.action) ?? []) {
      try {
        const answer = await listener(data, request)
        if (response === undefined && typeof answer === "object" && answer !== null) response = answer
      } catch (error) {
        response ??= { error: { message: error instanceof Error ? error.message : String(error) } }
      }
    }
    const known = request.action === "notify_capabilities" || NOTIFICATIONS.has(request.action) || this.listeners.has(request.action)
    response ??= known ? {} : { error: { message: `the widget does not handle ${request.action}` } }
    // Remembered even when the link is down: the host delivers the request again on resume.
    if (this.answers.has(request.requestId)) this.answers.set(request.requestId, response)
    if (this.closed === undefined) this.transport.send({ ...request, response })
  }
}
