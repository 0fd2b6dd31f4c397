/**
 * A well-behaved websocket widget for `conform widget --exec`: our kit's `WidgetClient`,
 * connecting to `$WIDGETHOST_CONFORM_WS`, asking to send and receive room messages. It speaks
 * first (MSC3009), then leaves every answer to the client.
 */
import { WidgetClient, type WebSocketConstructor, websocketTransport } from "@widgethost/widget-client"
import { WebSocket } from "ws"

const uri = process.env["WIDGETHOST_CONFORM_WS"]!
const transport = await websocketTransport(uri, { WebSocket: WebSocket as unknown as WebSocketConstructor })
const client = new WidgetClient({ transport, widgetId: "conform", capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] })
void client.contentLoaded().catch(() => undefined)
process.on("SIGTERM", () => process.exit(0))
