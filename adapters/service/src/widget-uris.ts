import { createHmac } from "node:crypto"
import type { WidgetDefinition } from "@widgethost/core"
import { startWebsocketTransport, type WebsocketTransport, type WebsocketTransportOptions } from "@widgethost/websocket"

/**
 * Stable widget URIs: a widget's `$matrix_websocket_uri` is the same on every start of the
 * service, so a widget (or the page holding it) can reconnect after a restart and resume. The URI
 * is the transport's address and the widget's token; the token is derived from a secret the
 * service keeps in its data directory, and the port is the configured one, or else the one the
 * last run listened on.
 */

/**
 * The widget's token: an HMAC of its room, id and URL template under the service's secret, in the
 * transport's token format (43 base64url characters). A widget whose URL changes is another
 * widget and gets another URI.
 *
 * @example widgetToken(secret, { id: "demo", roomId: "!abc:localhost", url: "https://w.example/#ws=$matrix_websocket_uri" })
 */
export const widgetToken = (secret: string, widget: Pick<WidgetDefinition, "id" | "roomId" | "url">): string =>
  createHmac("sha256", secret)
    .update(JSON.stringify(["widgethost widget token v1", widget.roomId ?? "", widget.id, widget.url]))
    .digest("base64url")

/**
 * Starts the transport. Port 0 in the configuration means "any", and then the port of the last
 * run is tried first (`remembered`); when something else took it meanwhile, any free port is used
 * and `onMoved` is told (the widgets' URIs change then, so they cannot resume).
 *
 * @example const transport = await startOnStablePort({ host: "127.0.0.1", port: 0 }, state.widgetPort, (from) => log("warn", …))
 */
export const startOnStablePort = async (
  options: WebsocketTransportOptions & { readonly port: number },
  remembered: number | undefined,
  onMoved: (from: number, error: unknown) => void
): Promise<WebsocketTransport> => {
  if (options.port !== 0 || remembered === undefined) return startWebsocketTransport(options)
  try {
    return await startWebsocketTransport({ ...options, port: remembered })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE" && (error as NodeJS.ErrnoException).code !== "EACCES") throw error
    onMoved(remembered, error)
    return startWebsocketTransport(options)
  }
}
