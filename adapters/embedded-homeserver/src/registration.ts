import { createHash, timingSafeEqual } from "node:crypto"
import { isObject } from "./decode.ts"
import { authChallenge, badJson, forbidden, missingParam } from "./errors.ts"
import { randomString } from "./ids.ts"
import type { Route } from "./routing.ts"
import { json, open } from "./routing.ts"

/**
 * Who may create an account over `POST /register`, and the user-interactive auth stage that
 * proves it. The server answers every origin's CORS preflight (the client-server spec asks for
 * `Access-Control-Allow-Origin: *`), so anything a browser on this machine loads can call it: open
 * registration would let any web page create accounts here. By default a registration needs a
 * token (`m.login.registration_token`, spec v1.2), which only the operator knows.
 *
 * - `token`: one flow, `[{ stages: ["m.login.registration_token"] }]`; the client sends
 *   `auth: { type: "m.login.registration_token", token, session }`. The token has unlimited uses
 *   and no expiry (it is the operator's, not an invitation). `GET /_matrix/client/v1/register/
 *   m.login.registration_token/validity?token=` says whether a token would be accepted.
 * - `open`: `m.login.dummy`, anyone who can reach the port; an explicit opt-in for tests and
 *   trusted setups.
 * - `closed`: `/register` answers 403; accounts come only from `ensureUser`/`createUser`.
 *
 * Sessions are not stored: with one single-stage flow there is nothing to carry between
 * requests, so the `session` a client sends is echoed and otherwise ignored.
 */
export type RegistrationPolicy =
  | { readonly kind: "token"; readonly token: string }
  | { readonly kind: "open" }
  | { readonly kind: "closed" }

export const TOKEN_STAGE = "m.login.registration_token"
export const DUMMY_STAGE = "m.login.dummy"

/** The spec's grammar for registration tokens. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/

/** A fresh token: 24 random bytes in url-safe base64 (32 characters of the spec's alphabet). */
export const newRegistrationToken = (): string => randomString(24)

/**
 * The policy for a server's options; a given token must fit the spec's grammar.
 *
 * @example registrationPolicy(undefined, "s3cret").kind // "token"
 * @example registrationPolicy("open", undefined).kind   // "open"
 */
export const registrationPolicy = (mode: "token" | "open" | "closed" | undefined, token: string | undefined): RegistrationPolicy => {
  if (mode === "open" || mode === "closed") return { kind: mode }
  if (token !== undefined && !TOKEN_PATTERN.test(token)) throw new RangeError("registrationToken must be 1-64 characters of A-Z a-z 0-9 . _ ~ -")
  return { kind: "token", token: token ?? newRegistrationToken() }
}

const digest = (value: string): Buffer => createHash("sha256").update(value).digest()

/** Compared as digests with `timingSafeEqual`: how long a wrong guess takes says nothing about the token. */
const tokenMatches = (policy: Extract<RegistrationPolicy, { kind: "token" }>, presented: string): boolean =>
  TOKEN_PATTERN.test(presented) && timingSafeEqual(digest(presented), digest(policy.token))

/**
 * Passes when `auth` completes the policy's stage; otherwise throws the 401 challenge: bare when
 * no auth came, with `M_FORBIDDEN` for a wrong token, `M_UNRECOGNIZED` for another stage type.
 * A closed policy throws 403.
 *
 * @example requireRegistrationAuth({ kind: "token", token: "t" }, { type: "m.login.registration_token", token: "t" })
 */
export const requireRegistrationAuth = (policy: RegistrationPolicy, auth: unknown): void => {
  if (policy.kind === "closed") throw forbidden("Registration has been disabled")
  const stage = policy.kind === "token" ? TOKEN_STAGE : DUMMY_STAGE
  if (auth === undefined || auth === null) throw authChallenge([stage], randomString(18))
  if (!isObject(auth)) throw badJson("'auth' must be an object.")
  const session = typeof auth.session === "string" && auth.session !== "" ? auth.session : randomString(18)
  if (auth.type !== stage) throw authChallenge([stage], session, { errcode: "M_UNRECOGNIZED", error: `This server registers with ${stage}` })
  if (policy.kind === "token" && !(typeof auth.token === "string" && tokenMatches(policy, auth.token)))
    throw authChallenge([stage], session, { errcode: "M_FORBIDDEN", error: "Invalid registration token" })
}

export const routes: ReadonlyArray<Route> = [
  open("GET", `/_matrix/client/v1/register/${TOKEN_STAGE}/validity`, ({ env, query }) => {
    const token = query.get("token")
    if (token === null) throw missingParam("Missing token.")
    if (env.registration.kind === "closed") throw forbidden("Registration has been disabled")
    return json({ valid: env.registration.kind === "token" && tokenMatches(env.registration, token) })
  })
]
