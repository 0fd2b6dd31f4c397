/**
 * The admin server's HTTP plumbing (admin.ts routes): JSON answers with the headers every answer
 * carries, errors as `{ error: { code, message } }` with the status their code names, bounded
 * JSON bodies, path segments, and what a route is.
 */
import type { IncomingMessage, ServerResponse } from "node:http"

export type ErrorCode = "Unauthorized" | "NotFound" | "MethodNotAllowed" | "Conflict" | "BadRequest" | "PayloadTooLarge" | "Unavailable" | "Internal"
const statusOf: Record<ErrorCode, number> = {
  BadRequest: 400,
  Conflict: 409,
  Unauthorized: 401,
  NotFound: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  Internal: 500,
  Unavailable: 503
}

export const BASE_HEADERS = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer"
} as const

export const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...BASE_HEADERS, "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

export const sendError = (res: ServerResponse, code: ErrorCode, message: string, headers: Record<string, string> = {}, detail: Record<string, string> = {}) =>
  sendJson(res, statusOf[code], { error: { code, message, ...detail } }, headers)

/** A route: which methods it has, whether it takes `?token=`, and its handler. */
export interface Route {
  readonly methods: ReadonlyArray<string>
  readonly queryToken: boolean
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<void> | void
}

export class BodyError extends Error {
  constructor(readonly code: "BadRequest" | "PayloadTooLarge", message: string) {
    super(message)
  }
}

export const readJson = (req: IncomingMessage, maxBytes: number): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"])
    if (Number.isFinite(declared) && declared > maxBytes) return reject(new BodyError("PayloadTooLarge", `the body is larger than ${maxBytes} bytes`))
    const chunks: Buffer[] = []
    let size = 0
    let failed = false
    req.on("data", (chunk: Buffer) => {
      if (failed) return
      size += chunk.length
      if (size > maxBytes) {
        failed = true
        chunks.length = 0
        return reject(new BodyError("PayloadTooLarge", `the body is larger than ${maxBytes} bytes`))
      }
      chunks.push(chunk)
    })
    req.on("error", (error) => reject(error))
    req.on("end", () => {
      if (failed) return
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")))
      } catch {
        reject(new BodyError("BadRequest", "the body is not valid JSON"))
      }
    })
  })

/** Decodes one path segment; malformed percent-encoding is `undefined`. */
export const segment = (raw: string): string | undefined => {
  try {
    return decodeURIComponent(raw)
  } catch {
    return undefined
  }
}
