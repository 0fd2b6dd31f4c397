/** Carrying a widget-side client to a new connection, as a widget whose network came back does. */
import { websocketTransport, type WebSocketConstructor, type WidgetClient } from "@widgethost/widget-client"

/**
 * Connects again to `uri` with `Socket` and resumes `client` over it. The host may not have seen
 * the old link drop yet and refuse the second connection (409): tried again every 20 ms, 50 times.
 */
export const resumeOver = async (client: WidgetClient, uri: string, Socket: WebSocketConstructor): Promise<void> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return client.resume(await websocketTransport(uri, { WebSocket: Socket }))
    } catch (error) {
      if (attempt >= 50) throw error
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
}
