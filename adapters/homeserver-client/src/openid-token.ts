/**
 * MSC1960's homeserver half: a fresh OpenID token for the account's own user, from
 * `POST /_matrix/client/v3/user/{userId}/openid/request_token` with an empty body. The answer is
 * checked field by field: a widget's backend can do nothing with a token missing one of the four,
 * so such an answer fails the call instead of reaching the widget as `allowed`.
 */
import type { Effect } from "effect"
import { HomeserverError } from "@widgethost/core"
import type { OpenIdToken } from "@widgethost/core"
import { tryPromise } from "./account-calls.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

/**
 * The port's `requestOpenIdToken` for `userId` over `http`.
 *
 * @example const port = { ..., requestOpenIdToken: openIdTokens(http, session.userId) }
 */
export const openIdTokens =
  (http: MatrixHttp, userId: string) =>
  (): Effect.Effect<OpenIdToken, HomeserverError> =>
    tryPromise("OpenID token", async (signal) => {
      const res = await http.request<Record<string, unknown>>({ method: "POST", path: path`/_matrix/client/v3/user/${userId}/openid/request_token`, body: {}, signal })
      const { access_token: accessToken, token_type: tokenType, matrix_server_name: serverName, expires_in: expiresIn } = res
      if (typeof accessToken !== "string" || accessToken === "" || typeof tokenType !== "string" || typeof serverName !== "string" || typeof expiresIn !== "number" || !(expiresIn >= 0)) {
        throw new HomeserverError({ message: "The homeserver's OpenID token lacks access_token, token_type, matrix_server_name or expires_in" })
      }
      return { access_token: accessToken, token_type: tokenType, matrix_server_name: serverName, expires_in: expiresIn }
    })
