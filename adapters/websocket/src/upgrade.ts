/**
 * The HTTP side of a websocket connection: widget URIs carry a secret token (kept only as its
 * SHA-256 digest), refused upgrades get a plain HTTP answer, and close reasons fit the frame.
 */
import { createHash } from "node:crypto"
import { STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"

export const PATH_PREFIX = "/widget/"
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

export const digestOf = (token: string) => createHash("sha256").update(token).digest("base64url")

/** Close reasons are limited to 123 bytes of UTF-8. */
export const clampReason = (reason: string) => {
  let out = reason
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1)
  return out
}

/** Answers an upgrade request with a plain HTTP error, as ws's `abortHandshake` does. */
export const refuseUpgrade = (socket: Duplex, status: number) => {
  const body = STATUS_CODES[status] ?? "Refused"
  socket.once("finish", () => socket.destroy())
  socket.end(
    `HTTP/1.1 ${status} ${body}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}
