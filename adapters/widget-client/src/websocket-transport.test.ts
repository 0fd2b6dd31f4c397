/**
 * The websocket transport against a host that speaks the moment the connection opens: what it
 * sends before the widget has a listener waits for the first one, in order, instead of being lost.
 */
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import { afterEach, expect, it } from "vitest"
import { type WebSocketConstructor, websocketTransport } from "./widget-transport.ts"

let server: WebSocketServer | undefined
afterEach(async () => {
  for (const client of server?.clients ?? []) client.terminate()
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))
  server = undefined
})

it("keeps what the host sends on connection for the first listener, in order", async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((resolve) => server!.once("listening", resolve))
  server.on("connection", (socket) => {
    socket.send(JSON.stringify({ n: 1 }))
    socket.send(JSON.stringify({ n: 2 }))
  })
  const transport = await websocketTransport(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { WebSocket: WebSocket as unknown as WebSocketConstructor })
  // Long enough for both to have arrived before anyone listens.
  await new Promise((resolve) => setTimeout(resolve, 100))
  const heard: unknown[] = []
  transport.onMessage((message) => heard.push(message))
  await expect.poll(() => heard).toEqual([{ n: 1 }, { n: 2 }])
  transport.close()
})
