/**
 * One scripted websocket widget of the simulation, and the tally every widget reports into:
 * what it was sent, what it received (each message once, checked), its latencies and errors.
 */
import { performance } from "node:perf_hooks"
import { WebSocket } from "ws"
import { corkForThisTurn } from "@widgethost/websocket"
import { SimulationError } from "./simulate-options.ts"


const EVENT_TYPE = "org.example.sim"
const BODY = /^sim (\d+)$/
const WIDGET_VERSIONS = ["0.0.1", "0.0.2", "org.matrix.msc2762", "org.matrix.msc2871", "org.matrix.msc3819", "town.robin.msc3846"]
/** TURN credentials live 5 s, so watchers see refreshes (every 4 s) within a short run. */
export const TURN_TTL_SECONDS = 5
const MAX_SAMPLES = 10

const capabilitiesFor = (watchesTurn: boolean): ReadonlyArray<string> => [
  "m.receive.event:m.room.message",
  "m.send.event:m.room.message",
  `m.receive.state_event:${EVENT_TYPE}`,
  `m.send.state_event:${EVENT_TYPE}`,
  `m.send.to_device:${EVENT_TYPE}`,
  `m.receive.to_device:${EVENT_TYPE}`,
  ...(watchesTurn ? ["m.turn_servers"] : [])
]

/** Everything the run counts; shared by all widgets (one process, one event loop). */
export class Tally {
  messagesSent = 0
  stateSent = 0
  stateDeliveries = 0
  toDeviceSent = 0
  toDeviceDeliveries = 0
  toDeviceReceived = 0
  turnUpdates = 0
  eventsRouted = 0
  deliveries = 0
  widgetsReady = 0
  pendingRequests = 0
  /** When the last message delivery arrived (performance.now()). */
  lastDelivery = 0
  readonly errors = new Map<string, number>()
  readonly samples: Array<string> = []
  /** Send time of each message by seq (NaN: not sent). */
  readonly sentAt: Float64Array
  /** Per to-device seq: 0 not seen, 1 seen by its target account. */
  readonly toDeviceSeen: Uint8Array
  closing = false

  /** What this thread's widgets received, as a report counts it (the run's totals add these up over threads). */
  received() {
    const { deliveries, stateDeliveries, toDeviceDeliveries, toDeviceReceived, turnUpdates, eventsRouted } = this
    return { deliveries, stateDeliveries, toDeviceDeliveries, toDeviceReceived, turnUpdates, eventsRouted }
  }

  /**
   * `sentAt` and `now` are given when the run is spread over worker threads: the send times then
   * live in shared memory, stamped by the sender's thread and read by every receiver's, so the
   * clock must be one all threads share (`performance.timeOrigin + performance.now()`).
   */
  constructor(
    messages: number,
    toDevice: number,
    sentAt?: Float64Array,
    readonly now: () => number = () => performance.now()
  ) {
    this.sentAt = sentAt ?? new Float64Array(messages + 1).fill(Number.NaN)
    this.toDeviceSeen = new Uint8Array(toDevice + 1)
  }

  error(kind: string, detail: string, count = 1): void {
    if (count <= 0) return
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + count)
    if (this.samples.length < MAX_SAMPLES) this.samples.push(`${kind}: ${detail}`)
  }
}

export type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

/** One scripted widget: a websocket client that negotiates, acknowledges and counts. */
export class SimWidget {
  readonly ws: WebSocket
  readonly ready: Promise<void>
  private markReady!: () => void
  private failReady!: (error: Error) => void
  private nextRequest = 0
  private isReady = false
  private readonly pending = new Map<string, { readonly action: string; readonly done?: (ok: boolean) => void }>()
  /** Per message seq: received (1) or not (0); the same for state changes and to-device. */
  private readonly seen: Uint8Array
  private readonly seenState: Uint8Array
  private readonly seenToDevice: Uint8Array
  private readonly capabilities: ReadonlyArray<string>
  /** This widget's message receipts: how many, each one's latency (ms) and arrival (the tally's clock). */
  deliveries = 0
  readonly latencies: Array<number> = []
  readonly receivedAt: Array<number> = []

  constructor(
    readonly id: string,
    readonly account: number,
    uri: string,
    watchesTurn: boolean,
    private readonly tally: Tally,
    private readonly encrypted: boolean,
    messages: number,
    toDevice: number
  ) {
    this.capabilities = capabilitiesFor(watchesTurn)
    this.seen = new Uint8Array(messages + 1)
    this.seenState = new Uint8Array(messages + 1)
    this.seenToDevice = new Uint8Array(toDevice + 1)
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve
      this.failReady = reject
    })
    this.ready.catch(() => undefined) // observed by whoever awaits it; never unhandled
    this.ws = new WebSocket(uri)
    this.ws.on("open", () => this.request("content_loaded", {}))
    this.ws.on("message", (data) => this.onMessage((data as Buffer).toString())) // binaryType "nodebuffer"
    this.ws.on("error", () => undefined) // "close" follows and is what counts
    this.ws.on("close", (code, reason) => {
      this.failReady(new SimulationError(`widget ${id} closed before it was ready (${code} ${reason.toString()})`))
      if (!tally.closing) tally.error("transportCloses", `${id}: ${code} ${reason.toString()}`)
    })
  }

  /** Sends a fromWidget request; false when the socket is not open. */
  request(action: string, data: Json, done?: (ok: boolean) => void): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false
    const requestId = `${this.id}-${++this.nextRequest}`
    this.pending.set(requestId, done === undefined ? { action } : { action, done })
    this.tally.pendingRequests++
    this.ws.send(JSON.stringify({ api: "fromWidget", widgetId: this.id, requestId, action, data }))
    return true
  }

  sendMessage(seq: number): boolean {
    const body = { type: "m.room.message", content: { msgtype: "m.text", body: `sim ${seq}` } }
    // Stamped just before the write: latency covers the socket, engine, homeserver and back.
    this.tally.sentAt[seq] = this.tally.now()
    if (this.request("send_event", body)) return true
    this.tally.sentAt[seq] = Number.NaN
    return false
  }

  sendState(seq: number): boolean {
    return this.request("send_event", { type: EVENT_TYPE, state_key: this.id, content: { seq, widget: this.id } })
  }

  sendToDevice(userId: string, seq: number, account: number): boolean {
    return this.request("send_to_device", { type: EVENT_TYPE, encrypted: this.encrypted, messages: { [userId]: { "*": { seq, account, from: this.id } } } })
  }

  watchTurn(): Promise<boolean> {
    return new Promise((resolve) => {
      if (!this.request("watch_turn_servers", {}, resolve)) resolve(false)
    })
  }

  /** Pending fromWidget requests nobody answered; counted once at the end. */
  unanswered(): number {
    return this.pending.size
  }

  private onMessage(text: string): void {
    let message: unknown
    try {
      message = JSON.parse(text)
    } catch {
      return this.tally.error("malformed", `${this.id}: not JSON`)
    }
    if (!isObject(message)) return this.tally.error("malformed", `${this.id}: not an object`)
    if (message.api === "fromWidget" && "response" in message) return this.onResponse(message)
    if (message.api !== "toWidget" || "response" in message) return
    const action = String(message.action)
    const data = isObject(message.data) ? message.data : {}
    let response: Json = {}
    switch (action) {
      case "supported_api_versions":
        response = { supported_versions: WIDGET_VERSIONS }
        break
      case "capabilities":
        response = { capabilities: this.capabilities }
        break
      case "notify_capabilities": {
        const approved = Array.isArray(data.approved) ? data.approved : []
        const missing = this.capabilities.filter((c) => !approved.includes(c))
        if (this.isReady) break // a re-notification (MSC2974): ready already
        if (missing.length > 0) this.tally.error("denied", `${this.id}: ${missing.join(", ")}`)
        this.isReady = true
        this.tally.widgetsReady++
        this.markReady()
        break
      }
      case "send_event":
        this.onEvent(data)
        break
      case "send_to_device":
        this.onToDevice(data)
        break
      case "update_turn_servers":
        this.tally.turnUpdates++
        break
    }
    if (this.ws.readyState !== WebSocket.OPEN) return
    // A batch of deliveries comes in one read; their answers leave in one write.
    corkForThisTurn(this.ws)
    this.ws.send(acknowledgement(text, response))
  }

  private onResponse(message: Json): void {
    const requestId = String(message.requestId)
    const pending = this.pending.get(requestId)
    if (pending === undefined) return this.tally.error("unexpectedResponses", `${this.id}: ${requestId}`)
    this.pending.delete(requestId)
    this.tally.pendingRequests--
    const error = isObject(message.response) ? message.response.error : undefined
    if (error !== undefined) {
      const text = isObject(error) ? `${String(error.code)} ${String(error.message)}` : JSON.stringify(error)
      this.tally.error("errorResponses", `${this.id} ${pending.action}: ${text}`)
    }
    pending.done?.(error === undefined)
  }

  private onEvent(data: Json): void {
    const content = isObject(data.content) ? data.content : {}
    if (data.type === EVENT_TYPE && typeof data.state_key === "string") {
      const seq = typeof content.seq === "number" ? content.seq : -1
      if (seq < 1 || seq >= this.seenState.length) return this.tally.error("unexpectedEvents", `${this.id}: state ${JSON.stringify(content)}`)
      if (this.seenState[seq] === 1) return this.tally.error("duplicates", `${this.id}: state change ${seq}`)
      this.seenState[seq] = 1
      this.tally.stateDeliveries++
      return
    }
    const match = data.type === "m.room.message" && typeof content.body === "string" ? BODY.exec(content.body) : null
    if (match === null) return
    const seq = Number(match[1])
    if (seq >= this.seen.length) return this.tally.error("unexpectedEvents", `${this.id}: message ${seq}`)
    if (this.seen[seq] === 1) return this.tally.error("duplicates", `${this.id}: message ${seq}`)
    this.seen[seq] = 1
    this.tally.deliveries++
    this.deliveries++
    const now = this.tally.now()
    this.tally.lastDelivery = now
    const sentAt = this.tally.sentAt[seq] ?? Number.NaN
    if (Number.isNaN(sentAt)) return
    this.latencies.push(now - sentAt)
    this.receivedAt.push(now)
  }

  private onToDevice(data: Json): void {
    const content = isObject(data.content) ? data.content : {}
    const seq = typeof content.seq === "number" ? content.seq : -1
    if (data.type !== EVENT_TYPE || seq < 1 || seq >= this.seenToDevice.length) return this.tally.error("unexpectedEvents", `${this.id}: to-device ${JSON.stringify(data)}`)
    if (content.account !== this.account) this.tally.error("toDeviceMisrouted", `${this.id}: to-device ${seq} was for account ${String(content.account)}`)
    if (data.encrypted !== this.encrypted) this.tally.error("toDeviceEncryption", `${this.id}: to-device ${seq} arrived with encrypted: ${String(data.encrypted)}`)
    if (this.seenToDevice[seq] === 1) return this.tally.error("duplicates", `${this.id}: to-device ${seq}`)
    this.seenToDevice[seq] = 1
    this.tally.toDeviceDeliveries++
    if (this.tally.toDeviceSeen[seq] === 0) {
      this.tally.toDeviceSeen[seq] = 1
      this.tally.toDeviceReceived++
    }
  }
}

/**
 * The reply to a toWidget request: its own text with `response` added as the last key, which is
 * what `JSON.stringify({ ...message, response })` gives, without stringifying the request again
 * (for a send_event that is the whole event, once per delivery). `request` parsed as an object
 * without a `response` key, so its last non-blank character is its closing brace.
 *
 * @example acknowledgement('{"api":"toWidget","action":"send_event"}', {}) // '{"api":"toWidget","action":"send_event","response":{}}'
 */
export const acknowledgement = (request: string, response: Json): string => {
  const end = request.lastIndexOf("}")
  const body = request.slice(0, end).trimEnd()
  return `${body}${body.endsWith("{") ? "" : ","}"response":${JSON.stringify(response)}}`
}
