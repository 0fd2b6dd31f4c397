/**
 * The admin API's event stream (`GET /api/events`, Server-Sent Events): `ready` once per
 * connection, then the model's changes coalesced into one `change` per kind and session, a
 * keep-alive comment on idle streams, and a bound on how many streams and how much backlog each.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AdminChange, AdminModel } from "./admin.ts"
import { BASE_HEADERS, sendError } from "./admin-http.ts"

const MAX_STREAM_BACKLOG_BYTES = 256 * 1024

export interface ChangeStreamOptions {
  readonly model: AdminModel
  readonly maxEventStreams: number
  readonly coalesceMs: number
  readonly heartbeatMs: number
}

export interface ChangeStreams {
  /** Answers `GET /api/events`: a new stream, or 503 past `maxEventStreams`. */
  readonly open: (req: IncomingMessage, res: ServerResponse) => void
  /** Stops listening to the model and ends every stream. */
  readonly close: () => void
}

/** Listens to the model's changes from now until `close`. */
export const startChangeStreams = (options: ChangeStreamOptions): ChangeStreams => {
  const { model, maxEventStreams, coalesceMs, heartbeatMs } = options

  const streams = new Set<ServerResponse>()
  /** A console that stops reading must not make the host buffer changes for it forever. */
  const write = (res: ServerResponse, text: string) => {
    if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) {
      streams.delete(res)
      return void res.destroy()
    }
    res.write(text)
  }
  let pending = new Map<string, AdminChange>()
  let flushTimer: NodeJS.Timeout | undefined
  const flush = () => {
    flushTimer = undefined
    const changes = [...pending.values()]
    pending = new Map()
    if (changes.length === 0) return
    const text = changes.map((change) => `event: change\ndata: ${JSON.stringify(change)}\n\n`).join("")
    for (const res of [...streams]) write(res, text)
  }
  const notify = (change: AdminChange) => {
    if (streams.size === 0) return
    const key = `${change.kind}\u0000${change.sessionId ?? ""}`
    if (!pending.has(key)) pending.set(key, change.sessionId === undefined ? { kind: change.kind } : { kind: change.kind, sessionId: change.sessionId })
    flushTimer ??= setTimeout(flush, coalesceMs)
  }
  const unsubscribe = [model.onChange(notify), model.approvals.onChange(() => notify({ kind: "approvals" }))]
  const heartbeat = setInterval(() => {
    for (const res of [...streams]) write(res, ": keep-alive\n\n")
  }, heartbeatMs)
  heartbeat.unref()

  const openStream = (req: IncomingMessage, res: ServerResponse) => {
    if (streams.size >= maxEventStreams) return sendError(res, "Unavailable", `at most ${maxEventStreams} event streams at once`, { "Retry-After": "5" })
    res.writeHead(200, { ...BASE_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive", "X-Accel-Buffering": "no" })
    res.write("retry: 2000\n\nevent: ready\ndata: {}\n\n")
    streams.add(res)
    req.socket.setTimeout(0)
    res.on("close", () => streams.delete(res))
  }

  const close = () => {
    for (const stop of unsubscribe) stop()
    clearInterval(heartbeat)
    if (flushTimer !== undefined) clearTimeout(flushTimer)
    for (const res of streams) res.end()
    streams.clear()
  }

  return { open: openStream, close }
}
