/**
 * `widgethost simulate` (issue #7): a headless load run. An in-memory embedded homeserver (with
 * TURN), N accounts each with its own HTTP+E2EE homeserver port and its own engine, one shared
 * websocket transport, and M scripted websocket widgets per account in one public room. A seeded
 * workload sends messages, state changes and to-device messages through the widgets; every widget
 * of every account should receive every message, and the report says how many did, how fast, and
 * what went wrong.
 *
 * What is deterministic: the plan (who sends which message, when it is due, which widgets watch
 * TURN, where each to-device message goes) is a pure function of the options and the seed
 * ({@link planWorkload}). What is not: latencies and how deliveries interleave, which depend on
 * the machine.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { Result } from "effect"
import { WebSocket } from "ws"
import { parseWidgetDefinition, type WidgetDefinition } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { parseFlags, UsageError } from "./cli-flags.ts"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"

// ---- options ------------------------------------------------------------------------------------

export interface SimulateOptions {
  readonly accounts: number
  /** Widgets per account. */
  readonly widgets: number
  /** Messages per second, over all widgets. */
  readonly rate: number
  /** Send for this long (`rate × seconds` messages) or this many messages. */
  readonly until: { readonly durationSeconds: number } | { readonly events: number }
  /** A state change after every K-th message (0: none). */
  readonly stateEvery: number
  /** A to-device message after every K-th message (0: none; needs two accounts). */
  readonly toDeviceEvery: number
  /** Fraction of the widgets that watch TURN servers. */
  readonly turnWatchers: number
  /** The room has `m.room.encryption`; to-device messages are sent encrypted. */
  readonly encrypted: boolean
  readonly seed: number
  /** How long to wait after the last send for what is still in flight. Default 15 000 ms. */
  readonly drainTimeoutMs?: number
  /** How long accounts and widgets may take to get ready. Default 60 000 ms. */
  readonly setupTimeoutMs?: number
  /** Called about ten times a second while the simulation runs. */
  readonly onProgress?: (progress: Progress) => void
  /** Aborting stops sending early; what was sent is drained and reported. */
  readonly signal?: AbortSignal
}

export const defaultSimulateOptions: SimulateOptions = {
  accounts: 2,
  widgets: 5,
  rate: 20,
  until: { durationSeconds: 10 },
  stateEvery: 10,
  toDeviceEvery: 10,
  turnWatchers: 0.2,
  encrypted: false,
  seed: 1
}

/** Upper bounds that keep one command line from exhausting the machine (sockets, memory). */
const LIMITS = { accounts: 100, widgets: 1000, totalWidgets: 5000, rate: 10_000, durationSeconds: 86_400, events: 10_000_000, deliveries: 10_000_000 }

export interface Progress {
  readonly phase: "setup" | "running" | "draining"
  readonly widgetsReady: number
  readonly widgets: number
  readonly sent: number
  readonly planned: number
  readonly deliveries: number
  readonly expectedDeliveries: number
  readonly elapsedMs: number
}

export interface Report {
  readonly accounts: number
  readonly widgetsPerAccount: number
  readonly widgets: number
  readonly encrypted: boolean
  readonly rate: number
  readonly seed: number
  readonly setupSeconds: number
  /** From the first send to the last message delivery (or the last send, if later). */
  readonly durationSeconds: number
  readonly messagesPlanned: number
  readonly messagesSent: number
  readonly stateChanges: { readonly sent: number; readonly deliveries: number }
  /** `received`: distinct messages that reached the target account; `deliveries`: per widget. */
  readonly toDevice: { readonly sent: number; readonly received: number; readonly deliveries: number }
  readonly turn: { readonly watchers: number; readonly updates: number }
  /** Room events the homeserver ports handed to the engines during the run. */
  readonly eventsRouted: number
  /** Messages received by widgets (`send_event` toWidget), out of `expectedDeliveries`. */
  readonly deliveries: number
  readonly expectedDeliveries: number
  readonly deliveriesPerSecond: number
  /** Send (fromWidget) to receipt (toWidget) of each message by each widget, in ms. */
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null }
  readonly memoryMB: { readonly rss: number; readonly heapUsed: number; readonly peakRss: number }
  /**
   * Share of the run the event loop was busy (0 to 1). Everything (homeserver, ports, engines,
   * widgets) shares this one loop: near 1, latencies measure the queue, not the engine.
   */
  readonly eventLoopUtilization: number
  readonly errors: { readonly total: number; readonly byKind: Readonly<Record<string, number>>; readonly samples: ReadonlyArray<string> }
}

/** The simulation could not get going (or was broken by its own environment); not a usage error. */
export class SimulationError extends Error {
  override readonly name = "SimulationError"
}

// ---- validation and flags -----------------------------------------------------------------------

const isInteger = (n: number) => Number.isSafeInteger(n)

/**
 * Checks options for sense and size; every problem is a {@link UsageError} naming the flag.
 *
 * @example checkOptions({ ...defaultSimulateOptions, accounts: 0 }) // throws UsageError("--accounts must be …")
 */
export const checkOptions = (o: SimulateOptions): void => {
  const need = (ok: boolean, message: string) => {
    if (!ok) throw new UsageError(message)
  }
  need(isInteger(o.accounts) && o.accounts >= 1 && o.accounts <= LIMITS.accounts, `--accounts must be an integer from 1 to ${LIMITS.accounts}`)
  need(isInteger(o.widgets) && o.widgets >= 1 && o.widgets <= LIMITS.widgets, `--widgets must be an integer from 1 to ${LIMITS.widgets}`)
  need(o.accounts * o.widgets <= LIMITS.totalWidgets, `--accounts × --widgets must be at most ${LIMITS.totalWidgets}`)
  need(Number.isFinite(o.rate) && o.rate > 0 && o.rate <= LIMITS.rate, `--rate must be a number above 0 and at most ${LIMITS.rate}`)
  if ("events" in o.until) need(isInteger(o.until.events) && o.until.events >= 1 && o.until.events <= LIMITS.events, `--events must be an integer from 1 to ${LIMITS.events}`)
  else {
    const s = o.until.durationSeconds
    need(Number.isFinite(s) && s > 0 && s <= LIMITS.durationSeconds, `--duration must be a number of seconds above 0 and at most ${LIMITS.durationSeconds}`)
    need(Math.floor(s * o.rate) >= 1, "--duration × --rate must allow at least one message")
  }
  // Every delivery is tracked (a byte per widget and message, a latency sample each): bounded.
  const messages = "events" in o.until ? o.until.events : Math.floor(o.until.durationSeconds * o.rate)
  need(messages * o.accounts * o.widgets <= LIMITS.deliveries, `the run would track ${messages * o.accounts * o.widgets} deliveries (messages × widgets), more than ${LIMITS.deliveries}: lower --events, --duration, --rate or the widgets`)
  need(isInteger(o.stateEvery) && o.stateEvery >= 0, "--state-every must be a non-negative integer (0: no state changes)")
  need(isInteger(o.toDeviceEvery) && o.toDeviceEvery >= 0, "--to-device-every must be a non-negative integer (0: no to-device messages)")
  need(Number.isFinite(o.turnWatchers) && o.turnWatchers >= 0 && o.turnWatchers <= 1, "--turn-watchers must be a fraction from 0 to 1")
  need(isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff, "--seed must be an integer from 0 to 4294967295")
}

export const simulateUsage = `usage: widgethost simulate [options]

A headless simulation on an in-memory embedded homeserver: N accounts, M scripted websocket
widgets each, in one public room; prints a report on stdout. Exit code 0 when every message
reached every widget without errors, 1 when errors were counted, 2 on bad options. Limits:
100 accounts, 1000 widgets per account, 5000 in all, 10 million deliveries (messages × widgets).

options:
  --accounts N          accounts (default 2)
  --widgets M           widgets per account (default 5)
  --rate R              messages per second, over all widgets (default 20)
  --duration SECONDS    send for this long (default 10)
  --events COUNT        or send this many messages
  --state-every K       a state change after every K-th message (default 10; 0: none)
  --to-device-every K   a to-device message to another account after every K-th message (default 10; 0: none)
  --turn-watchers F     fraction of the widgets watching TURN servers (default 0.2)
  --encrypted           the room is encrypted (and so are the to-device messages)
  --seed S              seed of the workload (default 1): same seed, same plan
  --json                the report as one JSON object
  --help                this help
`

const INT = /^\d+$/
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/

const intFlag = (flags: Record<string, string | true>, name: string, fallback: number): number => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  if (typeof raw !== "string" || !INT.test(raw)) throw new UsageError(`--${name} must be a non-negative integer, not ${String(raw)}`)
  return Number(raw)
}

const numberFlag = (flags: Record<string, string | true>, name: string, fallback: number): number => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  if (typeof raw !== "string" || !DECIMAL.test(raw)) throw new UsageError(`--${name} must be a non-negative number, not ${String(raw)}`)
  return Number(raw)
}

/**
 * Turns the command line into options (validated), or `"help"`.
 *
 * @example parseSimulateArgs(["--accounts", "3", "--events", "100", "--json"]) // { options: {...}, json: true }
 */
export const parseSimulateArgs = (args: ReadonlyArray<string>): { readonly options: SimulateOptions; readonly json: boolean } | "help" => {
  const flags = parseFlags(args, {
    accounts: "value",
    widgets: "value",
    rate: "value",
    duration: "value",
    events: "value",
    "state-every": "value",
    "to-device-every": "value",
    "turn-watchers": "value",
    encrypted: "switch",
    seed: "value",
    json: "switch",
    help: "switch"
  })
  if (flags.help === true) return "help"
  if (flags.duration !== undefined && flags.events !== undefined) throw new UsageError("--duration and --events cannot be combined")
  const d = defaultSimulateOptions
  const options: SimulateOptions = {
    accounts: intFlag(flags, "accounts", d.accounts),
    widgets: intFlag(flags, "widgets", d.widgets),
    rate: numberFlag(flags, "rate", d.rate),
    until: flags.events !== undefined ? { events: intFlag(flags, "events", 0) } : { durationSeconds: numberFlag(flags, "duration", 10) },
    stateEvery: intFlag(flags, "state-every", d.stateEvery),
    toDeviceEvery: intFlag(flags, "to-device-every", d.toDeviceEvery),
    turnWatchers: numberFlag(flags, "turn-watchers", d.turnWatchers),
    encrypted: flags.encrypted === true,
    seed: intFlag(flags, "seed", d.seed)
  }
  checkOptions(options)
  return { options, json: flags.json === true }
}

// ---- the plan -----------------------------------------------------------------------------------

/** mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface PlannedMessage {
  /** 1-based; carried in `content.body` as `sim <seq>`. */
  readonly seq: number
  /** Due this many ms after the workload starts. */
  readonly atMs: number
  /** Index of the sending widget (account-major: account × widgets + widget). */
  readonly sender: number
  /** The sender also changes its state event right after. */
  readonly state: boolean
  /** The sender also sends a to-device message to this account (its `seq` among to-device messages). */
  readonly toDevice: { readonly account: number; readonly seq: number } | undefined
}

export interface Plan {
  /** Widget indices watching TURN, ascending. */
  readonly turnWatchers: ReadonlyArray<number>
  readonly messages: ReadonlyArray<PlannedMessage>
  readonly toDeviceCount: number
}

/**
 * The whole workload as data, from the options and the seed alone.
 *
 * @example planWorkload({ ...defaultSimulateOptions, until: { events: 3 } }).messages.map((m) => m.sender)
 */
export const planWorkload = (o: SimulateOptions): Plan => {
  const random = mulberry32(o.seed)
  const total = o.accounts * o.widgets
  const order = Array.from({ length: total }, (_, i) => i)
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const turnWatchers = order.slice(0, Math.round(o.turnWatchers * total)).sort((a, b) => a - b)
  const count = "events" in o.until ? o.until.events : Math.max(1, Math.floor(o.until.durationSeconds * o.rate))
  const messages: Array<PlannedMessage> = []
  let toDeviceCount = 0
  for (let seq = 1; seq <= count; seq++) {
    const sender = Math.floor(random() * total)
    const state = o.stateEvery > 0 && seq % o.stateEvery === 0
    let toDevice: PlannedMessage["toDevice"]
    if (o.toDeviceEvery > 0 && seq % o.toDeviceEvery === 0 && o.accounts > 1) {
      const own = Math.floor(sender / o.widgets)
      const other = Math.floor(random() * (o.accounts - 1))
      toDevice = { account: other >= own ? other + 1 : other, seq: ++toDeviceCount }
    }
    messages.push({ seq, atMs: ((seq - 1) * 1000) / o.rate, sender, state, toDevice })
  }
  return { turnWatchers, messages, toDeviceCount }
}

// ---- the run ------------------------------------------------------------------------------------

const EVENT_TYPE = "org.example.sim"
const BODY = /^sim (\d+)$/
const WIDGET_VERSIONS = ["0.0.1", "0.0.2", "org.matrix.msc2762", "org.matrix.msc2871", "org.matrix.msc3819", "town.robin.msc3846"]
/** TURN credentials live 5 s, so watchers see refreshes (every 4 s) within a short run. */
const TURN_TTL_SECONDS = 5
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
class Tally {
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
  readonly latencies: Array<number> = []
  readonly errors = new Map<string, number>()
  readonly samples: Array<string> = []
  /** Send time of each message by seq (NaN: not sent). */
  readonly sentAt: Float64Array
  /** Per to-device seq: 0 not seen, 1 seen by its target account. */
  readonly toDeviceSeen: Uint8Array
  closing = false

  constructor(messages: number, toDevice: number) {
    this.sentAt = new Float64Array(messages + 1).fill(Number.NaN)
    this.toDeviceSeen = new Uint8Array(toDevice + 1)
  }

  error(kind: string, detail: string, count = 1): void {
    if (count <= 0) return
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + count)
    if (this.samples.length < MAX_SAMPLES) this.samples.push(`${kind}: ${detail}`)
  }
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v)

/** One scripted widget: a websocket client that negotiates, acknowledges and counts. */
class SimWidget {
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
    this.tally.sentAt[seq] = performance.now()
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
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ ...message, response }))
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
    const now = performance.now()
    this.tally.lastDelivery = now
    const sentAt = this.tally.sentAt[seq] ?? Number.NaN
    if (!Number.isNaN(sentAt)) this.tally.latencies.push(now - sentAt)
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

const withTimeout = async <A>(promise: Promise<A>, ms: number, what: () => string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SimulationError(`${what()} within ${ms} ms`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: Float64Array, p: number): number | null =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits
const mb = (bytes: number) => round(bytes / (1024 * 1024), 1)

/**
 * Runs one simulation and returns its report; everything it started is stopped before it returns.
 *
 * @example
 * const report = await simulate({ ...defaultSimulateOptions, widgets: 2, until: { events: 20 } })
 * report.deliveries === report.expectedDeliveries
 */
export const simulate = async (input: Partial<SimulateOptions> = {}): Promise<Report> => {
  const options: SimulateOptions = { ...defaultSimulateOptions, ...input }
  checkOptions(options)
  const plan = planWorkload(options)
  const totalWidgets = options.accounts * options.widgets
  const tally = new Tally(plan.messages.length, plan.toDeviceCount)
  const watchers = new Set(plan.turnWatchers)
  const started = performance.now()
  let phase: Progress["phase"] = "setup"
  let workloadStart = Number.NaN
  let peakRss = process.memoryUsage.rss()

  const progress = (): Progress => ({
    phase,
    widgetsReady: tally.widgetsReady,
    widgets: totalWidgets,
    sent: tally.messagesSent,
    planned: plan.messages.length,
    deliveries: tally.deliveries,
    expectedDeliveries: plan.messages.length * totalWidgets,
    elapsedMs: performance.now() - (Number.isNaN(workloadStart) ? started : workloadStart)
  })
  const ticker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
    options.onProgress?.(progress())
  }, 100)

  let homeserver: EmbeddedHomeserver | undefined
  const ports: Array<MatrixHomeserver> = []
  const engines: Array<Engine> = []
  let transport: WebsocketTransport | undefined
  const widgets: Array<SimWidget> = []
  let sendTimer: NodeJS.Timeout | undefined

  try {
    const setupTimeoutMs = options.setupTimeoutMs ?? 60_000
    homeserver = await startEmbeddedHomeserver({
      turn: { uris: ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"], sharedSecret: randomBytes(16).toString("hex"), ttlSeconds: TURN_TTL_SECONDS }
    })
    const hs = homeserver
    const sessions = await Promise.all(Array.from({ length: options.accounts }, (_, a) => hs.ensureUser(`sim${a}`, `sim-password-${a}`)))
    for (const session of sessions) {
      ports.push(
        await connectHomeserver({
          baseUrl: hs.baseUrl,
          auth: { accessToken: session.accessToken, deviceId: session.deviceId, userId: session.userId },
          sync: { timeoutMs: 10_000 },
          onError: (error) => {
            if (!tally.closing) tally.error("homeserver", error instanceof Error ? error.message : String(error))
          }
        })
      )
    }
    const [first, ...others] = ports
    if (first === undefined) throw new SimulationError("no account to create the room with")
    const { room_id: roomId } = await first.http.request<{ room_id: string }>({
      method: "POST",
      path: "/_matrix/client/v3/createRoom",
      body: {
        preset: "public_chat",
        name: "widgethost simulation",
        // Every account's widgets change state: the public preset would need power 50 for that.
        power_level_content_override: { state_default: 0 },
        initial_state: options.encrypted ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] : []
      }
    })
    for (const port of others) await port.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
    // Start syncing and let each port take in the room (membership, encryption) before any widget speaks.
    const firstSyncs = ports.map((port) => port.nextSync())
    for (const port of ports) {
      port.subscribe((update) => {
        if (update._tag === "RoomEvent" && !tally.closing) tally.eventsRouted++
      })
      port.start()
    }
    await withTimeout(Promise.all(firstSyncs), setupTimeoutMs, () => "the accounts did not finish their first sync")

    transport = await startWebsocketTransport({
      // Each widget acknowledges every message it is sent: the default flood limit (500 a
      // second) would cut a fast run short, and this run is about the engine, not the limiter.
      rateLimit: { messages: Math.max(500, Math.ceil(options.rate * 4) + 100), perMs: 1000 }
    })
    const ws = transport
    for (const [a, port] of ports.entries()) {
      const engine = createEngine({
        homeserver: port,
        policy: { rules: [{ capability: "*", decision: "approve" }] },
        onReport: (_session, widgetId, report) => {
          if (report._tag === "RequestTimedOut") tally.error("timeouts", `${widgetId}: ${report.action} ${report.requestId}`)
        }
      })
      engines.push(engine)
      for (let w = 0; w < options.widgets; w++) {
        const index = a * options.widgets + w
        const id = `sim-a${a}-w${w}`
        const parsed = parseWidgetDefinition({
          source: "config",
          id,
          roomId,
          content: { type: "m.custom", url: "https://widgethost.invalid/sim#ws=$matrix_websocket_uri", name: `simulated widget ${id}`, data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }
        })
        if (Result.isFailure(parsed)) throw new SimulationError(`widget definition ${id}: ${parsed.failure.detail}`)
        const widget: WidgetDefinition = parsed.success
        const registration = ws.register(id, (send) => engine.openSession({ widget, send, waitForIframeLoad: false }))
        widgets.push(new SimWidget(id, a, registration.uri, watchers.has(index), tally, options.encrypted, plan.messages.length, plan.toDeviceCount))
      }
    }
    await withTimeout(Promise.all(widgets.map((w) => w.ready)), setupTimeoutMs, () => `only ${tally.widgetsReady} of ${totalWidgets} widgets were ready`)
    /** The plan's indexes come from the same options: they name widgets and accounts that exist. */
    const widgetAt = (i: number): SimWidget => {
      const widget = widgets[i]
      if (widget === undefined) throw new SimulationError(`the plan names widget ${i} of ${widgets.length}`)
      return widget
    }
    const watched = await withTimeout(Promise.all(plan.turnWatchers.map((i) => widgetAt(i).watchTurn())), setupTimeoutMs, () => "the TURN watchers got no answer")
    if (watched.some((ok) => !ok)) throw new SimulationError("a TURN watch was refused")
    const setupSeconds = (performance.now() - started) / 1000

    // ---- workload: each message on its due time; late timers catch up at once.
    phase = "running"
    workloadStart = performance.now()
    const loopAtStart = performance.eventLoopUtilization()
    const t0 = workloadStart
    let lastSend = t0
    const userIds = ports.map((p) => p.userId)
    await new Promise<void>((resolve) => {
      let next = 0
      const fire = () => {
        sendTimer = undefined
        const now = performance.now() - t0
        while (next < plan.messages.length && plan.messages[next]!.atMs <= now && options.signal?.aborted !== true) {
          const m = plan.messages[next++]!
          const sender = widgetAt(m.sender)
          if (sender.sendMessage(m.seq)) tally.messagesSent++
          if (m.state && sender.sendState(m.seq)) tally.stateSent++
          if (m.toDevice !== undefined) {
            const target = userIds[m.toDevice.account]
            if (target === undefined) throw new SimulationError(`the plan names account ${m.toDevice.account} of ${userIds.length}`)
            if (sender.sendToDevice(target, m.toDevice.seq, m.toDevice.account)) tally.toDeviceSent++
          }
        }
        lastSend = performance.now()
        if (next >= plan.messages.length || options.signal?.aborted === true) return finish()
        sendTimer = setTimeout(fire, Math.max(0, plan.messages[next]!.atMs - (performance.now() - t0)))
      }
      const onAbort = () => {
        clearTimeout(sendTimer)
        finish()
      }
      const finish = () => {
        options.signal?.removeEventListener("abort", onAbort)
        resolve()
      }
      options.signal?.addEventListener("abort", onAbort)
      fire()
    })

    // ---- drain: wait for what is in flight, or give up after the drain timeout.
    phase = "draining"
    const sentMessages = tally.messagesSent
    const drainDeadline = performance.now() + (options.drainTimeoutMs ?? 15_000)
    const settled = () =>
      tally.deliveries >= sentMessages * totalWidgets &&
      tally.stateDeliveries >= tally.stateSent * totalWidgets &&
      tally.toDeviceDeliveries >= tally.toDeviceSent * options.widgets &&
      tally.pendingRequests === 0
    while (!settled() && performance.now() < drainDeadline) await sleep(10)
    const end = Math.max(lastSend, tally.lastDelivery)

    // ---- the verdict, measured before anything is torn down.
    // Expected: every message sent reaches every widget (one that could not be sent is already
    // counted as the transport close that kept it from being sent).
    const expectedDeliveries = tally.messagesSent * totalWidgets
    tally.error("undelivered", `${expectedDeliveries - tally.deliveries} of ${expectedDeliveries} message deliveries missing`, expectedDeliveries - tally.deliveries)
    const expectedState = tally.stateSent * totalWidgets
    tally.error("stateUndelivered", `${expectedState - tally.stateDeliveries} of ${expectedState} state deliveries missing`, expectedState - tally.stateDeliveries)
    tally.error("toDeviceUndelivered", `${tally.toDeviceSent - tally.toDeviceReceived} of ${tally.toDeviceSent} to-device messages never arrived`, tally.toDeviceSent - tally.toDeviceReceived)
    const unanswered = widgets.reduce((n, w) => n + w.unanswered(), 0)
    tally.error("unanswered", `${unanswered} widget requests never answered`, unanswered)
    const loop = performance.eventLoopUtilization(loopAtStart)
    const memory = process.memoryUsage()
    peakRss = Math.max(peakRss, memory.rss)
    const sorted = Float64Array.from(tally.latencies).sort()
    const durationSeconds = Math.max(1e-3, (end - t0) / 1000)
    const byKind = Object.fromEntries([...tally.errors.entries()].sort(([a], [b]) => a.localeCompare(b)))
    const maybe = (n: number | null) => (n === null ? null : round(n))
    return {
      accounts: options.accounts,
      widgetsPerAccount: options.widgets,
      widgets: totalWidgets,
      encrypted: options.encrypted,
      rate: options.rate,
      seed: options.seed,
      setupSeconds: round(setupSeconds),
      durationSeconds: round(durationSeconds),
      messagesPlanned: plan.messages.length,
      messagesSent: tally.messagesSent,
      stateChanges: { sent: tally.stateSent, deliveries: tally.stateDeliveries },
      toDevice: { sent: tally.toDeviceSent, received: tally.toDeviceReceived, deliveries: tally.toDeviceDeliveries },
      turn: { watchers: plan.turnWatchers.length, updates: tally.turnUpdates },
      eventsRouted: tally.eventsRouted,
      deliveries: tally.deliveries,
      expectedDeliveries,
      deliveriesPerSecond: round(tally.deliveries / durationSeconds, 1),
      latencyMs: { p50: maybe(percentile(sorted, 0.5)), p99: maybe(percentile(sorted, 0.99)), max: maybe(percentile(sorted, 1)) },
      memoryMB: { rss: mb(memory.rss), heapUsed: mb(memory.heapUsed), peakRss: mb(peakRss) },
      eventLoopUtilization: round(loop.utilization),
      errors: { total: [...tally.errors.values()].reduce((a, b) => a + b, 0), byKind, samples: tally.samples }
    }
  } finally {
    tally.closing = true
    clearInterval(ticker)
    clearTimeout(sendTimer)
    await shutdown(widgets, engines, transport, ports, homeserver)
  }
}

/** Stops everything in dependency order: engines, transport, widget sockets, ports, homeserver. */
const shutdown = async (
  widgets: ReadonlyArray<SimWidget>,
  engines: ReadonlyArray<Engine>,
  transport: WebsocketTransport | undefined,
  ports: ReadonlyArray<MatrixHomeserver>,
  homeserver: EmbeddedHomeserver | undefined
): Promise<void> => {
  const socketsClosed = widgets.map(
    (w) => new Promise<void>((resolve) => (w.ws.readyState === WebSocket.CLOSED ? resolve() : w.ws.once("close", () => resolve())))
  )
  for (const engine of engines) engine.stop()
  await transport?.close()
  for (const w of widgets) if (w.ws.readyState !== WebSocket.CLOSED) w.ws.terminate()
  await Promise.all(socketsClosed)
  await Promise.all(ports.map((port) => port.stop().catch(() => undefined)))
  await homeserver?.close()
}

// ---- the command --------------------------------------------------------------------------------

/**
 * The report as a readable table.
 *
 * @example process.stdout.write(formatReport(await simulate()))
 */
export const formatReport = (r: Report): string => {
  const ms = (n: number | null) => (n === null ? "-" : n.toFixed(2))
  const rows: Array<[string, string]> = [
    ["accounts × widgets", `${r.accounts} × ${r.widgetsPerAccount} = ${r.widgets}`],
    ["room", r.encrypted ? "encrypted" : "clear"],
    ["rate, seed", `${r.rate} msg/s, seed ${r.seed}`],
    ["setup", `${r.setupSeconds.toFixed(2)} s`],
    ["duration", `${r.durationSeconds.toFixed(2)} s`],
    ["messages sent", `${r.messagesSent} of ${r.messagesPlanned}`],
    ["state changes", `${r.stateChanges.sent} (${r.stateChanges.deliveries} deliveries)`],
    ["to-device sent / received", `${r.toDevice.sent} / ${r.toDevice.received} (${r.toDevice.deliveries} deliveries)`],
    ["TURN watchers / updates", `${r.turn.watchers} / ${r.turn.updates}`],
    ["events routed", String(r.eventsRouted)],
    ["deliveries", `${r.deliveries} of ${r.expectedDeliveries}`],
    ["deliveries per second", r.deliveriesPerSecond.toFixed(1)],
    ["latency p50 / p99 / max", `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)} / ${ms(r.latencyMs.max)} ms`],
    ["memory rss / heapUsed", `${r.memoryMB.rss} / ${r.memoryMB.heapUsed} MB (peak rss ${r.memoryMB.peakRss} MB)`],
    ["event loop busy", `${Math.round(r.eventLoopUtilization * 100)} %`],
    ["errors", String(r.errors.total)],
    ...Object.entries(r.errors.byKind).map(([kind, n]): [string, string] => [`  ${kind}`, String(n)])
  ]
  const width = Math.max(...rows.map(([label]) => label.length))
  const samples = r.errors.samples.map((s) => `  ! ${s}\n`).join("")
  return `widgethost simulate\n${rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}\n`).join("")}${samples}`
}

/** A one-line progress bar on a terminal, redrawn at most ten times a second. */
const progressBar = (stream: NodeJS.WriteStream) => {
  let last = 0
  const line = (p: Progress) => {
    const seconds = (p.elapsedMs / 1000).toFixed(1)
    if (p.phase === "setup") return `setting up: ${p.widgetsReady}/${p.widgets} widgets ready (${seconds} s)`
    const fraction = p.planned === 0 ? 1 : p.sent / p.planned
    const width = 24
    const filled = Math.round(fraction * width)
    const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
    const tail = `${p.sent}/${p.planned} sent, ${p.deliveries}/${p.expectedDeliveries} delivered, ${seconds} s`
    return p.phase === "running" ? `${bar} ${Math.floor(fraction * 100)}% ${tail}` : `draining: ${tail}`
  }
  return {
    update: (p: Progress) => {
      const now = performance.now()
      if (now - last < 100) return
      last = now
      const text = line(p)
      const columns = stream.columns > 0 ? stream.columns : 80
      stream.write(`\r${text.slice(0, Math.max(20, columns - 1))}\x1b[K`)
    },
    done: () => void stream.write("\r\x1b[K")
  }
}

/**
 * `widgethost simulate …`: parses the flags (a {@link UsageError} on bad ones), runs, prints the
 * report on stdout (JSON with `--json`) and sets exit code 1 when errors were counted.
 *
 * @example await runSimulate(["--accounts", "2", "--widgets", "2", "--events", "20", "--json"])
 */
export const runSimulate = async (args: ReadonlyArray<string>): Promise<Report | undefined> => {
  const parsed = parseSimulateArgs(args)
  if (parsed === "help") {
    process.stdout.write(simulateUsage)
    return undefined
  }
  const bar = process.stderr.isTTY ? progressBar(process.stderr) : undefined
  const abort = new AbortController()
  // First Ctrl-C: stop sending, drain, report. A second one is Node's default (exit at once).
  const onSigint = () => {
    process.off("SIGINT", onSigint)
    abort.abort()
  }
  process.on("SIGINT", onSigint)
  let report: Report
  try {
    report = await simulate({ ...parsed.options, signal: abort.signal, ...(bar === undefined ? {} : { onProgress: bar.update }) })
  } catch (error) {
    if (error instanceof UsageError) throw error
    // Setup failures (a port that cannot sign in, widgets that never get ready): one line, exit 1.
    bar?.done()
    process.stderr.write(`widgethost: simulation failed: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
    return undefined
  } finally {
    process.off("SIGINT", onSigint)
  }
  bar?.done()
  process.stdout.write(parsed.json ? `${JSON.stringify(report)}\n` : formatReport(report))
  if (report.errors.total > 0) process.exitCode = 1
  return report
}
