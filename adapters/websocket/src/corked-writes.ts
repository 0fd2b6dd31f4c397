import type { Socket } from "node:net"
import type { WebSocket } from "ws"

/**
 * Frames sent to one socket within a turn of the event loop leave in one `writev`: the first
 * send of the turn corks the socket, and one `setImmediate` uncorks every socket corked in the
 * turn (after the promise jobs that deliver a sync batch's events, so a batch's messages to one
 * widget go together). ws corks only around each frame's own header and payload, so without
 * this every message was a system call: `writev` was a quarter of a `simulate` run's CPU, with
 * a sync batch of several events going to each of 100 widgets and each widget answering each.
 * ws keeps its net socket in `_socket` (not part of its typings); a socket without one is
 * written as ws writes it.
 */
const corked = new Set<Socket>()
let scheduled = false

const uncorkAll = () => {
  scheduled = false
  for (const socket of corked) socket.uncork()
  corked.clear()
}

/** Call right before `ws.send`: the send is held until the end of this turn. */
export const corkForThisTurn = (ws: WebSocket): void => {
  const socket = (ws as unknown as { readonly _socket?: Socket })._socket
  if (socket === undefined || socket.destroyed || corked.has(socket)) return
  socket.cork()
  corked.add(socket)
  if (!scheduled) {
    scheduled = true
    setImmediate(uncorkAll)
  }
}
