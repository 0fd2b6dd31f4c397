import { createHmac } from "node:crypto"
import type { Route } from "./routing.ts"
import { authed, CLIENT, json, open } from "./routing.ts"

/**
 * What a client asks before anything else: spec versions and unstable features, the
 * `.well-known` pointer, capabilities, and TURN credentials.
 */

/** The room versions this server can create (and redact correctly). */
export const ROOM_VERSIONS: ReadonlyArray<string> = ["10", "11"]
export const DEFAULT_ROOM_VERSION = "10"

const SPEC_VERSIONS = ["r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11", "v1.12"]

/**
 * TURN REST credentials (draft-uberti-behave-turn-rest, as coturn's `use-auth-secret` checks
 * them): the username carries its own expiry, the password is an HMAC of it under the shared
 * secret, so the TURN server needs no per-user state.
 *
 * @example turnCredentials("@a:hs", { uris: ["turn:t"], sharedSecret: "s", ttlSeconds: 60 }, 0).username // "60:@a:hs"
 */
export const turnCredentials = (
  userId: string,
  turn: { readonly uris: ReadonlyArray<string>; readonly sharedSecret: string; readonly ttlSeconds: number },
  nowMs: number
) => {
  const username = `${Math.floor(nowMs / 1000) + turn.ttlSeconds}:${userId}`
  const password = createHmac("sha1", turn.sharedSecret).update(username).digest("base64")
  return { username, password, uris: [...turn.uris], ttl: turn.ttlSeconds }
}

export const routes: ReadonlyArray<Route> = [
  open("GET", "/_matrix/client/versions", ({ env }) =>
    json({
      versions: SPEC_VERSIONS,
      unstable_features: {
        "org.matrix.msc4140": true,
        ...(env.delayedEventsShape === "endpoint-stable" ? { "org.matrix.msc4140.stable": true } : {}),
        "org.matrix.msc2732": true,
        "org.matrix.msc3440.stable": true
      }
    })
  ),
  open("GET", "/.well-known/matrix/client", ({ env }) => json({ "m.homeserver": { base_url: env.baseUrl() } })),
  authed("GET", `${CLIENT}/capabilities`, () =>
    json({
      capabilities: {
        "m.change_password": { enabled: false },
        "m.room_versions": { default: DEFAULT_ROOM_VERSION, available: Object.fromEntries(ROOM_VERSIONS.map((v) => [v, "stable"])) },
        "m.set_displayname": { enabled: true },
        "m.set_avatar_url": { enabled: true },
        "m.3pid_changes": { enabled: false },
        "m.get_login_token": { enabled: false }
      }
    })
  ),
  authed("GET", `${CLIENT}/voip/turnServer`, ({ env, auth }) =>
    json(env.turn === undefined ? {} : turnCredentials(auth.userId, env.turn, env.now()))
  )
]
