/**
 * The two widget sides a host can be measured against, each in its own fake iframe:
 *
 * - `widget-api`: matrix-widget-api's real `WidgetApi` (the end-to-end rows): it costs the same
 *   whoever hosts it, and most of an end-to-end delivery is its work.
 * - `scripted`: code that answers at once (the host-only rows): no `WidgetApi`, no events, no
 *   promises per message; each toWidget request is answered in the listener that receives it,
 *   with the same messages `WidgetApi` sends (two `supported_api_versions` requests when the
 *   capabilities request comes before the first answer, the requested capabilities, an
 *   acknowledgement of `notify_capabilities` and of every `send_event`). What is left besides
 *   the host is the transport (a clone and a task per message), which the host-only rows take
 *   off by subtracting a floor measured with this same widget side and no engine.
 */
import { CurrentApiVersions, type IWidgetApiRequest, WidgetApi } from "matrix-widget-api"
import { asGlobalWindow, FakeFrame, FakeWindow } from "./fake-window.ts"
import { HOST_ORIGIN, WIDGET_ORIGIN, type WidgetPlan } from "./plan.ts"

export type WidgetSideKind = "widget-api" | "scripted"

/** The host's answer to `send_event` (the round trips check that `event_id` is there). */
export interface SentEvent {
  readonly event_id?: string
  readonly room_id?: string
}

export interface WidgetSide {
  readonly window: FakeWindow
  readonly frame: FakeFrame
  readonly ready: Promise<void>
  /** toWidget `send_event` requests received (and acknowledged). */
  readonly received: () => number
  /** The widget's script runs: it asks the client's versions at once. */
  readonly start: () => void
  /** fromWidget `send_event`; resolves with the host's answer, rejects on an error answer. */
  readonly sendRoomEvent: (type: string, content: unknown) => Promise<SentEvent>
  /** Cuts the widget side loose (its listeners go), leaving only what the host keeps. */
  readonly detach: () => void
}

/** matrix-widget-api's `WidgetApi`, acknowledging every room event it is sent. */
export const widgetApiSide = (host: FakeWindow, plan: WidgetPlan): WidgetSide => {
  const window = new FakeWindow(WIDGET_ORIGIN, host)
  const parent = window.parentProxy()
  const frame = new FakeFrame(window)
  const api = asGlobalWindow(window, parent, () => new WidgetApi(plan.id, HOST_ORIGIN))
  api.requestCapabilities([...plan.capabilities])
  let received = 0
  // The documented way for a widget to take room events: prevent the default (an error reply), ack.
  api.on("action:send_event", (event: CustomEvent<IWidgetApiRequest>) => {
    event.preventDefault()
    received++
    api.transport.reply(event.detail, {})
  })
  const ready = new Promise<void>((resolve) => api.once("ready", () => resolve()))
  return {
    window,
    frame,
    ready,
    received: () => received,
    start: () => asGlobalWindow(window, parent, () => api.start()),
    sendRoomEvent: (type, content) => api.sendRoomEvent(type, content),
    detach: () => {
      window.listeners.length = 0
      api.removeAllListeners()
    }
  }
}

interface Envelope {
  readonly api?: string
  readonly action?: string
  readonly requestId?: string
  readonly response?: { readonly error?: { readonly message?: string } } & Record<string, unknown>
}

/** Code that answers at once, speaking the same messages as `WidgetApi`. */
export const scriptedSide = (host: FakeWindow, plan: WidgetPlan): WidgetSide => {
  const window = new FakeWindow(WIDGET_ORIGIN, host)
  const parent = window.parentProxy()
  const frame = new FakeFrame(window)
  const pending = new Map<string, (response: NonNullable<Envelope["response"]>) => void>()
  let seq = 0
  let received = 0
  let versionsKnown = false
  let markReady!: () => void
  const ready = new Promise<void>((resolve) => (markReady = resolve))
  const ask = (action: string, data: unknown, answered: (response: NonNullable<Envelope["response"]>) => void) => {
    const requestId = `scripted-${seq++}`
    pending.set(requestId, answered)
    parent.postMessage({ api: "fromWidget", widgetId: plan.id, requestId, action, data }, HOST_ORIGIN)
  }
  const askVersions = (then: () => void) =>
    ask("supported_api_versions", {}, () => {
      versionsKnown = true
      then()
    })
  // Object.assign, not a spread: V8's spread of a cloned object is slow (as the floors do).
  const reply = (request: Envelope, response: object) => parent.postMessage(Object.assign({}, request, { response }), HOST_ORIGIN)
  window.addEventListener("message", (event: MessageEvent) => {
    const data = event.data as Envelope
    if (data.api === "fromWidget") {
      const answered = data.response === undefined || data.requestId === undefined ? undefined : pending.get(data.requestId)
      if (answered === undefined) return
      pending.delete(data.requestId!)
      return answered(data.response!)
    }
    if (data.api !== "toWidget" || data.response !== undefined) return
    switch (data.action) {
      case "send_event":
        received++
        return reply(data, {})
      case "capabilities": {
        const answer = () => reply(data, { capabilities: plan.capabilities })
        return versionsKnown ? answer() : askVersions(answer)
      }
      case "notify_capabilities":
        reply(data, {})
        return markReady()
      case "supported_api_versions":
        return reply(data, { supported_versions: CurrentApiVersions })
      default:
        return reply(data, {})
    }
  })
  return {
    window,
    frame,
    ready,
    received: () => received,
    start: () => askVersions(() => undefined),
    sendRoomEvent: (type, content) =>
      new Promise((resolve, reject) =>
        ask("send_event", { type, content }, (response) => (response.error === undefined ? resolve(response as unknown as SentEvent) : reject(new Error(response.error.message))))
      ),
    detach: () => {
      window.listeners.length = 0
      pending.clear()
    }
  }
}

export const widgetSideFor = (kind: WidgetSideKind) => (kind === "widget-api" ? widgetApiSide : scriptedSide)
