import type { WidgetRequest, WidgetResponse } from "./envelope.ts"
import { isObject } from "./is-object.ts"

/**
 * What an untrusted inbound message turned out to be. Decoding never throws.
 * - `Request` / `Response`: well-formed.
 * - `Invalid`: identifiable (it has a request id) but wrong: answer it with an error response
 *   (echoing `raw`, which is the envelope alone when the body itself cannot be handled).
 * - `Dropped`: not even identifiable: nothing can be answered, so count it and move on.
 */
export type Decoded =
  | { readonly _tag: "Request"; readonly request: WidgetRequest; readonly raw: Readonly<Record<string, unknown>> }
  | { readonly _tag: "Response"; readonly response: WidgetResponse }
  | { readonly _tag: "Invalid"; readonly raw: Readonly<Record<string, unknown>>; readonly issue: string }
  | { readonly _tag: "Dropped"; readonly reason: DropReason }

export type DropReason = "not-json" | "not-an-object" | "no-request-id" | "response-without-request" | "bad-response"


/**
 * Bounds on a request (its `data` above all). JSON allows any nesting, but what we do with data (echo it in a
 * reply, serialise it for a websocket frame or the homeserver) recurses, and a deep enough value
 * overflows the stack there, after the request was accepted: the widget then never gets an
 * answer. No Matrix event comes near these (an event is at most 64 KiB). The object and array
 * count also bounds a structured-cloned value that shares one object many times (postMessage
 * keeps shared references and cycles), whose serialisation would be exponentially large.
 */
export const MAX_REQUEST_DEPTH = 100
export const MAX_REQUEST_CONTAINERS = 100_000

/**
 * The walk's work lists, shared by every decode, so a message allocates none. A walk that runs
 * inside another (an embedder's object whose getter decodes again) takes lists of its own.
 */
const shared = { stack: [] as Array<object>, depths: [] as Array<number>, busy: false }

/** Why a request is outside the bounds, or undefined when it is within them. Iterative: never recurses. */
const exceedsBounds = (data: object): string | undefined => {
  if (shared.busy) return walk(data, [], [])
  shared.busy = true
  try {
    return walk(data, shared.stack, shared.depths)
  } finally {
    // A walk cut short (out of bounds, or a throwing getter) leaves work behind: drop it.
    if (shared.stack.length > 0) shared.stack.length = shared.depths.length = 0
    shared.busy = false
  }
}

const walk = (data: object, stack: Array<object>, depths: Array<number>): string | undefined => {
  stack.push(data)
  depths.push(1)
  let containers = 0
  while (stack.length > 0) {
    const value = stack.pop()!
    const depth = depths.pop()!
    if (depth > MAX_REQUEST_DEPTH) return `the request is nested deeper than ${MAX_REQUEST_DEPTH} levels`
    if (++containers > MAX_REQUEST_CONTAINERS) return `the request holds more than ${MAX_REQUEST_CONTAINERS} objects and arrays`
    // for…in rather than Object.values: no array allocated per object on every message.
    if (Array.isArray(value)) {
      for (const child of value as ReadonlyArray<unknown>) {
        if (typeof child === "object" && child !== null) {
          stack.push(child)
          depths.push(depth + 1)
        }
      }
    } else {
      for (const key in value) {
        const child = (value as Record<string, unknown>)[key]
        if (typeof child === "object" && child !== null) {
          stack.push(child)
          depths.push(depth + 1)
        }
      }
    }
  }
  return undefined
}

/** The request's envelope alone, for an error answer that must not echo what it refuses. */
const envelopeOf = (value: Record<string, unknown>): Record<string, unknown> => {
  const envelope: Record<string, unknown> = {}
  for (const key of ["api", "widgetId", "requestId", "requestid", "action"]) if (key in value) envelope[key] = value[key]
  return envelope
}

/**
 * Decodes one message arriving from a widget, as a JSON string (websocket frame) or an already
 * parsed value (postMessage). `requestid` is read as `requestId`: the MSC2762 and MSC3846
 * examples spell it that way, and a response must echo whatever the widget sent.
 *
 * @example decodeFromWidget('{"api":"fromWidget","widgetId":"w","requestId":"1","action":"content_loaded","data":{}}')
 */
export const decodeFromWidget = (input: unknown): Decoded => {
  let value = input
  if (typeof input === "string") {
    try {
      value = JSON.parse(input)
    } catch {
      return { _tag: "Dropped", reason: "not-json" }
    }
  }
  if (!isObject(value)) return { _tag: "Dropped", reason: "not-an-object" }
  const requestId = typeof value.requestId === "string" ? value.requestId : value.requestid
  if (typeof requestId !== "string" || requestId.length === 0) return { _tag: "Dropped", reason: "no-request-id" }

  if ("response" in value) {
    // A response to one of our toWidget requests. It can't be answered, only matched or dropped.
    if (value.api !== "toWidget") return { _tag: "Dropped", reason: "response-without-request" }
    if (typeof value.widgetId !== "string" || typeof value.action !== "string") return { _tag: "Dropped", reason: "bad-response" }
    return {
      _tag: "Response",
      response: { api: "toWidget", widgetId: value.widgetId, requestId, action: value.action, data: isObject(value.data) ? value.data : {}, response: value.response }
    }
  }
  // Responses are only read, never echoed or serialised, so only requests are walked: an ack (which
  // echoes the delivered event) costs no walk.
  const outOfBounds = exceedsBounds(value)
  if (outOfBounds !== undefined) return { _tag: "Invalid", raw: envelopeOf(value), issue: outOfBounds }
  if (value.api !== "fromWidget") return { _tag: "Invalid", raw: value, issue: `api must be "fromWidget" for a widget's request, got ${JSON.stringify(value.api) ?? "nothing"}` }
  if (typeof value.widgetId !== "string") return { _tag: "Invalid", raw: value, issue: "widgetId must be a string" }
  if (typeof value.action !== "string" || value.action.length === 0) return { _tag: "Invalid", raw: value, issue: "action must be a non-empty string" }
  if (value.data !== undefined && !isObject(value.data)) return { _tag: "Invalid", raw: value, issue: "data must be an object" }
  return {
    _tag: "Request",
    raw: value,
    request: { api: "fromWidget", widgetId: value.widgetId, requestId, action: value.action, data: value.data ?? {} }
  }
}
