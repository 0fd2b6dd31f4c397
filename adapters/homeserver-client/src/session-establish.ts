import { access } from "node:fs/promises"
import { HomeserverError } from "@widgethost/core"
import { writeFileDurably } from "./crypto-store.ts"
import { login, type MatrixHttp, type Session } from "./matrix-http.ts"
import type { HomeserverAuth } from "./matrix-homeserver.ts"
import { readJsonFile } from "./sync-state-file.ts"

/**
 * Which device this connection is: the access token given, the saved session of the same user
 * and server while it is still valid, or a fresh login (keeping the saved device id, and so its
 * keys, when only the token died).
 */

/** `session.json`. */
interface SavedSession extends Session {
  readonly baseUrl: string
}

export const isUnknownToken = (e: unknown): boolean => e instanceof HomeserverError && e.http?.status === 401

/** Resumes the saved session of the same user and server when it is still valid; else logs in. */
export const establishSession = async (http: MatrixHttp, options: { readonly baseUrl: string; readonly auth: HomeserverAuth }, sessionFile: string | undefined, storeLost = false): Promise<Session> => {
  const auth = options.auth
  if ("accessToken" in auth) {
    http.accessToken = auth.accessToken
    const userId = auth.userId ?? (await http.request<{ user_id: string }>({ method: "GET", path: "/_matrix/client/v3/account/whoami" })).user_id
    return { userId, accessToken: auth.accessToken, deviceId: auth.deviceId }
  }
  const saved = sessionFile === undefined || storeLost ? undefined : await readJsonFile<SavedSession>(sessionFile)
  const sameAccount =
    saved !== undefined &&
    saved.baseUrl === options.baseUrl &&
    (auth.deviceId === undefined || auth.deviceId === saved.deviceId) &&
    (saved.userId === auth.user || saved.userId.slice(1, saved.userId.indexOf(":")) === auth.user)
  if (sameAccount) {
    http.accessToken = saved.accessToken
    try {
      const who = await http.request<{ user_id: string; device_id?: string }>({ method: "GET", path: "/_matrix/client/v3/account/whoami" })
      if (who.user_id === saved.userId && (who.device_id === undefined || who.device_id === saved.deviceId)) return saved
    } catch (e) {
      if (!isUnknownToken(e)) throw e
    }
  }
  // Logging in again with the saved device id keeps the device (and its keys) when the token died.
  const deviceId = auth.deviceId ?? (sameAccount ? saved.deviceId : undefined)
  const session = await login(http, { user: auth.user, password: auth.password, ...(deviceId === undefined ? {} : { deviceId }) })
  if (sessionFile !== undefined) await writeFileDurably(sessionFile, JSON.stringify({ ...session, baseUrl: options.baseUrl } satisfies SavedSession), 0o600)
  return session
}

export const fileExists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false
  )
