import { badJson, invalidParam, missingParam, notJson } from "./errors.ts"

/**
 * Request bodies and query strings are untrusted: these helpers read one field each and throw
 * the spec's 400 (`M_BAD_JSON`, `M_MISSING_PARAM`, `M_INVALID_PARAM`) instead of letting a wrong
 * type travel into the store, where it would be journaled and replayed forever.
 */
export type JsonObject = Record<string, unknown>

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Deeper nesting than this is refused: recursive walkers (redaction, size checks) must not overflow the stack. */
const MAX_DEPTH = 64

/**
 * Parses a request body. An empty body reads as `{}` (matrix-js-sdk and others send none on
 * `POST /logout` or `/join`).
 *
 * @example parseBody(Buffer.from('{"a":1}')) // { a: 1 }
 */
export const parseBody = (raw: Buffer): unknown => {
  if (raw.length === 0) return {}
  let value: unknown
  try {
    value = JSON.parse(raw.toString("utf8"))
  } catch {
    throw notJson("Content not JSON.")
  }
  if (depth(value) > MAX_DEPTH) throw badJson(`JSON nested deeper than ${MAX_DEPTH} levels.`)
  return value
}

/** Iterative, so a hostile 1 MiB `[[[[...]]]]` cannot overflow the stack while being measured. */
const depth = (root: unknown): number => {
  let max = 0
  const stack: Array<[unknown, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [value, d] = stack.pop()!
    if (typeof value !== "object" || value === null) continue
    if (d > max) max = d
    if (max > MAX_DEPTH) return max
    for (const child of Array.isArray(value) ? value : Object.values(value)) stack.push([child, d + 1])
  }
  return max
}

export const asObject = (value: unknown, what = "Content"): JsonObject => {
  if (!isObject(value)) throw badJson(`${what} must be a JSON object.`)
  return value
}

export const optString = (o: JsonObject, key: string): string | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "string") throw badJson(`'${key}' must be a string.`)
  return v
}

export const reqString = (o: JsonObject, key: string): string => {
  const v = optString(o, key)
  if (v === undefined) throw missingParam(`Missing '${key}'.`)
  return v
}

export const optBoolean = (o: JsonObject, key: string): boolean | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "boolean") throw badJson(`'${key}' must be a boolean.`)
  return v
}

export const optNumber = (o: JsonObject, key: string): number | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== "number" || !Number.isFinite(v)) throw badJson(`'${key}' must be a number.`)
  return v
}

export const optObject = (o: JsonObject, key: string): JsonObject | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) throw badJson(`'${key}' must be an object.`)
  return v
}

export const optArray = (o: JsonObject, key: string): ReadonlyArray<unknown> | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v)) throw badJson(`'${key}' must be an array.`)
  return v as ReadonlyArray<unknown>
}

export const optStringArray = (o: JsonObject, key: string): ReadonlyArray<string> | undefined => {
  const v = optArray(o, key)
  if (v === undefined) return undefined
  if (!v.every((x) => typeof x === "string")) throw badJson(`'${key}' must be an array of strings.`)
  return v
}

/** A non-negative integer query parameter, e.g. `limit` or `timeout`. */
export const queryInt = (query: URLSearchParams, key: string): number | undefined => {
  const v = query.get(key)
  if (v === null || v === "") return undefined
  if (!/^\d{1,15}$/.test(v)) throw invalidParam(`Query parameter '${key}' must be a non-negative integer.`)
  return Number(v)
}

/** A JSON-valued query parameter (`filter`), decoded with the same rules as a body. */
export const queryJson = (query: URLSearchParams, key: string): JsonObject | undefined => {
  const v = query.get(key)
  if (v === null || v === "") return undefined
  return asObject(parseBody(Buffer.from(v, "utf8")), `Query parameter '${key}'`)
}
