/**
 * One contestant's host page in the Chromium bench: `host.html?engine=NAME&widgets=BASE` embeds
 * widgets from another site (BASE, see widget-page.ts) in real iframes, talking real
 * `postMessage`. Each contestant has its own host frame, so no engine's listeners see another's
 * traffic, and the runner (browser-bench.ts) drives the frames in turns through `window.bench`.
 *
 * The contestants, set up as in the Node bench (hosts.ts), with the same doubles behind them:
 * - `widgethost`: `createEngine` behind `attachPostMessageTransport`, over a Promise port that
 *   answers at once, approving everything;
 * - `matrix-widget-api` (its shipped `lib/`, as a client bundles it) and `matrix-widget-api (src)`
 *   (its `src/`, bundled by the same esbuild run): one `ClientWidgetApi` per widget with a driver
 *   that approves everything, room events through `feedEvent` for every widget;
 * - `transport floor`: no engine, each event posted to each widget as a toWidget `send_event`,
 *   echoed back by the bare widget;
 * - `widget side alone`: no engine, a listener that runs the capability exchange and answers
 *   every request by hand: the ceiling for round trips.
 */
import type { RoomEvent, WidgetDefinition } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { attachPostMessageTransport } from "@widgethost/post-message"
import * as shipped from "matrix-widget-api"
// The reference built from its `src/` by this same esbuild run (browser-bench.ts aliases the name).
import * as twin from "matrix-widget-api-src"
import { BenchDriver, benchHomeserver, roomMessage } from "../bench-doubles.ts"
import { ROOM, USER } from "../plan.ts"

// Logging off, as in the Node bench: matrix-widget-api logs every message it sends.
for (const level of ["log", "debug", "info", "warn"] as const) console[level] = () => {}

const params = new URLSearchParams(location.search)
const engine = params.get("engine") ?? "widgethost"
const widgetBase = params.get("widgets") ?? ""
const widgetOrigin = new URL(widgetBase).origin

interface Embedded {
  readonly id: string
  readonly iframe: HTMLIFrameElement
  readonly port: MessagePort
  /** Resolves with the widget's next message on its bench port. */
  readonly next: () => Promise<Record<string, unknown>>
  counted: number
}

/** Where the widgets live, and what each contestant does with them. */
interface Contestant {
  readonly mode: "api" | "echo"
  /** Called with each iframe in the document, before its `src` is set (so the first `load` is seen). */
  readonly embed: (id: string, iframe: HTMLIFrameElement, url: string) => void
  readonly publish: (event: RoomEvent) => void
  readonly stop: () => void
}

const definitionOf = (id: string, url: string): WidgetDefinition => ({ id, kind: "room", roomId: ROOM, type: "m.custom", url, data: {}, waitForIframeLoad: true, transports: ["m.postmessage"] })

const widgethost = (): Contestant => {
  const homeserver = benchHomeserver()
  const host = createEngine({ homeserver, approver: async ({ requested }) => requested })
  const detach: Array<() => void> = []
  return {
    mode: "api",
    embed: (id, iframe, url) => {
      const transport = attachPostMessageTransport({ iframe, widgetUrl: url, window, open: (send) => host.openSession({ widget: definitionOf(id, url), send, origin: widgetOrigin }) })
      detach.push(() => transport.detach())
    },
    publish: (event) => homeserver.publish({ _tag: "RoomEvent", event }),
    stop: () => {
      for (const d of detach) d()
      host.stop()
    }
  }
}

const reference = (build: typeof shipped): Contestant => {
  const apis: Array<InstanceType<typeof build.ClientWidgetApi>> = []
  return {
    mode: "api",
    embed: (id, iframe, url) => {
      const widget = new build.Widget({ id, creatorUserId: USER, type: "m.custom", url, waitForIframeLoad: true, data: {} })
      const api = new build.ClientWidgetApi(widget, iframe, new BenchDriver())
      api.setViewedRoomId(ROOM)
      apis.push(api)
    },
    // What StopGapWidget does for every timeline event, widget by widget.
    publish: (event) => {
      for (const api of apis) api.feedEvent(event as never).catch(() => {})
    },
    stop: () => {
      for (const api of apis) api.stop()
    }
  }
}

const floor = (): Contestant => {
  const frames: Array<{ id: string; iframe: HTMLIFrameElement }> = []
  let seq = 0
  return {
    mode: "echo",
    embed: (id, iframe) => void frames.push({ id, iframe }),
    publish: (event) => {
      for (const { id, iframe } of frames) iframe.contentWindow!.postMessage({ api: "toWidget", widgetId: id, requestId: `floor-${seq++}`, action: "send_event", data: event }, widgetOrigin)
    },
    stop: () => void (frames.length = 0)
  }
}

const widgetSideAlone = (): Contestant => {
  const children = new Map<MessageEventSource, string>()
  let seq = 0
  const onMessage = (event: MessageEvent) => {
    const id = event.source === null ? undefined : children.get(event.source)
    const data = event.data as { api?: string; action?: string; response?: { capabilities?: string[] } }
    if (id === undefined) return
    const child = event.source as Window
    if (data.api === "fromWidget" && data.response === undefined) {
      const response = data.action === "send_event" ? { room_id: ROOM, event_id: `$alone${seq++}` } : data.action === "supported_api_versions" ? { supported_versions: ["0.0.2", "org.matrix.msc2871"] } : {}
      return child.postMessage(Object.assign({}, data, { response }), widgetOrigin)
    }
    if (data.api === "toWidget" && data.action === "capabilities") {
      const requested = data.response?.capabilities ?? []
      child.postMessage({ api: "toWidget", widgetId: id, requestId: `alone-${seq++}`, action: "notify_capabilities", data: { requested, approved: requested } }, widgetOrigin)
    }
  }
  window.addEventListener("message", onMessage)
  return {
    mode: "api",
    embed: (id, iframe) => {
      iframe.addEventListener("load", () => {
        children.set(iframe.contentWindow!, id)
        iframe.contentWindow!.postMessage({ api: "toWidget", widgetId: id, requestId: `alone-${seq++}`, action: "capabilities", data: {} }, widgetOrigin)
      })
    },
    publish: () => {
      throw new Error("the widget side alone has no room events")
    },
    stop: () => window.removeEventListener("message", onMessage)
  }
}

const contestants: Record<string, () => Contestant> = {
  widgethost,
  "matrix-widget-api": () => reference(shipped),
  "matrix-widget-api (src)": () => reference(twin),
  "transport floor": floor,
  "widget side alone": widgetSideAlone
}

const make = contestants[engine]
if (make === undefined) throw new Error(`unknown engine ${engine}`)
const contestant = make()
const widgets: Embedded[] = []

/** Messages the host window has dispatched: a listener added after every engine's, so it runs last. */
let dispatched = 0
let onDispatched: (() => void) | undefined
let counting = false

const portOf = (port: MessagePort) => {
  const queue: Array<Record<string, unknown>> = []
  const waiting: Array<(data: Record<string, unknown>) => void> = []
  port.onmessage = (event) => {
    const data = event.data as Record<string, unknown>
    const resolve = waiting.shift()
    if (resolve !== undefined) resolve(data)
    else queue.push(data)
  }
  return () => new Promise<Record<string, unknown>>((resolve) => (queue.length > 0 ? resolve(queue.shift()!) : waiting.push(resolve)))
}

const quiet = async () => {
  for (let still = 0; still < 3; ) {
    const seen = dispatched
    await new Promise((resolve) => setTimeout(resolve, 20))
    still = dispatched === seen ? still + 1 : 0
  }
}

const bench = {
  /** Embeds `n` widgets and resolves when every one is ready and the window has gone quiet. */
  open: async (n: number): Promise<void> => {
    const readies: Array<Promise<Record<string, unknown>>> = []
    for (let i = 0; i < n; i++) {
      const id = `w${widgets.length}`
      const url = `${widgetBase}/widget.html?mode=${contestant.mode}&id=${id}&host=${encodeURIComponent(location.origin)}`
      const iframe = document.createElement("iframe")
      iframe.width = "40"
      iframe.height = "40"
      const channel = new MessageChannel()
      const next = portOf(channel.port1)
      // In the document first (the reference needs its window), embedded, then navigated.
      document.body.appendChild(iframe)
      contestant.embed(id, iframe, url)
      iframe.addEventListener("load", () => iframe.contentWindow!.postMessage({ benchPort: true }, widgetOrigin, [channel.port2]), { once: true })
      iframe.src = url
      widgets.push({ id, iframe, port: channel.port1, next, counted: 0 })
      readies.push(next())
    }
    if (!counting) {
      counting = true
      window.addEventListener("message", () => {
        dispatched++
        onDispatched?.()
      })
    }
    await Promise.all(readies)
    await quiet()
  },

  /**
   * Publishes `events` room events with at most `inFlight` not yet acknowledged by every widget,
   * and resolves when the host window has dispatched every acknowledgement. Every widget must have
   * received every event (asked over its bench port), or it throws: a wrong count, never a time.
   */
  fanOut: async (events: number, inFlight: number): Promise<number> => {
    const perEvent = widgets.length
    const base = dispatched
    const target = base + events * perEvent
    let published = 0
    const started = performance.now()
    const seconds = await new Promise<number>((resolve) => {
      const pump = () => {
        const done = Math.floor((dispatched - base) / perEvent)
        while (published < events && published - done < inFlight) {
          published++
          contestant.publish(roomMessage())
        }
      }
      onDispatched = () => {
        if (dispatched < target) return pump()
        onDispatched = undefined
        resolve((performance.now() - started) / 1000)
      }
      pump()
    })
    for (const widget of widgets) {
      widget.port.postMessage({ count: true })
      const { received } = (await widget.next()) as { received: number }
      if (received - widget.counted !== events) throw new Error(`${engine}: widget ${widget.id} received ${received - widget.counted} events, expected ${events}`)
      widget.counted = received
    }
    return (events * perEvent) / seconds
  },

  /** The first widget sends `count` room messages, `inFlight` unanswered at most; round trips per second. */
  roundTrips: async (count: number, inFlight: number): Promise<number> => {
    const widget = widgets[0]!
    widget.port.postMessage({ roundTrips: { count, inFlight } })
    const answer = (await widget.next()) as { seconds?: number; error?: string }
    if (answer.seconds === undefined) throw new Error(`${engine}: ${answer.error ?? "no answer"}`)
    return count / answer.seconds
  },

  stop: () => {
    contestant.stop()
    for (const widget of widgets) widget.iframe.remove()
    widgets.length = 0
  }
}

;(window as unknown as { bench: typeof bench }).bench = bench
