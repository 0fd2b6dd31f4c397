/**
 * What every simulated host does for its accounts, in one thread, on a worker, or for a scenario:
 * connect each account's homeserver port, start them syncing and wait for their first sync, give
 * each an engine that approves everything and reports request timeouts, and register each widget
 * on the websocket transport from a definition like the one a room would hold.
 */
import { parseWidgetDefinition, Result } from "@widgethost/core"
import { fromEffectPort } from "@widgethost/core/effect"
import { createEngine, type Engine } from "@widgethost/engine"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import type { WebsocketTransport } from "@widgethost/websocket"
import { SimulationError } from "./simulate-options.ts"

export interface SimAccountAuth {
  readonly accessToken: string
  readonly deviceId: string
  readonly userId: string
}

/** One account's port; its errors go to `onError` as text. */
export const connectSimAccount = (baseUrl: string, auth: SimAccountAuth, syncTimeoutMs: number, onError: (message: string) => void): Promise<MatrixHomeserver> =>
  connectHomeserver({
    baseUrl,
    auth: { accessToken: auth.accessToken, deviceId: auth.deviceId, userId: auth.userId },
    sync: { timeoutMs: syncTimeoutMs },
    onError: (error) => onError(error instanceof Error ? error.message : String(error))
  })

/** Starts every port syncing (each room event seen told to `onRoomEvent`); resolves on their first syncs. */
export const startSyncing = (ports: Iterable<MatrixHomeserver>, onRoomEvent?: () => void): Promise<unknown> => {
  const all = [...ports]
  const firstSyncs = all.map((port) => port.nextSync())
  for (const port of all) {
    if (onRoomEvent !== undefined) port.subscribe((update) => void (update._tag === "RoomEvent" && onRoomEvent()))
    port.start()
  }
  return Promise.all(firstSyncs)
}

/** An engine over `port` that approves every capability; each request timeout is told to `onTimeout`. */
export const approvingEngine = (port: MatrixHomeserver, onTimeout: (widgetId: string, action: string, requestId: string) => void): Engine =>
  createEngine({
    homeserver: fromEffectPort(port),
    policy: { rules: [{ capability: "*", decision: "approve" }] },
    onReport: (_session, widgetId, report) => {
      if (report._tag === "RequestTimedOut") onTimeout(widgetId, report.action, report.requestId)
    }
  })

/** Registers widget `id` of `roomId` (a websocket widget at `https://widgethost.invalid/{page}`) on `ws`; the URI it connects to. */
export const registerSimWidget = (ws: WebsocketTransport, engine: Engine, widget: { readonly id: string; readonly roomId: string; readonly name: string; readonly page: string }): string => {
  const parsed = parseWidgetDefinition({
    source: "config",
    id: widget.id,
    roomId: widget.roomId,
    content: { type: "m.custom", url: `https://widgethost.invalid/${widget.page}#ws=$matrix_websocket_uri`, name: widget.name, data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }
  })
  if (Result.isFailure(parsed)) throw new SimulationError(`widget definition ${widget.id}: ${parsed.failure.detail}`)
  const definition = parsed.success
  return ws.register(widget.id, (send) => engine.openSession({ widget: definition, send, waitForIframeLoad: false, transport: "m.websockets" })).uri
}
