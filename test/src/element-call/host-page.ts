/**
 * The host page for Element Call, run in Chromium: our engine (`createEngine`) with the
 * postMessage transport, as a Matrix client embeds them, and the homeserver port reached over the
 * port bridge (the page cannot run the Node homeserver client). It approves everything Element
 * Call asks (capabilities and OpenID), serves what a client serves (always-on-screen and Element
 * Web's call actions, through the engine's client hooks) and keeps a log the test reads through
 * `window.__host`: each prompt, every toWidget request we sent, every answer we gave to a
 * fromWidget request, and what reached the hooks. Any widget that reads Element Call's URL
 * parameters can stand in its place: the matrix-js-sdk widget-mode test frames its own page here.
 *
 * Query parameters: `bridge` (the port bridge URL), `widget` (the widget's page: Element Call's index.html),
 * `room` (the call's room), `homeserver` (its base URL, which Element Call also reads directly).
 */
import { browserHost, chooseTransport, parseWidgetDefinition, renderWidgetUrl, type WidgetMessage, Result } from "@widgethost/core"
import { createEngine, type EngineSession } from "@widgethost/engine"
import { attachPostMessageTransport } from "@widgethost/post-message"
import { connectPortBridge } from "../port-bridge/client.ts"
import { WIDGET_FRAME } from "./widget-frame.ts"
import { fromEffectPort } from "@widgethost/core/effect"

/** Element Call's widget URL as Element Web builds it: its parameters in the fragment, templated. */
const ELEMENT_CALL_PARAMETERS = [
  "widgetId=$matrix_widget_id",
  "parentUrl=$parentUrl",
  "roomId=$matrix_room_id",
  "userId=$matrix_user_id",
  "deviceId=$org.matrix.msc3819.matrix_device_id",
  "baseUrl=$org.matrix.msc4039.matrix_base_url",
  "lang=$org.matrix.msc2873.client_language",
  "theme=$org.matrix.msc2873.client_theme",
  // Element Web's defaults for a call in a room: the user asked to join it, stays in its room,
  // the client draws the header.
  "intent=join_existing",
  "confineToRoom=true",
  "header=none"
].join("&")

export interface HostLogEntry {
  /**
   * `answer`: our response to a fromWidget request; `request`: a toWidget request we sent;
   * `reply`: the widget's response to one of those.
   */
  readonly kind: "answer" | "request" | "reply"
  readonly action: string
  readonly data: unknown
  readonly response?: unknown
}

const params = new URLSearchParams(location.search)
const param = (name: string) => {
  const value = params.get(name)
  if (value === null) throw new Error(`host page: missing ?${name}=`)
  return value
}

const log: Array<HostLogEntry> = []
const prompts: Array<ReadonlyArray<string>> = []
const openIdPrompts: Array<string | undefined> = []
const reports: Array<unknown> = []

/** What reached the client's hooks, in order: the hook or custom action, and its data. */
const clientCalls: Array<{ readonly hook: string; readonly data: unknown }> = []
/** Element Web's call actions, served as a client serves them: noted, acknowledged. */
const elementAction =
  (action: string) =>
  async (data: Readonly<Record<string, unknown>>): Promise<void> =>
    void clientCalls.push({ hook: action, data })

const homeserver = await connectPortBridge(param("bridge"))
const engine = createEngine({
  homeserver: fromEffectPort(homeserver),
  hooks: {
    setAlwaysOnScreen: async (value) => {
      clientCalls.push({ hook: "setAlwaysOnScreen", data: value })
      return true
    }
  },
  customActions: {
    "io.element.device_mute": elementAction("io.element.device_mute"),
    "io.element.join": elementAction("io.element.join"),
    // Element Web removes the widget when asked: here once the answer is on its way (`record`).
    "io.element.close": elementAction("io.element.close")
  },
  approver: async ({ requested }) => {
    prompts.push(requested)
    return requested
  },
  openIdApprover: async ({ origin }) => {
    openIdPrompts.push(origin)
    return true
  },
  onReport: (_session, _widget, report) => reports.push(report)
})

const roomId = param("room")
const parsed = parseWidgetDefinition({
  source: "config",
  id: "element-call",
  roomId,
  content: {
    type: "m.call",
    name: "Element Call",
    url: `${param("widget")}#?${ELEMENT_CALL_PARAMETERS}`,
    data: { parentUrl: location.href },
    // Element Call says content_loaded itself once it has set its theme (as with Element Web).
    waitForIframeLoad: false
  }
})
if (!Result.isSuccess(parsed)) throw new Error(`Element Call's widget definition was refused: ${JSON.stringify(parsed.failure)}`)
const widget = parsed.success
const choice = Result.getOrThrow(chooseTransport(widget, browserHost))
const widgetUrl = renderWidgetUrl(widget.url, {
  widgetId: widget.id,
  userId: homeserver.userId,
  deviceId: homeserver.deviceId,
  roomId,
  baseUrl: param("homeserver"),
  clientLanguage: "en",
  clientTheme: "light",
  transport: choice.transport,
  data: widget.data
})

/** Everything we post to the widget: our answers (the request echoed with `response`) and our requests. */
const record = (message: WidgetMessage) => {
  const entry = message as unknown as { api: string; action: string; data: unknown; response?: unknown }
  if (entry.api === "fromWidget") log.push({ kind: "answer", action: entry.action, data: entry.data, response: entry.response })
  else if (entry.response === undefined) log.push({ kind: "request", action: entry.action, data: entry.data })
}

/** Removes the widget as a client closing it does: the frame goes, the session closes. */
function closeWidget() {
  transport.detach()
  iframe.remove()
}

const iframe = document.createElement("iframe")
// The widget's replies to our requests, as the transport receives them (it checks the source).
window.addEventListener("message", (event: MessageEvent<{ api?: string; action?: string; data?: unknown; response?: unknown }>) => {
  if (event.source !== iframe.contentWindow || event.data?.api !== "toWidget" || event.data.response === undefined) return
  log.push({ kind: "reply", action: String(event.data.action), data: event.data.data, response: event.data.response })
})
iframe.name = WIDGET_FRAME
// What Element Web grants a call widget.
iframe.allow = "camera; microphone; display-capture; autoplay; clipboard-write"
iframe.style.width = "1000px"
iframe.style.height = "700px"
let session: EngineSession | undefined
const transport = attachPostMessageTransport({
  iframe,
  widgetUrl,
  open: (send) =>
    (session = engine.openSession({
      widget,
      origin: new URL(widgetUrl).origin,
      waitForIframeLoad: choice.waitForIframeLoad,
      send: (message) => {
        record(message)
        send(message)
        const answer = message as { api?: string; action?: string; response?: { error?: unknown } }
        if (answer.api === "fromWidget" && answer.action === "io.element.close" && answer.response?.error === undefined) queueMicrotask(closeWidget)
      }
    }))
})
iframe.src = widgetUrl
document.body.append(iframe)

Object.assign(window, {
  __host: {
    widgetUrl,
    log,
    prompts,
    openIdPrompts,
    reports,
    clientCalls,
    info: () => session?.info(),
    closeWidget
  }
})
