/**
 * The admin API's log routes, filtered by log-filter.ts:
 *   GET /api/sessions/{id}/log?…  { sessionId, redacted, entries: [{ at, direction, message }] }
 *   GET /api/log?…                { redacted, entries: [{ sessionId, at, direction, message }] }:
 *                                 every live session's log merged oldest first, the newest
 *                                 `MAX_MERGED_ENTRIES` of them (with `widget=`, one widget's sessions)
 * `redacted` says whether contents and secrets are hidden (the default; `--log-content` shows them).
 */
import type { AdminModel } from "./admin.ts"
import { matchesLogFilter, parseLogFilter } from "./log-filter.ts"

/** Bounds one answer of the merged log: sessions × ring capacity could be large. */
export const MAX_MERGED_ENTRIES = 1000

export type LogAnswer =
  | { readonly _tag: "Ok"; readonly body: Record<string, unknown> }
  | { readonly _tag: "BadRequest"; readonly message: string }
  | { readonly _tag: "NotFound"; readonly message: string }

type LogModel = Pick<AdminModel, "messageLog" | "sessions" | "logsContent">

/** One session's log; 404 when it has neither a log nor a live session. */
export const sessionLogAnswer = (model: LogModel, sessionId: string, params: URLSearchParams): LogAnswer => {
  const parsed = parseLogFilter(params)
  if (!parsed.ok) return { _tag: "BadRequest", message: parsed.issue }
  const entries = model.messageLog(sessionId)
  const session = model.sessions().find((s) => s.sessionId === sessionId)
  if (entries.length === 0 && session === undefined) return { _tag: "NotFound", message: `no session ${JSON.stringify(sessionId)}` }
  return {
    _tag: "Ok",
    body: { sessionId, redacted: model.logsContent !== true, entries: entries.filter((entry) => matchesLogFilter(entry, parsed.filter, session?.widgetId)) }
  }
}

/** Every live session's log, merged by time; the newest entries win when there are too many. */
export const mergedLogAnswer = (model: LogModel, params: URLSearchParams): LogAnswer => {
  const parsed = parseLogFilter(params)
  if (!parsed.ok) return { _tag: "BadRequest", message: parsed.issue }
  const { filter } = parsed
  const merged = model
    .sessions()
    .filter((session) => filter.widget === undefined || session.widgetId === filter.widget)
    .flatMap((session) =>
      model
        .messageLog(session.sessionId)
        .filter((entry) => matchesLogFilter(entry, filter, session.widgetId))
        .map((entry) => ({ sessionId: session.sessionId, ...entry }))
    )
  // a stable sort: within one session the ring's order stands
  merged.sort((a, b) => a.at - b.at)
  return { _tag: "Ok", body: { redacted: model.logsContent !== true, entries: merged.slice(-MAX_MERGED_ENTRIES) } }
}
