import { isObject, type RawEvent } from "./crypto.ts"

/**
 * Reading untrusted homeserver JSON without throwing: each helper answers with an empty value
 * where the shape is not what the spec says, so a malformed section is skipped, never fatal.
 */

export { isObject }

export const arrayOf = (v: unknown): ReadonlyArray<unknown> => (Array.isArray(v) ? v : [])

/** The `events` of a section such as `timeline`, `state` or `to_device`: only the objects. */
export const eventsOf = (section: unknown): ReadonlyArray<RawEvent> => (isObject(section) ? arrayOf(section["events"]).filter(isObject) : [])

export const stringsOf = (v: unknown): ReadonlyArray<string> => arrayOf(v).filter((x): x is string => typeof x === "string")
