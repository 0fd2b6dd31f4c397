import type { Socket } from "node:net"
import { afterEach, assert, describe, it } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import { corkForThisTurn } from "./corked-writes.ts"

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

const pair = async () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  cleanups.push(() => server.close())
  await new Promise((resolve) => server.once("listening", resolve))
  const received: Array<string> = []
  server.on("connection", (peer) => peer.on("message", (data) => received.push((data as Buffer).toString())))
  const { port } = server.address() as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}`)
  cleanups.push(() => ws.terminate())
  await new Promise((resolve) => ws.once("open", resolve))
  // Counts the socket's writes to the OS (one per writev or write).
  const socket = (ws as unknown as { _socket: Socket & { _writev: (...a: Array<unknown>) => void; _write: (...a: Array<unknown>) => void } })._socket
  let writes = 0
  for (const name of ["_writev", "_write"] as const) {
    const original = socket[name].bind(socket)
    socket[name] = (...a: Array<unknown>) => {
      writes++
      original(...a)
    }
  }
  const until = async (n: number) => {
    while (received.length < n) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return { ws, received, until, writes: () => writes }
}

describe("corkForThisTurn", () => {
  it("frames sent in one turn leave in one write, in order", async () => {
    const { ws, received, until, writes } = await pair()
    for (const m of ["a", "b", "c"]) {
      corkForThisTurn(ws)
      ws.send(m)
    }
    await until(3)
    assert.deepEqual(received, ["a", "b", "c"])
    assert.equal(writes(), 1)
  })

  it("without it each frame is its own write (what the cork saves)", async () => {
    const { ws, until, writes } = await pair()
    for (const m of ["a", "b", "c"]) ws.send(m)
    await until(3)
    // Usually 3; fewer only when the OS made an earlier write wait and Node merged the rest.
    assert.isAbove(writes(), 1)
  })

  it("a later turn corks again; a closed socket is written as ws writes it", async () => {
    const { ws, received, until } = await pair()
    corkForThisTurn(ws)
    ws.send("one")
    await until(1)
    corkForThisTurn(ws)
    ws.send("two")
    await until(2)
    assert.deepEqual(received, ["one", "two"])
    ws.terminate()
    corkForThisTurn(ws)
  })
})
