/**
 * matrix-widget-api's reference host, `ClientWidgetApi`, behind a websocket (test only): each
 * connection gets a fresh host page and iframe (fake windows, test/bench/fake-window.ts), a
 * `ClientWidgetApi` on them with a driver that approves what it is asked and answers at once,
 * and the socket's frames posted from the iframe's window to the host page, and back. So tools
 * that speak MSC3009 (`widgethost conform host`) can drive the reference as they drive us.
 * Needs `Promise.withResolvers` on Node 20: callers polyfill it (see `polyfillWithResolvers`).
 */
import { ClientWidgetApi, type IRoomEvent, type ISendEventDetails, Widget, WidgetDriver } from "matrix-widget-api"
import { WebSocketServer } from "ws"
import { asGlobalWindow, FakeFrame, FakeWindow } from "../bench/fake-window.ts"

const HOST_ORIGIN = "https://client.example.org"
const WIDGET_ORIGIN = "https://widget.example.org"

/** Element Web's driver without Element: approves every capability, sends at once, reads nothing. */
class ApproveAllDriver extends WidgetDriver {
  private counter = 0
  constructor(private readonly roomId: string) {
    super()
  }
  override validateCapabilities(requested: Set<string>): Promise<Set<string>> {
    return Promise.resolve(requested)
  }
  override sendEvent(_type: string, _content: unknown, _stateKey: string | null = null, roomId: string | null = null): Promise<ISendEventDetails> {
    return Promise.resolve({ roomId: roomId ?? this.roomId, eventId: `$ref${this.counter++}` })
  }
  override readRoomTimeline(): Promise<IRoomEvent[]> {
    return Promise.resolve([])
  }
  override readRoomState(): Promise<IRoomEvent[]> {
    return Promise.resolve([])
  }
  override getKnownRooms(): string[] {
    return [this.roomId]
  }
}

export interface ReferenceBridge {
  readonly uri: string
  /** Connections served so far. */
  readonly connections: () => number
  readonly close: () => Promise<void>
}

/** Node 20 has no `Promise.withResolvers`; matrix-widget-api calls it. For tests only. */
export const polyfillWithResolvers = (): void => {
  const P = Promise as unknown as { withResolvers?: () => unknown }
  P.withResolvers ??= () => {
    let resolve!: (value: unknown) => void
    let reject!: (reason: unknown) => void
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    return { promise, resolve, reject }
  }
}

export const startReferenceBridge = async (options: { readonly widgetId: string; readonly roomId: string }): Promise<ReferenceBridge> => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((resolve) => server.once("listening", resolve))
  let connections = 0
  server.on("connection", (socket) => {
    connections++
    const host = new FakeWindow(HOST_ORIGIN)
    const frameWindow = new FakeWindow(WIDGET_ORIGIN, host)
    const frame = new FakeFrame(frameWindow)
    // MSC3009: a websocket widget speaks first, as a `waitForIframeLoad: false` widget does.
    const widget = new Widget({ id: options.widgetId, creatorUserId: "@reference:localhost", type: "m.custom", url: `${WIDGET_ORIGIN}/index.html`, waitForIframeLoad: false, data: {} })
    const api = asGlobalWindow(host, undefined, () => new ClientWidgetApi(widget, frame as unknown as HTMLIFrameElement, new ApproveAllDriver(options.roomId)))
    api.setViewedRoomId(options.roomId)
    // What the host page posts into the iframe goes down the socket.
    frameWindow.addEventListener("message", (event) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(event.data))
    })
    const toHost = frameWindow.parentProxy()
    socket.on("message", (data) => {
      let message: unknown
      try {
        message = JSON.parse((data as Buffer).toString())
      } catch {
        return // the reference never sees what is not JSON (a browser would not post it either)
      }
      toHost.postMessage(message, HOST_ORIGIN)
    })
    socket.on("close", () => asGlobalWindow(host, undefined, () => api.stop()))
    frame.load()
  })
  return {
    uri: `ws://127.0.0.1:${(server.address() as { port: number }).port}/`,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate()
        server.close(() => resolve())
      })
  }
}
