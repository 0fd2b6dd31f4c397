/**
 * The HTTP side of a websocket connection: widget URIs carry a secret token (kept only as its
 * SHA-256 digest), an upgrade is admitted by token, origin and whether its widget is already
 * connected, refused upgrades get a plain HTTP answer, and close reasons fit the frame.
 */
import { createHash } from "node:crypto"
import { type IncomingMessage, STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import type { LifecycleConfig } from "./registration-lifecycle.ts"
import type { Registration } from "./registration.ts"
import type { RefusalReason } from "./transport-types.ts"

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

/** An upgrade request's verdict: the registration it reaches, or why not and the HTTP status that says so. */
export type Admission =
  | { readonly reg: Registration; readonly origin: string | undefined }
  | { readonly refused: RefusalReason; readonly status: number }

/**
 * Checks an upgrade request, in order: a registered token (401), an allowed origin when the
 * request has one (403), and no live link when duplicates are refused (409).
 */
export const admitUpgrade = (
  req: IncomingMessage,
  registrations: ReadonlyMap<string, Registration>,
  allowedOrigins: ReadonlySet<string>,
  onDuplicate: LifecycleConfig["onDuplicate"]
): Admission => {
  const path = new URL(req.url ?? "/", "http://host").pathname
  const token = path.startsWith(PATH_PREFIX) ? path.slice(PATH_PREFIX.length) : ""
  const reg = TOKEN_PATTERN.test(token) ? registrations.get(digestOf(token)) : undefined
  if (reg === undefined) return { refused: "token", status: 401 }
  const origin = req.headers.origin
  if (origin !== undefined && !(allowedOrigins.has(origin) || reg.origins.has(origin))) return { refused: "origin", status: 403 }
  if (reg.link !== undefined && onDuplicate === "refuse") return { refused: "duplicate", status: 409 }
  return { reg, origin }
}
