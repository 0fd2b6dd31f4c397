/**
 * Creating accounts on the embedded homeserver from the admin API (`POST /api/users`): the way an
 * operator adds a person (or a test) without handing out the registration token or opening
 * registration. The request is decoded here, the homeserver's refusals become the admin API's
 * error codes with the Matrix `errcode` kept alongside.
 */
import { randomBytes } from "node:crypto"
import type { EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { MatrixError } from "@widgethost/embedded-homeserver"

export interface NewUserRequest {
  /** The localpart (`bob` for `@bob:server`). */
  readonly username: string
  /** Absent: a random one, returned in the answer (the only time it is shown). */
  readonly password?: string
}

export interface CreatedUser {
  readonly user_id: string
  readonly access_token: string
  readonly device_id: string
  /** Only when the service chose it. */
  readonly password?: string
}

export type CreateUserOutcome =
  | { readonly _tag: "Created"; readonly user: CreatedUser }
  | { readonly _tag: "Refused"; readonly code: "BadRequest" | "Conflict"; readonly errcode: string; readonly message: string }

/**
 * Decodes the body of `POST /api/users`; never throws.
 *
 * @example parseNewUser({ username: "bob" }) // { ok: true, request: { username: "bob" } }
 */
export const parseNewUser = (body: unknown): { readonly ok: true; readonly request: NewUserRequest } | { readonly ok: false; readonly issue: string } => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, issue: "the body must be an object { username, password? }" }
  const { username, password, ...rest } = body as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) return { ok: false, issue: `unknown field ${unknown[0]} (known: username, password)` }
  if (typeof username !== "string" || username === "") return { ok: false, issue: "username: expected a non-empty string" }
  if (password !== undefined && (typeof password !== "string" || password === "")) return { ok: false, issue: "password: expected a non-empty string" }
  return { ok: true, request: password === undefined ? { username } : { username, password } }
}

/**
 * The admin model's `createUser` for an embedded homeserver.
 *
 * @example const createUser = embeddedUserCreator(embedded); await createUser({ username: "bob" })
 */
export const embeddedUserCreator =
  (homeserver: Pick<EmbeddedHomeserver, "createUser">) =>
  async (request: NewUserRequest): Promise<CreateUserOutcome> => {
    const password = request.password ?? randomBytes(18).toString("base64url")
    try {
      const created = await homeserver.createUser(request.username, password)
      return {
        _tag: "Created",
        user: {
          user_id: created.userId,
          access_token: created.accessToken,
          device_id: created.deviceId,
          ...(request.password === undefined ? { password } : {})
        }
      }
    } catch (error) {
      if (!(error instanceof MatrixError) || error.status !== 400) throw error
      return { _tag: "Refused", code: error.errcode === "M_USER_IN_USE" ? "Conflict" : "BadRequest", errcode: error.errcode, message: error.error }
    }
  }
