/**
 * One widget and its host in Node, over fake windows (test/bench/fake-window.ts: structured
 * clone, a task per message, origins as a browser checks them): matrix-widget-api's real
 * `WidgetApi` in the widget's window, and on the host side either the reference
 * `ClientWidgetApi` or the drop-in, with the same {@link RecordingDriver}. Everything the widget
 * window receives is recorded, so replies can be counted per request.
 */
import events from "node:events"
import { ClientWidgetApi as DropInClientWidgetApi } from "@widgethost/client-widget-api"
import type { Clock } from "@widgethost/core"
import { ClientWidgetApi as ReferenceClientWidgetApi, type IWidgetApiRequest, Widget, WidgetApi } from "matrix-widget-api"
import { asGlobalWindow, FakeFrame, FakeWindow } from "../../bench/fake-window.ts"
import { RecordingDriver, type DriverScript } from "./recording-driver.ts"

export const HOST_ORIGIN = "https://client.example.org"
export const WIDGET_ORIGIN = "https://widget.example.org"
export const WIDGET_ID = "w"
export const VIEWED_ROOM = "!viewed:example.org"

export type HostKind = "reference" | "drop-in"
export const HOSTS: ReadonlyArray<HostKind> = ["reference", "drop-in"]

/** The two hosts' common shape, as the tests use it. */
export type HostApi = ReferenceClientWidgetApi | DropInClientWidgetApi

/** What the widget got back for one request: the response data, an error, or nothing (yet). */
export type Answer = { readonly response: unknown } | { readonly error: Readonly<Record<string, unknown>> } | "no answer"

export interface PairOptions {
  readonly capabilities?: ReadonlyArray<string>
  readonly driver?: DriverScript
  /** The drop-in engine's clock (a `ManualClock` to drive its timers by hand); the reference has none. */
  readonly clock?: Clock
  /** A driver of the test's own (a subclass with another signature); overrides `driver`. */
  readonly driverInstance?: RecordingDriver
  readonly waitForIframeLoad?: boolean
  /** The room the client says the user views (`setViewedRoomId`); null: none. */
  readonly viewedRoom?: string | null
  /** Widget-side: toWidget actions the widget answers itself with `{}` (preventDefault + reply). */
  readonly handles?: ReadonlyArray<string>
}

/** Node 20 lacks `Promise.withResolvers`, which matrix-widget-api 1.19 calls. Tests only. */
export const polyfillForWidgetApi = (): void => {
  events.defaultMaxListeners = Number.POSITIVE_INFINITY
  const P = Promise as unknown as { withResolvers?: () => unknown }
  P.withResolvers ??= () => {
    let resolve: unknown, reject: unknown
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    return { promise, resolve, reject }
  }
}

/** Lets every queued message, task and promise run for a few rounds of the event loop. */
export const settle = async (rounds = 6): Promise<void> => {
  for (let round = 0; round < rounds; round++) await new Promise((resolve) => setImmediate(resolve))
}

export class WidgetPair {
  readonly hostWindow = new FakeWindow(HOST_ORIGIN)
  readonly widgetWindow = new FakeWindow(WIDGET_ORIGIN, this.hostWindow)
  readonly frame = new FakeFrame(this.widgetWindow)
  readonly driver: RecordingDriver
  readonly host: HostApi
  readonly widget: WidgetApi
  /** Every message the widget's window received, in order. */
  readonly inbox: Array<Record<string, unknown>> = []
  /** Host events, in order (`ready`, `preparing`, `capabilitiesNotified`, `error:preparing`). */
  readonly hostEvents: string[] = []
  private readonly parent = this.widgetWindow.parentProxy()

  constructor(
    readonly kind: HostKind,
    readonly options: PairOptions = {}
  ) {
    this.driver = options.driverInstance ?? new RecordingDriver(options.driver)
    this.widgetWindow.addEventListener("message", (event) => this.inbox.push(event.data as Record<string, unknown>))
    const widget = new Widget({ id: WIDGET_ID, creatorUserId: "@alice:example.org", type: "m.custom", url: `${WIDGET_ORIGIN}/index.html`, waitForIframeLoad: options.waitForIframeLoad ?? true })
    const frame = this.frame as unknown as HTMLIFrameElement
    this.host =
      kind === "reference"
        ? asGlobalWindow(this.hostWindow, undefined, () => new ReferenceClientWidgetApi(widget, frame, this.driver))
        : new DropInClientWidgetApi(widget, frame, this.driver, { window: this.hostWindow as unknown as Window, ...(options.clock === undefined ? {} : { clock: options.clock }) })
    for (const name of ["ready", "preparing", "capabilitiesNotified", "error:preparing"]) this.host.on(name, () => this.hostEvents.push(name))
    if (options.viewedRoom !== null) this.host.setViewedRoomId(options.viewedRoom ?? VIEWED_ROOM)
    this.widget = asGlobalWindow(this.widgetWindow, this.parent, () => new WidgetApi(WIDGET_ID, HOST_ORIGIN))
    // WidgetApi's ids are `widgetapi-<Date.now()>`, reused once answered: unique ids let replies be counted per request.
    let nextId = 0
    Object.defineProperty(this.widget.transport, "nextRequestId", { get: () => `widget-${nextId++}` })
    this.widget.requestCapabilities([...(options.capabilities ?? [])])
    for (const action of ["send_event", "send_to_device", "update_state", "update_turn_servers", "openid_credentials", ...(options.handles ?? [])]) {
      this.widget.on(`action:${action}`, (event: CustomEvent<IWidgetApiRequest>) => {
        event.preventDefault()
        this.widget.transport.reply(event.detail, {})
      })
    }
    asGlobalWindow(this.widgetWindow, this.parent, () => this.widget.start())
  }

  /** Waits until no message has moved between the windows for a few rounds of the event loop. */
  async settle(): Promise<void> {
    let last = -1
    for (let quiet = 0; quiet < 4; ) {
      await settle(2)
      const now = this.hostWindow.dispatched + this.widgetWindow.dispatched
      quiet = now === last ? quiet + 1 : 0
      last = now
    }
  }

  /** The iframe loads, the capability exchange runs, and everything settles. */
  async load(): Promise<void> {
    this.frame.load()
    await this.settle()
  }

  /** The widget asks; after things settle, what it got (or "no answer"). */
  async ask(action: string, data: Record<string, unknown>): Promise<Answer> {
    let answer: Answer = "no answer"
    this.widget.transport.send(action, data).then(
      (response) => void (answer = { response }),
      (error: Error & { data?: Record<string, unknown> }) => void (answer = { error: { message: error.message, ...error.data } })
    )
    await this.settle()
    return answer
  }

  /** toWidget requests the widget received (its own requests' replies excluded), as `[action, data]`. */
  toWidget(action?: string): Array<[string, unknown]> {
    return this.inbox.filter((m) => m["api"] === "toWidget" && !("response" in m) && (action === undefined || m["action"] === action)).map((m) => [m["action"] as string, m["data"]])
  }

  /** How many replies each of the widget's requests got, by action. */
  repliesPerRequest(): Record<string, number[]> {
    const counts = new Map<string, { action: string; n: number }>()
    for (const m of this.inbox) {
      if (m["api"] !== "fromWidget" || !("response" in m)) continue
      const id = m["requestId"] as string
      const entry = counts.get(id) ?? { action: m["action"] as string, n: 0 }
      entry.n++
      counts.set(id, entry)
    }
    const out: Record<string, number[]> = {}
    for (const { action, n } of counts.values()) (out[action] ??= []).push(n)
    return out
  }

  /** The widget's approved capabilities, as its `WidgetApi` was told. */
  approvedOnWidget(): string[] {
    const notify = this.toWidget("notify_capabilities").at(-1)?.[1] as { approved?: string[] } | undefined
    return [...(notify?.approved ?? [])].sort()
  }

  stop(): void {
    if (this.kind === "reference") asGlobalWindow(this.hostWindow, undefined, () => this.host.stop())
    else this.host.stop()
    this.widgetWindow.listeners.length = 0
    this.widget.removeAllListeners()
  }
}
