/**
 * One widget of a scenario, written on the widget-side kit (@widgethost/widget-client) over a
 * real websocket: chatty (sends messages at a rate), reader (reads history with read_events),
 * call (TURN watch and to-device to a peer account) or misbehaving (junk requests, then a flood).
 * It records what it received, each message by its body, so the run can check exactly-once.
 */
import { WebSocket } from "ws"
import type { WidgetMessage } from "@widgethost/core"
import { WidgetClient, websocketTransport, type WebSocketConstructor, type WidgetTransport } from "@widgethost/widget-client"
import type { ScenarioWidget } from "./scenario-file.ts"
import { sharedNow } from "./shared-clock.ts"

export const CALL_TYPE = "org.example.call"

/**
 * Shared by all widgets of a run (or of one worker's share of it): what was sent, when, and what
 * went wrong. Times are on the shared clock (shared-clock.ts), so ledgers of workers merge.
 */
export interface ScenarioLedger {
  /** Room messages by body: the room, when the send started, and whether it was confirmed. */
  readonly messages: Map<string, { readonly room: string; readonly startedAt: number; confirmed: boolean; settled: boolean }>
  /** To-device messages by `sender seq`: the target account, and whether the send was confirmed (settled: answered either way). */
  readonly toDevice: Map<string, { readonly account: string; confirmed: boolean; settled: boolean }>
  readonly error: (kind: string, detail: string) => void
}

/** A ledger that counts errors by kind and keeps the first few, until the run closes. */
export const countingLedger = () => {
  const errors = new Map<string, number>()
  const samples: Array<string> = []
  const state = { closing: false }
  const ledger: ScenarioLedger = {
    messages: new Map(),
    toDevice: new Map(),
    error: (kind, detail) => {
      if (state.closing) return
      errors.set(kind, (errors.get(kind) ?? 0) + 1)
      if (samples.length < 10) samples.push(`${kind}: ${detail}`)
    }
  }
  return { ledger, errors, samples, close: () => void (state.closing = true) }
}

const capabilitiesFor = (w: ScenarioWidget): ReadonlyArray<string> => {
  const receive = ["m.receive.event:m.room.message"]
  switch (w.behaviour) {
    case "chatty":
      return [...receive, "m.send.event:m.room.message"]
    case "reader":
      return receive
    case "call":
      return [...receive, "m.turn_servers", `m.send.to_device:${CALL_TYPE}`, `m.receive.to_device:${CALL_TYPE}`]
    case "misbehaving":
      return receive
  }
}

/** What a widget did and received, as plain data: the run's verdict reads it, and a worker posts it. */
export interface WidgetOutcome {
  readonly spec: ScenarioWidget
  readonly readyAt: number
  readonly stopAt: number
  readonly sent: number
  readonly received: ReadonlyMap<string, number>
  readonly firstAt: ReadonlyMap<string, number>
  readonly toDeviceReceived: ReadonlyMap<string, number>
  readonly turnUpdates: number
  readonly pages: number
  readonly junkSent: number
  readonly junkAnswered: number
  readonly rateLimited: number
  readonly recoveredAfterFlood: boolean
  readonly reconnects: number
}

export class ScenarioWidgetRunner implements WidgetOutcome {
  /** Body → how many times it arrived, and when it first did (shared clock). */
  readonly received = new Map<string, number>()
  readonly firstAt = new Map<string, number>()
  readonly toDeviceReceived = new Map<string, number>()
  readyAt = Number.NaN
  stopAt = Number.POSITIVE_INFINITY
  sent = 0
  turnUpdates = 0
  pages = 0
  junkSent = 0
  junkAnswered = 0
  rateLimited = 0
  recoveredAfterFlood = false
  reconnects = 0
  private client: WidgetClient | undefined
  private transport: WidgetTransport | undefined
  private timer: NodeJS.Timeout | undefined
  private reconnecting = false
  private seq = 0
  private socket: WebSocket | undefined

  constructor(
    readonly spec: ScenarioWidget,
    private readonly uri: string,
    private readonly ledger: ScenarioLedger,
    private readonly encrypted: boolean,
    private readonly peerUserId: string | undefined
  ) {}

  /**
   * Connects to the widget's URI. The first time it makes the widget's client; after a drop it
   * carries that client over (`resume`), so requests the host delivers again are deduped by the
   * client and each event is handled once.
   */
  private async connect(): Promise<WidgetClient> {
    // The kit's transport hides its socket; this subclass keeps it, so a drop can be a real one.
    const keep = (socket: WebSocket) => void (this.socket = socket)
    class KeptSocket extends WebSocket {
      constructor(url: string) {
        super(url)
        keep(this)
      }
    }
    this.transport = await websocketTransport(this.uri, { WebSocket: KeptSocket as unknown as WebSocketConstructor })
    if (this.client !== undefined) {
      this.client.resume(this.transport)
      return this.client
    }
    const client = new WidgetClient({ transport: this.transport, widgetId: this.spec.name, capabilities: capabilitiesFor(this.spec) })
    client.on("send_event", (event) => {
      const body = (event.content as { body?: unknown } | undefined)?.body
      if (typeof body !== "string") return
      const n = (this.received.get(body) ?? 0) + 1
      this.received.set(body, n)
      // Latency is taken later against the ledger: the sender may live in another worker.
      if (n === 1) this.firstAt.set(body, sharedNow())
    })
    client.on("send_to_device", (data) => {
      const key = (data.content as { key?: unknown } | undefined)?.key
      if (typeof key === "string") this.toDeviceReceived.set(key, (this.toDeviceReceived.get(key) ?? 0) + 1)
    })
    client.on("update_turn_servers", () => void this.turnUpdates++)
    this.client = client
    return client
  }

  /** Connects, negotiates and starts the behaviour. */
  async start(): Promise<void> {
    const client = await this.connect()
    await client.contentLoaded()
    await client.ready
    this.readyAt = sharedNow()
    if (this.spec.behaviour === "call") await client.watchTurnServers()
    this.schedule()
  }

  private schedule(): void {
    const s = this.spec
    const everyMs = s.behaviour === "chatty" ? 1000 / s.rate : s.behaviour === "misbehaving" ? 200 : s.everySeconds * 1000
    if (s.behaviour === "misbehaving") {
      this.timer = setTimeout(() => void this.misbehave(), everyMs)
      return
    }
    this.timer = setInterval(() => {
      if (this.reconnecting || this.client === undefined) return
      if (s.behaviour === "chatty") this.chat(this.client)
      else if (s.behaviour === "reader") this.read(this.client, s.pageSize)
      else if (s.behaviour === "call") this.call(this.client)
    }, everyMs)
  }

  private chat(client: WidgetClient): void {
    const body = `sc ${this.spec.name} ${++this.seq}`
    const entry = { room: this.spec.room, startedAt: sharedNow(), confirmed: false, settled: false }
    this.ledger.messages.set(body, entry)
    this.sent++
    client.sendEvent("m.room.message", { msgtype: "m.text", body }).then(
      () => void (entry.confirmed = entry.settled = true),
      (e: Error) => {
        entry.settled = true
        this.ledger.error("sendFailed", `${this.spec.name}: ${e.message}`)
      }
    )
  }

  private read(client: WidgetClient, limit: number): void {
    client.readEvents("m.room.message", { limit }).then(
      ({ events }) => {
        this.pages++
        const ids = events.map((e) => e.event_id)
        if (new Set(ids).size !== ids.length) this.ledger.error("readDuplicates", `${this.spec.name}: a page repeated an event`)
        if (events.length > limit) this.ledger.error("readOverLimit", `${this.spec.name}: ${events.length} events for limit ${limit}`)
      },
      (e: Error) => this.ledger.error("readFailed", `${this.spec.name}: ${e.message}`)
    )
  }

  private call(client: WidgetClient): void {
    if (this.peerUserId === undefined || this.spec.behaviour !== "call") return
    const key = `${this.spec.name} ${++this.seq}`
    const entry = { account: this.spec.peer, confirmed: false, settled: false }
    this.ledger.toDevice.set(key, entry)
    this.sent++
    client.sendToDevice(CALL_TYPE, { [this.peerUserId]: { "*": { key } } }, this.encrypted).then(
      () => void (entry.confirmed = entry.settled = true),
      (e: Error) => {
        entry.settled = true
        this.ledger.error("toDeviceFailed", `${this.spec.name}: ${e.message}`)
      }
    )
  }

  /** Junk the engine must answer with spec-shaped errors, then a flood the transport must cut. */
  private async misbehave(): Promise<void> {
    if (this.spec.behaviour !== "misbehaving" || this.transport === undefined) return
    const transport = this.transport
    const junk = [
      (id: string) => ({ api: "fromWidget", widgetId: this.spec.name, requestId: id, action: "org.example.no_such_action", data: {} }),
      (id: string) => ({ api: "fromWidget", widgetId: this.spec.name, requestId: id, action: "send_event", data: { type: "m.room.message" } }),
      (id: string) => ({ api: "fromWidget", widgetId: this.spec.name, requestId: id, action: "send_event", data: { type: "m.room.topic", state_key: "", content: { topic: "not allowed" } } }),
      (id: string) => ({ api: "fromWidget", widgetId: this.spec.name, requestId: id, action: "read_events", data: { type: "m.room.message", limit: "many" } })
    ]
    // Junk is off-shape on purpose; the kit's transport types only well-formed envelopes.
    const sendRaw = (message: Record<string, unknown>) => transport.send(message as unknown as WidgetMessage)
    const waiting = new Set<string>()
    const answered = new Promise<void>((resolve) => {
      transport.onMessage((message) => {
        const m = message as { api?: unknown; requestId?: unknown; response?: { error?: { message?: unknown } } }
        if (m.api !== "fromWidget" || typeof m.requestId !== "string" || !waiting.delete(m.requestId)) return
        if (typeof m.response?.error?.message === "string") this.junkAnswered++
        else this.ledger.error("junkAccepted", `${this.spec.name}: ${JSON.stringify(m.response)}`)
        if (waiting.size === 0) resolve()
      })
    })
    for (let i = 0; i < this.spec.junk; i++) {
      const id = `junk-${i}`
      waiting.add(id)
      this.junkSent++
      sendRaw(junk[i % junk.length]!(id))
    }
    await Promise.race([answered, new Promise((r) => setTimeout(r, 5000))])
    const closed = new Promise<string>((resolve) => transport.onClose(resolve))
    for (let i = 0; i < this.spec.flood; i++) sendRaw({ api: "fromWidget", widgetId: this.spec.name, requestId: `flood-${i}`, action: "supported_api_versions", data: {} })
    const why = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r("not closed"), 5000))])
    if (why.includes("4429")) this.rateLimited++
    else this.ledger.error("floodNotLimited", `${this.spec.name}: ${why}`)
    // Misbehaving must not be fatal for the service: the widget comes back and is answered.
    try {
      const client = await this.connect()
      await client.request("supported_api_versions")
      this.recoveredAfterFlood = true
    } catch (e) {
      this.ledger.error("floodNoRecovery", `${this.spec.name}: ${(e as Error).message}`)
    }
  }

  /** Drops the websocket (as a network would) and connects again to the same URI: the transport resumes the session. */
  async reconnect(): Promise<void> {
    if (this.reconnecting || this.client === undefined) return
    this.reconnecting = true
    this.reconnects++
    // A dropped link (1006, no close frame), not a widget that is done (1000 ends the session).
    this.socket?.terminate()
    try {
      // The host may not have seen the old link end yet (it refuses a second link meanwhile):
      // retry like a real widget would, for up to about 5 s.
      for (let attempt = 1; ; attempt++) {
        try {
          await this.connect()
          break
        } catch (e) {
          if (attempt >= 50) throw e
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
    } catch (e) {
      this.ledger.error("reconnectFailed", `${this.spec.name}: ${(e as Error).message}`)
    } finally {
      this.reconnecting = false
    }
  }

  stop(): void {
    this.stopAt = Math.min(this.stopAt, sharedNow())
    clearTimeout(this.timer)
    clearInterval(this.timer)
  }

  close(): void {
    this.stop()
    this.client?.close()
  }

  /** A copy of what this widget did, safe to post to another thread. */
  outcome(): WidgetOutcome {
    const { spec, readyAt, stopAt, sent, received, firstAt, toDeviceReceived, turnUpdates, pages, junkSent, junkAnswered, rateLimited, recoveredAfterFlood, reconnects } = this
    return { spec, readyAt, stopAt, sent, received, firstAt, toDeviceReceived, turnUpdates, pages, junkSent, junkAnswered, rateLimited, recoveredAfterFlood, reconnects }
  }
}
