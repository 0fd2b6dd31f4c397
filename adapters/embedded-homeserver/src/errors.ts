import { Data } from "effect"

/**
 * A client-server API error, exactly as the spec's "standard error response" puts it on the
 * wire: `status` is the HTTP status, `errcode`/`error` the body, `extra` any further body fields
 * (`retry_after_ms`, `flows`, ...). Handlers throw it; the server turns it into the response, so a
 * handler never writes an error body by hand and can never forget the `errcode`.
 */
export class MatrixError extends Data.TaggedError("MatrixError")<{
  readonly status: number
  readonly errcode: string
  readonly error: string
  readonly extra?: Readonly<Record<string, unknown>>
  readonly headers?: Readonly<Record<string, string>>
}> {
  /** The JSON body the spec defines for this error. */
  body(): Record<string, unknown> {
    return { errcode: this.errcode, error: this.error, ...this.extra }
  }
}

const make =
  (status: number, errcode: string) =>
  (error: string, extra?: Readonly<Record<string, unknown>>): MatrixError =>
    new MatrixError(extra === undefined ? { status, errcode, error } : { status, errcode, error, extra })

export const forbidden = make(403, "M_FORBIDDEN")
export const notFound = make(404, "M_NOT_FOUND")
export const unrecognized = make(404, "M_UNRECOGNIZED")
export const methodNotAllowed = make(405, "M_UNRECOGNIZED")
export const badJson = make(400, "M_BAD_JSON")
export const notJson = make(400, "M_NOT_JSON")
export const missingParam = make(400, "M_MISSING_PARAM")
export const invalidParam = make(400, "M_INVALID_PARAM")
export const missingToken = make(401, "M_MISSING_TOKEN")
export const unknownToken = make(401, "M_UNKNOWN_TOKEN")
export const tooLarge = make(413, "M_TOO_LARGE")
export const userInUse = make(400, "M_USER_IN_USE")
export const invalidUsername = make(400, "M_INVALID_USERNAME")
export const roomInUse = make(400, "M_ROOM_IN_USE")
export const unsupportedRoomVersion = make(400, "M_UNSUPPORTED_ROOM_VERSION")
export const unknown = make(400, "M_UNKNOWN")
export const internal = make(500, "M_UNKNOWN")

/**
 * A user-interactive authentication challenge (HTTP 401): `flows`, `params` and `session`, plus
 * `errcode`/`error` only when a stage was attempted and failed. The client-server spec keeps the
 * two apart, and clients rely on it: an `errcode` on the first challenge reads as "your auth
 * failed" (matrix-js-sdk's interactive auth shows it as an error before anything was tried).
 * Handlers throw it like a `MatrixError`; the server writes `body` as it is.
 */
export class AuthChallenge extends Data.TaggedError("AuthChallenge")<{ readonly body: Readonly<Record<string, unknown>> }> {}

/**
 * The 401 for `stages` in `session`; `failure` only when the client's attempt at a stage failed.
 *
 * @example throw authChallenge(["m.login.password"], "abc")                           // first ask
 * @example throw authChallenge(["m.login.password"], "abc", { errcode: "M_FORBIDDEN", error: "Invalid password" })
 */
export const authChallenge = (
  stages: ReadonlyArray<string>,
  session: string,
  failure?: { readonly errcode: string; readonly error: string }
): AuthChallenge => new AuthChallenge({ body: { ...failure, flows: [{ stages }], params: {}, session } })
