/**
 * The console's message-log filters, as query parameters of the log routes:
 *   widget=ID        only traffic of sessions of that widget
 *   action=A[,B]     only messages with one of these actions (the parameter may repeat)
 *   direction=in|out only what the widget sent (`in`) or what the host sent (`out`)
 *   errors=1         only error answers (`response.error`), either way
 * A value outside these is a 400 naming the parameter, never an empty answer that looks like "no traffic".
 */
import type { LogEntry } from "./message-log.ts"

export interface LogFilter {
  readonly widget?: string
  readonly actions?: ReadonlySet<string>
  readonly direction?: "in" | "out"
  readonly errorsOnly: boolean
}

export type ParsedLogFilter = { readonly ok: true; readonly filter: LogFilter } | { readonly ok: false; readonly issue: string }

const FLAG_VALUES: Readonly<Record<string, boolean>> = { "1": true, true: true, "0": false, false: false }

export const parseLogFilter = (params: URLSearchParams): ParsedLogFilter => {
  const widget = params.get("widget") ?? undefined
  if (widget === "") return { ok: false, issue: "widget: expected a widget id" }
  const actions = params
    .getAll("action")
    .flatMap((value) => value.split(","))
    .map((value) => value.trim())
  if (actions.some((action) => action === "")) return { ok: false, issue: "action: expected one or more action names, separated by commas" }
  const direction = params.get("direction") ?? undefined
  if (direction !== undefined && direction !== "in" && direction !== "out") return { ok: false, issue: `direction: expected "in" or "out", got ${JSON.stringify(direction)}` }
  const errors = params.get("errors") ?? undefined
  const errorsOnly = errors === undefined ? false : FLAG_VALUES[errors]
  if (errorsOnly === undefined) return { ok: false, issue: `errors: expected 1 or 0, got ${JSON.stringify(errors)}` }
  return {
    ok: true,
    filter: {
      errorsOnly,
      ...(widget === undefined ? {} : { widget }),
      ...(actions.length === 0 ? {} : { actions: new Set(actions) }),
      ...(direction === undefined ? {} : { direction })
    }
  }
}

const field = (message: unknown, key: string): unknown => (typeof message === "object" && message !== null ? (message as Record<string, unknown>)[key] : undefined)

/** A Widget API error answer: `{ response: { error: { message } } }`, from either side. */
export const isErrorAnswer = (message: unknown): boolean => {
  const error = field(field(message, "response"), "error")
  return typeof error === "object" && error !== null
}

/**
 * Whether an entry passes the filter. `sessionWidget` is the widget of the session the entry is
 * from; a message's own `widgetId` is only a fallback, since a widget can write any id there.
 */
export const matchesLogFilter = (entry: LogEntry, filter: LogFilter, sessionWidget: string | undefined): boolean => {
  if (filter.direction !== undefined && entry.direction !== filter.direction) return false
  if (filter.widget !== undefined && (sessionWidget ?? field(entry.message, "widgetId")) !== filter.widget) return false
  if (filter.actions !== undefined) {
    const action = field(entry.message, "action")
    if (typeof action !== "string" || !filter.actions.has(action)) return false
  }
  if (filter.errorsOnly && !isErrorAnswer(entry.message)) return false
  return true
}
