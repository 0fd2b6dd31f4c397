import type { ErrorBody } from "./envelope.ts"
import { type HomeserverError, matrixApiError } from "./homeserver-error.ts"

export type Phase = "loading" | "negotiating" | "ready" | "renegotiating" | "closed"

/**
 * Why a widget's request was refused. The `_tag` is the stable code (also sent to the widget as
 * `error.code`, so widget developers can branch on it); `message` is for people.
 */
interface ProtocolErrorFields {
  Malformed: { readonly issue: string }
  UnknownAction: { readonly action: string }
  /** An action of an optional feature (`session/feature.ts`) this host was built without. */
  NotIncluded: { readonly action: string; readonly feature: string }
  NotAllowed: { readonly what: string }
  /** Part of a request that a proposal defines but this host cannot serve (never silently dropped). */
  Unsupported: { readonly what: string }
  WrongPhase: { readonly phase: Phase; readonly action: string }
  RateLimited: { readonly action: string }
  TooManyPending: { readonly limit: number }
  /** An MSC4039 upload larger than the homeserver's `m.upload.size`: refused before uploading (`tooLarge`). */
  TooLarge: { readonly size: number; readonly limit: number; readonly message: string }
  Homeserver: { readonly error: HomeserverError }
  /** The embedding client refused (its hook threw or rejected); `message` is the client's. */
  ClientRefused: { readonly message: string }
  /** The embedding client did not answer in time (`clientTimedOut`). */
  ClientTimedOut: { readonly action: string; readonly ms: number; readonly message: string }
}
export type ProtocolError = { [Tag in keyof ProtocolErrorFields]: { readonly _tag: Tag } & ProtocolErrorFields[Tag] }[keyof ProtocolErrorFields]

const carried = ({ message }: { readonly message: string }): string => message

// A record, not a switch: the compiler insists every variant has its sentence.
const sentences: { readonly [Tag in ProtocolError["_tag"]]: (error: Extract<ProtocolError, { _tag: Tag }>) => string } = {
  Malformed: ({ issue }) => `Malformed request: ${issue}`,
  UnknownAction: ({ action }) => `Unknown or unsupported action: ${action}`,
  NotIncluded: ({ action, feature }) => `Unsupported action: ${action} (this host was built without the ${feature} feature)`,
  NotAllowed: ({ what }) => `Not allowed: ${what}`,
  Unsupported: ({ what }) => `Not supported: ${what}`,
  WrongPhase: ({ phase, action }) => `Cannot handle ${action} while the session is ${phase}`,
  RateLimited: ({ action }) => `Too many ${action} requests; try again later`,
  TooManyPending: ({ limit }) => `Too many requests in flight (limit ${limit}); wait for answers first`,
  TooLarge: carried,
  Homeserver: ({ error }) => error.message,
  ClientRefused: carried,
  ClientTimedOut: carried
}

type Constructors = { readonly [Tag in keyof ProtocolErrorFields]: (fields: ProtocolErrorFields[Tag]) => Extract<ProtocolError, { _tag: Tag }> }

/**
 * One constructor per variant, one for each sentence: `ProtocolError.Malformed({ issue })` is
 * `{ issue, _tag: "Malformed" }`, plain data.
 */
export const ProtocolError: Constructors = Object.fromEntries(
  Object.keys(sentences).map((tag) => [tag, (fields: object) => ({ ...fields, _tag: tag })])
) as unknown as Constructors

// Only optional features raise these two, so their sentences are made by these helpers, which
// only the features call, and carried as `message`: a bundle without the feature ships neither.

/** `TooLarge`, with its sentence. */
export const tooLarge = (size: number, limit: number): ProtocolError =>
  ProtocolError.TooLarge({ size, limit, message: `The file is ${size} bytes; the homeserver accepts at most ${limit} (m.upload.size)` })

/** `ClientTimedOut`, with its sentence. */
export const clientTimedOut = (action: string, ms: number): ProtocolError =>
  ProtocolError.ClientTimedOut({ action, ms, message: `The client did not answer ${action} within ${ms} ms` })

const describe = (error: ProtocolError): string => (sentences[error._tag] as (error: ProtocolError) => string)(error)

/** The spec-shaped error response body for a protocol error. */
export const errorBody = (error: ProtocolError): ErrorBody => {
  const detail = error._tag === "Homeserver" ? matrixApiError(error.error) : undefined
  return {
    error: detail === undefined
      ? { message: describe(error), code: error._tag }
      : { message: describe(error), code: error._tag, matrix_api_error: detail }
  }
}
