/**
 * The contestants, set up the same way: a host page (one {@link FakeWindow}) embedding widgets,
 * each widget in its own fake iframe running matrix-widget-api's real `WidgetApi` (end-to-end
 * rows) or the scripted widget side that answers at once (host-only rows, a host's name then
 * ends in ", host only"; see widget-sides.ts), so the widget side costs the same whoever hosts it.
 *
 * - `widgethost`: `createEngine` behind our postMessage adapter (`attachPostMessageTransport`,
 *   one `message` listener per host window that dispatches by `event.source` to the widget's
 *   attachment, as the adapter does in a browser),
 *   with a Promise homeserver port that answers at once and an approver that approves everything.
 * - `matrix-widget-api`: one `ClientWidgetApi(widget, iframe, driver)` per widget, all listening
 *   on the one host window as in Element Web, each with a `WidgetDriver` that approves
 *   everything and answers at once; room events reach it through `feedEvent(raw)` for every
 *   widget, as Element Web's `StopGapWidget` does, with `setViewedRoomId(room)` set. Its shipped
 *   babel `lib/`, and as `matrix-widget-api (src)` its `src/` built by esbuild (reference-twin.ts).
 * - `transport floor`: no engine at all; the same messages through the same fake windows
 *   (a structured clone and a task per message, both ways) with a bare echo on the widget side.
 * - `widget side alone` (`transport alone` with the scripted widget side): the widget side and, on the host side, no engine:
 *   a listener that answers each request and runs the capability exchange by hand, with no checks.
 *   What round trips and negotiation cost before any host engine does anything; no engine can
 *   beat it, so it bounds the ratio any engine can reach against the reference.
 */
import { type RoomEvent, type WidgetDefinition } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { ClientWidgetApi, type IRoomEvent, Widget } from "matrix-widget-api"
import { attachPostMessageTransport, type PostMessageTransport } from "@widgethost/post-message"
import { asGlobalWindow, FakeFrame, FakeWindow } from "./fake-window.ts"
import { HOST_ORIGIN, ROOM, USER, WIDGET_ORIGIN, WIDGET_URL, type WidgetPlan } from "./plan.ts"
import { referenceTwin } from "./reference-twin.ts"
import { type SentEvent, type WidgetSide, type WidgetSideKind, widgetSideFor } from "./widget-sides.ts"

export { BenchDriver, benchHomeserver, roomMessage } from "./bench-doubles.ts"
import { BenchDriver, benchHomeserver } from "./bench-doubles.ts"
export type { WidgetSideKind } from "./widget-sides.ts"
export { HOST_ORIGIN, MESSAGE_CAPABILITIES, receiveEvent, ROOM, sendEvent, USER, WIDGET_ORIGIN, WIDGET_URL, type WidgetPlan } from "./plan.ts"

export type EngineName = "widgethost" | "matrix-widget-api" | "matrix-widget-api (src)" | "widget side alone"

/** One embedded widget as the scenarios drive it. */
export interface BenchWidget {
  readonly plan: WidgetPlan
  /** fromWidget `send_event` from the widget's side (`WidgetApi.sendRoomEvent` or the scripted one). */
  readonly sendRoomEvent: (type: string, content: unknown) => Promise<SentEvent>
  readonly frame: FakeFrame
  /** toWidget `send_event` requests the widget received (and acknowledged). */
  readonly received: () => number
  /** Resolves when the widget has been told its capabilities (`notify_capabilities` received). */
  readonly ready: Promise<void>
  /** The widget's script runs: `WidgetApi.start()` (it asks the client's versions at once). */
  readonly start: () => void
  /** The browser fires the iframe's `load`: the host starts negotiating. */
  readonly load: () => void
  /** Cuts the widget side loose (its listeners go), leaving only what the host keeps. */
  readonly detach: () => void
}

export interface Host {
  readonly name: string
  /** The host page's window: every widget's message lands here. */
  readonly window: FakeWindow
  readonly open: (plan: WidgetPlan) => BenchWidget
  /** One room event from the homeserver, as the client's sync loop hands it over. */
  readonly publish: (event: RoomEvent) => void
  readonly stop: () => void
}

/** What the scenarios drive: the widget side, with the frame's `load` fired by the browser. */
const benchWidget = (plan: WidgetPlan, side: WidgetSide): BenchWidget => ({
  plan,
  sendRoomEvent: side.sendRoomEvent,
  frame: side.frame,
  ready: side.ready,
  received: side.received,
  start: side.start,
  load: () => side.frame.load(),
  detach: side.detach
})

// ---- widgethost ------------------------------------------------------------------------------

export const definitionOf = (plan: WidgetPlan): WidgetDefinition => ({
  id: plan.id,
  kind: "room",
  roomId: plan.roomId,
  type: "m.custom",
  url: WIDGET_URL,
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"]
})

/** A host's name for the scripted widget side: its host-only variant. */
export const sideName = (name: string, side: WidgetSideKind): string => (side === "scripted" ? `${name}, host only` : name)

export const widgethostHost = (side: WidgetSideKind = "widget-api"): Host & { readonly engine: Engine } => {
  const window = new FakeWindow(HOST_ORIGIN)
  const homeserver = benchHomeserver()
  const engine = createEngine({ homeserver, approver: async ({ requested }) => requested })
  const transports: PostMessageTransport[] = []
  return {
    name: sideName("widgethost", side),
    window,
    engine,
    open: (plan) => {
      const widget = widgetSideFor(side)(window, plan)
      const transport = attachPostMessageTransport({
        iframe: widget.frame as unknown as HTMLIFrameElement,
        widgetUrl: WIDGET_URL,
        window: window as unknown as Window,
        open: (send) => engine.openSession({ widget: definitionOf(plan), send, origin: WIDGET_ORIGIN })
      })
      transports.push(transport)
      return benchWidget(plan, widget)
    },
    publish: (event) => homeserver.publish({ _tag: "RoomEvent", event }),
    stop: () => {
      for (const transport of transports) transport.detach()
      engine.stop()
    }
  }
}

// ---- matrix-widget-api -----------------------------------------------------------------------

const noop = () => {}

/** The reference's two builds: the shipped babel `lib/`, and its `src/` built as we build ours. */
const referenceBuilds = {
  "matrix-widget-api": { ClientWidgetApi, Widget },
  "matrix-widget-api (src)": { ClientWidgetApi: referenceTwin.ClientWidgetApi, Widget: referenceTwin.Widget }
} as const

export type ReferenceBuild = keyof typeof referenceBuilds

export const referenceHost = (build: ReferenceBuild = "matrix-widget-api", side: WidgetSideKind = "widget-api"): Host => {
  const { ClientWidgetApi, Widget } = referenceBuilds[build]
  const window = new FakeWindow(HOST_ORIGIN)
  const apis: Array<InstanceType<typeof ClientWidgetApi>> = []
  return {
    name: sideName(build, side),
    window,
    open: (plan) => {
      const widgetSide = widgetSideFor(side)(window, plan)
      const widget = new Widget({ id: plan.id, creatorUserId: USER, type: "m.custom", url: WIDGET_URL, waitForIframeLoad: true, data: {} })
      // Its transport listens on `globalThis`: the host window while it is built.
      const api = asGlobalWindow(window, undefined, () => new ClientWidgetApi(widget, widgetSide.frame as unknown as HTMLIFrameElement, new BenchDriver() as never))
      // Element Web tells every widget the viewed room; a room widget's room is the one on screen.
      api.setViewedRoomId(plan.roomId)
      apis.push(api)
      return benchWidget(plan, widgetSide)
    },
    publish: (event) => {
      // What StopGapWidget does for every timeline event, widget by widget.
      for (const api of apis) api.feedEvent(event as unknown as IRoomEvent).catch(noop)
    },
    stop: () => {
      for (const api of apis) asGlobalWindow(window, undefined, () => api.stop())
      apis.length = 0
    }
  }
}

// ---- the transport floor ---------------------------------------------------------------------

/**
 * No engine: each event is posted to each widget window as the same toWidget `send_event`
 * request, and a bare widget-side listener posts it back with `response: {}`. What is left is
 * the transport: a structured clone and a task per message, both ways.
 */
export const floorHost = (): Host => {
  const window = new FakeWindow(HOST_ORIGIN)
  const widgets: Array<{ readonly window: FakeWindow; readonly plan: WidgetPlan }> = []
  let seq = 0
  window.addEventListener("message", noop)
  return {
    name: "transport floor",
    window,
    open: (plan) => {
      const child = new FakeWindow(WIDGET_ORIGIN, window)
      const parent = child.parentProxy()
      let received = 0
      child.addEventListener("message", (event) => {
        received++
        // Object.assign, not a spread: V8's spread of a cloned object is slow, and this is a floor.
        parent.postMessage(Object.assign({}, event.data as object, { response: {} }), HOST_ORIGIN)
      })
      widgets.push({ window: child, plan })
      return {
        plan,
        sendRoomEvent: () => Promise.reject(new Error("the transport floor's widget sends nothing")),
        frame: new FakeFrame(child),
        ready: Promise.resolve(),
        received: () => received,
        start: noop,
        load: noop,
        detach: () => void (child.listeners.length = 0)
      }
    },
    publish: (event) => {
      for (const { window: child, plan } of widgets) {
        if (plan.roomId !== event.room_id) continue
        child.postMessage({ api: "toWidget", widgetId: plan.id, requestId: `floor-${seq++}`, action: "send_event", data: event }, WIDGET_ORIGIN)
      }
    },
    stop: () => {
      widgets.length = 0
    }
  }
}

// ---- the widget side alone ---------------------------------------------------------------------

/**
 * The real `WidgetApi` against a host that does the least the protocol needs, by hand: on the
 * frame's `load` it asks the widget's capabilities, answers with `notify_capabilities` approving
 * all of them, and answers every fromWidget request at once (`send_event` with an event id,
 * `supported_api_versions` with one version, anything else with `{}`). No decoding, no checks.
 */
export const widgetSideAloneHost = (side: WidgetSideKind = "widget-api"): Host => {
  const window = new FakeWindow(HOST_ORIGIN)
  /** Each widget's window, and its plan. */
  const children = new Map<unknown, WidgetPlan>()
  let seq = 0
  const post = (child: FakeWindow, message: object) => child.postMessage(message, WIDGET_ORIGIN)
  window.addEventListener("message", (event) => {
    const child = event.source as unknown as FakeWindow
    const plan = children.get(child)
    const data = event.data as { api?: string; action?: string; widgetId?: string; response?: { capabilities?: string[] } }
    if (plan === undefined) return
    if (data.api === "fromWidget" && data.response === undefined) {
      const response = data.action === "send_event" ? { room_id: ROOM, event_id: `$alone${seq++}` } : data.action === "supported_api_versions" ? { supported_versions: ["0.0.2", "org.matrix.msc2871"] } : {}
      // Object.assign, not a spread: V8's spread of a cloned object is slow, and this is a floor.
      return post(child, Object.assign({}, data, { response }))
    }
    if (data.api === "toWidget" && data.action === "capabilities") {
      const requested = data.response?.capabilities ?? []
      post(child, { api: "toWidget", widgetId: plan.id, requestId: `alone-${seq++}`, action: "notify_capabilities", data: { requested, approved: requested } })
    }
  })
  return {
    name: side === "scripted" ? "transport alone" : "widget side alone",
    window,
    open: (plan) => {
      const widget = widgetSideFor(side)(window, plan)
      children.set(widget.window, plan)
      const load = () => post(widget.window, { api: "toWidget", widgetId: plan.id, requestId: `alone-${seq++}`, action: "capabilities", data: {} })
      return { ...benchWidget(plan, widget), load }
    },
    publish: () => {
      throw new Error("the widget side alone has no room events")
    },
    stop: () => children.clear()
  }
}

/** The host `name` with the widget side `side` (with "scripted", "widget side alone" is the transport alone). */
export const hostFor = (name: EngineName, side: WidgetSideKind = "widget-api"): Host =>
  name === "widgethost" ? widgethostHost(side) : name === "widget side alone" ? widgetSideAloneHost(side) : referenceHost(name, side)

/**
 * Opens `plans` on `host`, starts every widget, loads every frame, and waits until all are ready.
 * The default limit grows with the count: the reference's negotiation is quadratic in the
 * widgets on one window (about 28 s for 1,000 on an idle machine), and a fixed minute failed the
 * whole fan-out scenario on a busy one (150 ms a widget was not enough at a load average of 20).
 */
export const openReady = async (host: Host, plans: ReadonlyArray<WidgetPlan>, timeoutMs = Math.max(60_000, plans.length * 400)): Promise<BenchWidget[]> => {
  const widgets = plans.map((plan) => host.open(plan))
  for (const widget of widgets) widget.start()
  for (const widget of widgets) widget.load()
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(widgets.map((w) => w.ready)),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${host.name}: ${plans.length} widgets not ready within ${timeoutMs} ms`)), timeoutMs)))
  ]).finally(() => clearTimeout(timer))
  // `ready` fires before the widget's acknowledgement of notify_capabilities has reached the
  // host: let the host window go quiet, or those acknowledgements land in the first round.
  for (let quiet = 0; quiet < 3; ) {
    const seen = host.window.dispatched
    await new Promise((resolve) => setImmediate(resolve))
    quiet = host.window.dispatched === seen ? quiet + 1 : 0
  }
  return widgets
}

/**
 * Publishes `events` room events, keeping at most `window` of them in flight (published but not
 * yet acknowledged by every widget that receives them), and resolves with the seconds it took
 * until the host window had dispatched every acknowledgement: `events × perEvent` of them.
 */
export const deliver = (host: Host, options: { readonly events: number; readonly perEvent: number; readonly window: number; readonly make: () => RoomEvent }): Promise<number> =>
  new Promise((resolve) => {
    const { events, perEvent, window: inFlight, make } = options
    const base = host.window.dispatched
    const target = base + events * perEvent
    let published = 0
    const pump = () => {
      const done = Math.floor((host.window.dispatched - base) / perEvent)
      while (published < events && published - done < inFlight) {
        published++
        host.publish(make())
      }
    }
    const started = performance.now()
    host.window.onDispatched = () => {
      if (host.window.dispatched < target) return pump()
      host.window.onDispatched = undefined
      resolve((performance.now() - started) / 1000)
    }
    pump()
  })
