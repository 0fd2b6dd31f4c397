/**
 * The widget of the Chromium bench, the same page whoever hosts it. `?mode=api` runs
 * matrix-widget-api's real `WidgetApi` (asks for the message capabilities, acknowledges every
 * `send_event`, sends round trips when told); `?mode=echo` is the transport floor's bare widget,
 * posting every toWidget request back with `response: {}`. The host frame hands it a
 * `MessagePort` for the bench's own talk (ready, counts, round trips), which stays off the
 * window the engines listen on.
 */
import { type IWidgetApiRequest, WidgetApi } from "matrix-widget-api"
import { sendMany } from "../bench-doubles.ts"

// Logging off, as in the Node bench: matrix-widget-api logs every message it sends.
for (const level of ["log", "debug", "info", "warn"] as const) console[level] = () => {}

const params = new URLSearchParams(location.search)
const mode = params.get("mode") ?? "api"
const widgetId = params.get("id") ?? "bench"
const hostOrigin = params.get("host") ?? "*"

let received = 0
let ready = false
let port: MessagePort | undefined

const tellReady = () => {
  ready = true
  port?.postMessage({ ready: true })
}

let api: WidgetApi | undefined

window.addEventListener("message", (event) => {
  const data = event.data as { benchPort?: boolean; api?: string; response?: unknown } | null
  if (data?.benchPort === true && event.ports[0] !== undefined) {
    port = event.ports[0]
    port.onmessage = (command) => void answer(command.data as { count?: boolean; roundTrips?: { count: number; inFlight: number } })
    if (ready) port.postMessage({ ready: true })
    return
  }
  if (mode === "echo" && data?.api === "toWidget" && data.response === undefined) {
    received++
    // Object.assign, not a spread, as the Node floor does.
    window.parent.postMessage(Object.assign({}, data, { response: {} }), hostOrigin)
  }
})

const answer = async (command: { count?: boolean; roundTrips?: { count: number; inFlight: number } }) => {
  if (command.count === true) return port!.postMessage({ received })
  if (command.roundTrips !== undefined && api !== undefined) {
    try {
      port!.postMessage({ seconds: await sendMany(api, command.roundTrips.count, command.roundTrips.inFlight) })
    } catch (error) {
      port!.postMessage({ error: String(error) })
    }
  }
}

if (mode === "echo") tellReady()
else {
  api = new WidgetApi(widgetId, hostOrigin)
  api.requestCapabilities(["org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc2762.receive.event:m.room.message"])
  // The documented way for a widget to take room events: prevent the default (an error reply), ack.
  api.on("action:send_event", (event: CustomEvent<IWidgetApiRequest>) => {
    event.preventDefault()
    received++
    api!.transport.reply(event.detail, {})
  })
  api.once("ready", tellReady)
  api.start()
}
