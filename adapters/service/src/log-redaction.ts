/**
 * What the console's message log and the service's logs keep of a message by default: its shape
 * (action, type, room, sender, ids, sizes), never what people wrote or the secrets that pass
 * through the host. An operator who needs the bodies opts in (`--log-content`, `"logContent": true`).
 *
 * The Widget API puts people's words and secrets under a few well-known keys, at any depth
 * (a `send_event` request's `data.content`, a `read_events` answer's `events[].content`, a
 * `send_to_device`'s `messages`, `get_openid`'s `access_token`, `update_turn_servers`'
 * `password`, `upload_file`'s `file`), so redaction goes by key wherever it appears: a new
 * action carrying the same fields is covered without a table of actions.
 */

/** Where a redacted value stood. `bytes` is the size of its JSON, so an operator still sees how much went by. */
export interface Redacted {
  readonly "io.widgethost.redacted": true
  readonly bytes: number
}

/** What people wrote: replaced by its size. `prev_content` rides in `unsigned` of state events. */
const CONTENT_KEYS: ReadonlySet<string> = new Set(["content", "prev_content", "file"])

/**
 * Secrets: replaced without a size (a token's length says something about its kind). `token` and
 * `password` cover the homeserver's login and registration bodies and `update_turn_servers`;
 * `credential` is the WebRTC spelling of a TURN password.
 */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  "access_token",
  "accessToken",
  "refresh_token",
  "refreshToken",
  "token",
  "password",
  "credential",
  "registrationToken",
  "registration_token"
])

export const REDACTED_SECRET = "io.widgethost.redacted"

/** Deep enough for any Widget API message; deeper parts are cut rather than walked (a hostile message must not cost the host a deep recursion). */
const MAX_DEPTH = 32

const sizeOf = (value: unknown): number => {
  try {
    const text = JSON.stringify(value)
    return text === undefined ? 0 : Buffer.byteLength(text)
  } catch {
    return 0
  }
}

const redactedContent = (value: unknown): Redacted => ({ "io.widgethost.redacted": true, bytes: sizeOf(value) })

/**
 * `send_to_device`'s `messages`, `{ user: { device: content } }`: who it went to stays visible,
 * each device's content becomes its size.
 */
const redactedRecipients = (messages: unknown): unknown => {
  if (typeof messages !== "object" || messages === null || Array.isArray(messages)) return redactedContent(messages)
  const out: Record<string, unknown> = {}
  for (const [user, devices] of Object.entries(messages)) {
    if (typeof devices !== "object" || devices === null || Array.isArray(devices)) out[user] = redactedContent(devices)
    else out[user] = Object.fromEntries(Object.entries(devices as Record<string, unknown>).map(([device, content]) => [device, redactedContent(content)]))
  }
  return out
}

/** What a message that cannot be serialised is logged as (message-log.ts keeps it as it is). */
export const UNSERIALISABLE: Readonly<Record<string, true>> = Object.freeze({ "io.widgethost.unserialisable": true })

/** A cyclic message cannot be serialised either; the log keeps the same marker it keeps for that. */
class CycleError extends Error {}

const walk = (value: unknown, depth: number, seen: Set<object>): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (seen.has(value)) throw new CycleError()
  if (depth > MAX_DEPTH) return { "io.widgethost.redacted": true, bytes: 0 }
  seen.add(value)
  try {
    if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, seen))
    const out: Record<string, unknown> = {}
    for (const [key, field] of Object.entries(value)) {
      if (SECRET_KEYS.has(key)) out[key] = REDACTED_SECRET
      else if (CONTENT_KEYS.has(key)) out[key] = redactedContent(field)
      else if (key === "messages") out[key] = redactedRecipients(field)
      else out[key] = walk(field, depth + 1, seen)
    }
    return out
  } finally {
    seen.delete(value)
  }
}

/**
 * A copy of `message` with contents replaced by their size and secrets by a marker; the input is
 * not changed. Anything that is not an object passes as it is; a cyclic one becomes the marker
 * `{ "io.widgethost.unserialisable": true }`.
 *
 * @example
 * redactMessage({ action: "send_event", data: { type: "m.room.message", content: { body: "hi" } } })
 * // { action: "send_event", data: { type: "m.room.message", content: { "io.widgethost.redacted": true, bytes: 13 } } }
 */
export const redactMessage = (message: unknown): unknown => {
  try {
    return walk(message, 0, new Set())
  } catch (error) {
    if (error instanceof CycleError) return UNSERIALISABLE
    throw error
  }
}

/** Log fields as the service writes them: the same redaction, unless the operator opted in. */
export const redactFields = (fields: Readonly<Record<string, unknown>>): Record<string, unknown> => redactMessage(fields) as Record<string, unknown>
