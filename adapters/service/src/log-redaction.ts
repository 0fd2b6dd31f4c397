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
 *
 * Secrets also travel inside free text (an error quoting a URL with `?access_token=`, a header
 * echoed in a message, a TURN URI with its password), so every string that stays is scrubbed by
 * pattern too ({@link scrubSecrets}).
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

/** Query, form and `key: value` parameters whose value is a secret (as in `?access_token=…`). */
const SECRET_PARAM = String.raw`access_token|refresh_token|login_token|loginToken|token|password|passwd|secret|client_secret|credential|registration_token|api_key|apikey`

/**
 * One secret shape {@link scrubSecrets} replaces: `pattern` keeps what names the secret (the
 * parameter, the scheme, the user) and replaces only the secret itself. `screen` (and `needs`, a
 * substring, when given) matches in every text `pattern` matches in: a necessary condition, never a
 * weaker rule, cheap enough to try on every id, type and action, and linear in the text's length.
 */
interface SecretShape {
  readonly pattern: RegExp
  readonly replacement: string
  readonly screen: RegExp
  readonly needs?: string
}

/** In the order they are applied. */
const SECRET_SHAPES: ReadonlyArray<SecretShape> = [
  // `"access_token": "…"`: JSON quoted inside a string (an error body, a logged request).
  // Every name in SECRET_PARAM ends in token, passw(or)d, secret, credential or api(_)key.
  {
    pattern: new RegExp(String.raw`("(?:${SECRET_PARAM})"\s*:\s*")(?:[^"\\]|\\.)*"`, "gi"),
    replacement: `$1${REDACTED_SECRET}"`,
    screen: /(?:token|passw(?:or)?d|secret|credential|api_?key)"/i
  },
  // `?access_token=…`, `&password=…`, `token=…` in URLs, forms and `k=v` log text.
  {
    pattern: new RegExp(String.raw`(?<![A-Za-z0-9_])((?:${SECRET_PARAM})=)[^&#\s"',;]+`, "gi"),
    replacement: `$1${REDACTED_SECRET}`,
    screen: /(?:token|passw(?:or)?d|secret|credential|api_?key)=/i
  },
  // `Authorization: Bearer …`, `Basic …` (with or without the header's name).
  { pattern: /\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]+/gi, replacement: `$1$2${REDACTED_SECRET}`, screen: /\b(?:bearer|basic)\s/i },
  // `Authorization: <raw token>` without a scheme.
  { pattern: /\b(authorization"?\s*[:=]\s*"?)(?!Bearer\b|Basic\b)[^\s"',;]+/gi, replacement: `$1${REDACTED_SECRET}`, screen: /authorization/i },
  // Access and refresh tokens of Synapse (`syt_`, `syr_`) and MAS (`mat_`, `mar_`, `mct_`), and old macaroons.
  { pattern: /\b(?:sy[tr]|ma[tr]|mc[tr])_[A-Za-z0-9_-]{8,}/g, replacement: REDACTED_SECRET, screen: /\b(?:sy[tr]|ma[tr]|mc[tr])_/ },
  { pattern: /\bMDAx[A-Za-z0-9+/=_-]{20,}/g, replacement: REDACTED_SECRET, screen: /\bMDAx/ },
  // A password in a URI's user info: `turn:user:secret@host`, `https://user:secret@host`.
  // Linear in hostile input, which a widget can put in a log line: the `@` is a substring test
  // (a screen scanning from each `turn:` to an `@` that is not there is quadratic), a scheme is
  // only tried where a run of scheme characters begins (from every `.` of `a.a.a.…` it was), and
  // user and password are at most 1,024 characters, so a failed try scans a bounded stretch.
  {
    pattern: /\b((?:turns?|stuns?):[^\s:@/?]{1,1024}|(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*:\/\/[^\s:@/?]{1,1024}):[^\s@/?]{1,1024}@/gi,
    replacement: `$1:${REDACTED_SECRET}@`,
    screen: /\b(?:turn|stun)s?:|:\/\//i,
    needs: "@"
  }
]

const screens = (shape: SecretShape, text: string): boolean => (shape.needs === undefined || text.includes(shape.needs)) && shape.screen.test(text)

/**
 * The screens of the shapes without `needs`, in one test; with {@link SHAPES_WITH_NEEDS} screened
 * too, a string that fails holds no secret any pattern would find, so it is kept as it is without
 * a single replace (nearly every id, type, action and the marker itself, so a redacted string is
 * not scrubbed again).
 */
const MIGHT_HOLD_SECRET = new RegExp(
  SECRET_SHAPES.filter((shape) => shape.needs === undefined)
    .map((shape) => `(?:${shape.screen.source})`)
    .join("|"),
  "i"
)
const SHAPES_WITH_NEEDS = SECRET_SHAPES.filter((shape) => shape.needs !== undefined)

const mightHoldSecret = (text: string): boolean => {
  if (MIGHT_HOLD_SECRET.test(text)) return true
  for (const shape of SHAPES_WITH_NEEDS) if (screens(shape, text)) return true
  return false
}

/** Shorter than the shortest text any pattern matches (`token=x`, `Basic x`). */
const SHORTEST_SECRET = 7

/**
 * `text` with the secrets it quotes replaced by the marker: tokens in URLs and parameters,
 * `Authorization` values, Matrix access tokens by their shape, passwords in URIs.
 *
 * @example
 * scrubSecrets("GET /sync?since=s1&access_token=syt_abc_def_123 failed") // "GET /sync?since=s1&access_token=io.widgethost.redacted failed"
 */
export const scrubSecrets = (text: string): string => {
  if (text.length < SHORTEST_SECRET || !mightHoldSecret(text)) return text
  let out = text
  // a pattern that matched changes the text the next ones see, so each screens what it is given
  for (const shape of SECRET_SHAPES) if (screens(shape, out)) out = out.replace(shape.pattern, shape.replacement)
  return out
}

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
  if (typeof value === "string") return scrubSecrets(value)
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
 * A copy of `message` with contents replaced by their size and secrets by a marker (by key, and
 * inside strings by pattern); the input is not changed. Other values pass as they are; a cyclic one becomes the marker
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
