/**
 * A widget page on matrix-widget-api's `WidgetApi`, as most web widgets are written, for
 * `conform widget URL` in Chromium: it asks to receive room messages, acknowledges the room
 * events it is sent, and leaves the rest of the protocol to `WidgetApi`.
 */
import { WidgetApi } from "matrix-widget-api"

const query = new URLSearchParams(location.search)
const api = new WidgetApi(query.get("widgetId") ?? undefined, new URL(query.get("parentUrl")!).origin)
api.requestCapabilityToReceiveEvent("m.room.message")
api.on("action:send_event", (event: CustomEvent<{ api: string; requestId: string; action: string; widgetId: string; data: unknown }>) => {
  event.preventDefault()
  api.transport.reply(event.detail as never, {})
})
api.start()
