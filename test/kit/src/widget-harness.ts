/**
 * Runs one widget session end to end in memory: the real engine (router + session charts) on a
 * simulated clock, an in-memory homeserver, and a scripted widget on an in-memory transport that
 * structured-clones every message, as postMessage does.
 */
import { type ApprovalPolicy, type Clock, type Limits, type WidgetDefinition, type WidgetMessage, isResponse } from "@widgethost/core"
import { type Approver, createEngine, createLeanEngine, type Engine, type EngineOptions, type EngineSession, type OpenIdApprover, type OpenSessionOptions } from "@widgethost/engine"
import { SimulatedClock } from "xstate"
import { type InMemoryHomeserver, makeInMemoryHomeserver } from "./in-memory-homeserver.ts"
import { fromEffectPort } from "@widgethost/core/effect"

export const ROOM = "!room:localhost"

export const widgetDefinition = (overrides: Partial<WidgetDefinition> = {}): WidgetDefinition => ({
  id: "w1",
  kind: "room",
  roomId: ROOM,
  type: "m.custom",
  url: "https://widget.example/index.html",
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"],
  ...overrides
})

export interface HarnessOptions {
  readonly widget?: Partial<WidgetDefinition>
  readonly approver?: Approver
  readonly openIdApprover?: OpenIdApprover
  /** The widget's origin, as the transport would tell the engine. */
  readonly origin?: string
  readonly policy?: ApprovalPolicy
  readonly limits?: Partial<Limits>
  readonly onError?: EngineOptions["onError"]
  readonly onReport?: EngineOptions["onReport"]
  readonly homeserver?: InMemoryHomeserver
  readonly engine?: Engine
  readonly clock?: SimulatedClock
  /** The client side: hooks, custom actions, extra versions. */
  readonly hooks?: EngineOptions["hooks"]
  readonly customActions?: EngineOptions["customActions"]
  readonly apiVersions?: EngineOptions["apiVersions"]
  readonly ungatedRequests?: EngineOptions["ungatedRequests"]
  /**
   * Given: the engine is `createLeanEngine` with exactly these optional features (`[]`: the core
   * proposals only). Absent: `createEngine`, every feature.
   */
  readonly features?: EngineOptions["features"]
  /** The transport the session is told it speaks over (MSC4039 files: base64 over `m.websockets`). */
  readonly transport?: OpenSessionOptions["transport"]
}

/** Lets promise-based edges (homeserver effects, approvers) settle. */
export const flush = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

export const simulatedClock = (clock: SimulatedClock): Clock => ({
  setTimeout: (fn: (...args: unknown[]) => void, ms: number) => clock.setTimeout(fn, ms),
  clearTimeout: (id: unknown) => clock.clearTimeout(id as number),
  now: () => clock.now()
})

export class Harness {
  readonly clock: SimulatedClock
  readonly homeserver: InMemoryHomeserver
  readonly engine: Engine
  readonly session: EngineSession
  /** Everything the engine sent to the widget, in order. */
  readonly received: WidgetMessage[] = []
  readonly widgetId: string
  private nextId = 0
  closedWith: string | undefined

  constructor(options: HarnessOptions = {}) {
    this.clock = options.clock ?? new SimulatedClock()
    this.homeserver = options.homeserver ?? makeInMemoryHomeserver()
    this.engine =
      options.engine ??
      (options.features === undefined ? createEngine : createLeanEngine)({
        homeserver: fromEffectPort(this.homeserver),
        clock: simulatedClock(this.clock),
        ...(options.approver === undefined ? {} : { approver: options.approver }),
        ...(options.openIdApprover === undefined ? {} : { openIdApprover: options.openIdApprover }),
        ...(options.policy === undefined ? {} : { policy: options.policy }),
        ...(options.limits === undefined ? {} : { limits: options.limits }),
        ...(options.onError === undefined ? {} : { onError: options.onError }),
        ...(options.onReport === undefined ? {} : { onReport: options.onReport }),
        ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
        ...(options.customActions === undefined ? {} : { customActions: options.customActions }),
        ...(options.apiVersions === undefined ? {} : { apiVersions: options.apiVersions }),
        ...(options.ungatedRequests === undefined ? {} : { ungatedRequests: options.ungatedRequests }),
        ...(options.features === undefined ? {} : { features: options.features })
      })
    const widget = widgetDefinition(options.widget)
    this.widgetId = widget.id
    this.session = this.engine.openSession({
      widget,
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      ...(options.transport === undefined ? {} : { transport: options.transport }),
      send: (message) => this.received.push(structuredClone(message))
    })
    this.session.onClose((reason) => (this.closedWith = reason))
  }

  /** Sends a fromWidget request; returns its request id. */
  request(action: string, data: Record<string, unknown> = {}, requestId = `r${this.nextId++}`): string {
    this.session.receive(structuredClone({ api: "fromWidget", widgetId: this.widgetId, requestId, action, data }))
    return requestId
  }

  /** Drains and returns what the widget received since the last take. */
  take(): WidgetMessage[] {
    this.engine.flush()
    return this.received.splice(0, this.received.length)
  }

  /** The toWidget requests (not responses) among messages. */
  static requests(messages: ReadonlyArray<WidgetMessage>) {
    return messages.filter((m) => m.api === "toWidget" && !isResponse(m))
  }

  /** The response to one of our fromWidget requests. */
  responseTo(requestId: string, messages?: ReadonlyArray<WidgetMessage>): unknown {
    this.engine.flush()
    messages ??= this.received
    const found = messages.find((m) => m.api === "fromWidget" && m.requestId === requestId && isResponse(m))
    return found === undefined ? undefined : (found as { response: unknown }).response
  }

  /** Answers a toWidget request the way a widget does: the request echoed with `response`. */
  respond(request: WidgetMessage, response: unknown): void {
    this.session.receive(structuredClone({ ...request, response }))
  }

  /** Acknowledges every toWidget request received so far with `{}` (capabilities with `caps`). */
  ackAll(capabilities: ReadonlyArray<string> = [], versions: ReadonlyArray<string> = ["0.0.2", "org.matrix.msc2762_update_state"]): WidgetMessage[] {
    const messages = this.take()
    for (const request of Harness.requests(messages)) {
      if (request.action === "capabilities") this.respond(request, { capabilities })
      else if (request.action === "supported_api_versions") this.respond(request, { supported_versions: versions })
      else this.respond(request, {})
    }
    return messages
  }

  /** Loads the frame and negotiates `capabilities`; the approver (or policy) decides. */
  async ready(capabilities: ReadonlyArray<string>, versions?: ReadonlyArray<string>): Promise<WidgetMessage[]> {
    this.session.frameLoaded()
    const seen = this.ackAll(capabilities, versions)
    await flush()
    seen.push(...this.ackAll(capabilities, versions))
    await flush()
    return seen
  }

  /**
   * Advances simulated time in small steps: xstate's SimulatedClock stamps a timer set during a
   * jump with the jump's end, so one big jump would stretch chains of timers.
   */
  async advance(ms: number, step = 50): Promise<void> {
    for (let left = ms; left > 0; left -= step) {
      this.clock.increment(Math.min(step, left))
      await flush(1)
    }
    await flush()
  }

  get phase() {
    return this.session.info().phase
  }
}

/** An approver that approves everything it is asked. */
export const approveAll: Approver = async ({ requested }) => requested
