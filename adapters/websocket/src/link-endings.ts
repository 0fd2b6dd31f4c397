/**
 * How each kind of connection end is closed and what it means for the session: the close-code
 * table of the transport (see the package README), as data. Pure; the transport and the
 * lifecycle read it, and a property test checks it against the table's text.
 */

/** Host-side close codes. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  Unsupported: 1003,
  NoStatus: 1005,
  Abnormal: 1006,
  InvalidPayload: 1007,
  TooBig: 1009,
  InternalError: 1011,
  DeadPeer: 4408,
  Replaced: 4409,
  Unregistered: 4410,
  RateLimited: 4429,
  Overflow: 4507
} as const

/** What becomes of the session when its link ends. */
export type AfterEnd = "suspend" | "end-session" | "keep"

/** Why a link ended. `code` is the widget's (or ws's) close code where the end was theirs. */
export type LinkEndCause =
  | { readonly _tag: "WidgetClosed"; readonly code: number }
  | { readonly _tag: "ProtocolError"; readonly code: number; readonly message: string }
  | { readonly _tag: "Binary" }
  | { readonly _tag: "RateLimited"; readonly messages: number; readonly perMs: number }
  | { readonly _tag: "DeadPeer" }
  | { readonly _tag: "Overflow"; readonly dropped: number }
  | { readonly _tag: "SessionError" }
  | { readonly _tag: "OpenFailed" }
  | { readonly _tag: "SessionClosed"; readonly reason: string }
  | { readonly _tag: "Replaced" }
  | { readonly _tag: "AlreadyConnected" }
  | { readonly _tag: "Unregistered" }
  | { readonly _tag: "ShuttingDown" }

export interface LinkEnding {
  readonly code: number
  readonly reason: string
  /** `close`: send a close frame; `terminate`: destroy the socket; `none`: ws or the peer is already closing it. */
  readonly how: "close" | "terminate" | "none"
  readonly after: AfterEnd
}

/** The ending for a cause: one row of the close-code table. */
export const endingFor = (cause: LinkEndCause): LinkEnding => {
  switch (cause._tag) {
    case "WidgetClosed":
      // 1000 is the widget saying it is done; any other code (or none) may be a dropped link.
      return { code: cause.code, reason: "the widget closed the connection", how: "none", after: cause.code === CloseCode.Normal ? "end-session" : "suspend" }
    case "ProtocolError":
      return { code: cause.code, reason: cause.message, how: "none", after: "suspend" }
    case "Binary":
      return { code: CloseCode.Unsupported, reason: "binary frames are not supported: send JSON text", how: "close", after: "suspend" }
    case "RateLimited":
      return { code: CloseCode.RateLimited, reason: `rate limit: more than ${cause.messages} messages in ${cause.perMs} ms`, how: "close", after: "suspend" }
    case "DeadPeer":
      return { code: CloseCode.DeadPeer, reason: "no pong", how: "terminate", after: "suspend" }
    case "Overflow":
      return { code: CloseCode.Overflow, reason: `outbound queue overflow: ${cause.dropped} messages dropped; reconnect to resume`, how: "close", after: "suspend" }
    case "SessionError":
      return { code: CloseCode.InternalError, reason: "internal error", how: "close", after: "end-session" }
    case "OpenFailed":
      return { code: CloseCode.InternalError, reason: "the host could not open a session", how: "close", after: "keep" }
    case "SessionClosed":
      return { code: CloseCode.Normal, reason: cause.reason || "session closed", how: "close", after: "keep" }
    case "Replaced":
      return { code: CloseCode.Replaced, reason: "replaced by a newer connection", how: "close", after: "keep" }
    case "AlreadyConnected":
      return { code: CloseCode.Replaced, reason: "the widget is already connected", how: "close", after: "keep" }
    case "Unregistered":
      return { code: CloseCode.Unregistered, reason: "widget unregistered", how: "close", after: "keep" }
    case "ShuttingDown":
      return { code: CloseCode.GoingAway, reason: "host shutting down", how: "close", after: "keep" }
  }
}

/** Maps ws's error codes to the close code ws itself sends for them. */
export const codeOfWsError = (code: string | undefined): number | undefined => {
  if (code === undefined || !code.startsWith("WS_ERR_")) return undefined
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return CloseCode.TooBig
  if (code === "WS_ERR_INVALID_UTF8") return CloseCode.InvalidPayload
  return CloseCode.ProtocolError
}
