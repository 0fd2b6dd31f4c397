/**
 * A websocket widget with three known faults, for `conform widget` to find: it answers
 * `capabilities` twice, acknowledges an action no widget knows instead of refusing it
 * (MSC2813), and never answers `supported_api_versions`. Everything else it acknowledges.
 */
import { WebSocket } from "ws"

const socket = new WebSocket(process.env["WIDGETHOST_CONFORM_WS"]!)
// It does speak first, as MSC3009 asks.
socket.on("open", () => socket.send(JSON.stringify({ api: "fromWidget", widgetId: "conform", requestId: "loaded", action: "content_loaded", data: {} })))
socket.on("message", (data) => {
  const request = JSON.parse((data as Buffer).toString()) as { api: string; action: string; response?: unknown }
  if (request.api !== "toWidget" || "response" in request) return
  const reply = (response: unknown) => socket.send(JSON.stringify({ ...request, response }))
  if (request.action === "supported_api_versions") return
  if (request.action === "capabilities") {
    reply({ capabilities: ["m.receive.event:m.room.message"] })
    reply({ capabilities: ["m.receive.event:m.room.message"] })
    return
  }
  reply({})
})
process.on("SIGTERM", () => process.exit(0))
