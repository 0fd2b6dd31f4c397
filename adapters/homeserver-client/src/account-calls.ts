/**
 * The homeserver port's calls that are one request each and keep no state of the account's sync:
 * TURN, MatrixRTC transports, user directory search, joined rooms and room account data
 * (delayed events: `delayed-events.ts`). `matrix-homeserver.ts` keeps what the sync loop and the
 * crypto machine take part in (sends, reads, to-device).
 */
import { Effect } from "effect"
import { HomeserverError } from "@widgethost/core"
import type { HomeserverRequest } from "@widgethost/core"
import type { TurnServers } from "@widgethost/core"
import { cryptoError } from "./crypto-error.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

const stringsOf = (v: unknown): ReadonlyArray<string> => (Array.isArray(v) ? v : []).filter((x): x is string => typeof x === "string")

/** A port call: the promise's failure, whatever it was, becomes the port's HomeserverError. */
export const tryPromise = <A>(what: string, fn: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, HomeserverError> =>
  Effect.tryPromise({ try: (signal) => fn(signal), catch: (e) => cryptoError(what, e) })

export const accountCalls = (http: MatrixHttp) => {
  const turnServers = (): Effect.Effect<TurnServers, HomeserverError> =>
    tryPromise("TURN servers", async (signal) => {
      const res = await http.request<Record<string, unknown>>({ method: "GET", path: "/_matrix/client/v3/voip/turnServer", signal })
      return {
        uris: stringsOf(res["uris"]),
        username: typeof res["username"] === "string" ? res["username"] : "",
        password: typeof res["password"] === "string" ? res["password"] : "",
        ttl: typeof res["ttl"] === "number" ? res["ttl"] : 0
      }
    })

  /**
   * MSC4143's discovery endpoint, then its unstable path on servers that do not know the stable
   * one yet; the body is returned as the server sent it. When neither path exists, the stable
   * path's error (404 `M_UNRECOGNIZED`) is what the widget sees.
   */
  const rtcTransports = (): Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError> =>
    tryPromise("RTC transports", async (signal) => {
      try {
        return await http.request<Record<string, unknown>>({ method: "GET", path: "/_matrix/client/v1/rtc/transports", signal })
      } catch (stable) {
        const body = stable instanceof HomeserverError ? (stable.http?.body as { errcode?: unknown } | undefined) : undefined
        if (!(stable instanceof HomeserverError) || stable.http?.status !== 404 || body?.errcode !== "M_UNRECOGNIZED") throw stable
        try {
          return await http.request<Record<string, unknown>>({ method: "GET", path: "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", signal })
        } catch {
          throw stable
        }
      }
    })

  const userDirectorySearch = (request: Extract<HomeserverRequest, { _tag: "UserDirectorySearch" }>): Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError> =>
    tryPromise("user directory search", (signal) =>
      http.request<Record<string, unknown>>({
        method: "POST",
        path: "/_matrix/client/v3/user_directory/search",
        body: { search_term: request.searchTerm, ...(request.limit === undefined ? {} : { limit: request.limit }) },
        signal
      })
    )

  const joinedRooms = (): Effect.Effect<ReadonlyArray<string>, HomeserverError> =>
    tryPromise("joined rooms", async (signal) => {
      const res = await http.request<{ joined_rooms?: unknown }>({ method: "GET", path: "/_matrix/client/v3/joined_rooms", signal })
      return stringsOf(res.joined_rooms)
    })

  /**
   * MSC4533's delegated MSC4195 LiveKit endpoints: the stable path, then MSC4195's unstable one
   * where the stable one is unrecognised; a server with neither answers the stable path's error.
   */
  const rtcLivekit = (request: Extract<HomeserverRequest, { _tag: "RtcLivekit" }>): Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError> =>
    tryPromise("RTC LiveKit", async (signal) => {
      const post = (prefix: string) => http.request<Record<string, unknown>>({ method: "POST", path: `${prefix}/rtc/livekit/${request.endpoint}`, body: request.body, signal })
      try {
        return await post("/_matrix/client/v1")
      } catch (stable) {
        const body = stable instanceof HomeserverError ? (stable.http?.body as { errcode?: unknown } | undefined) : undefined
        if (!(stable instanceof HomeserverError) || stable.http?.status !== 404 || body?.errcode !== "M_UNRECOGNIZED") throw stable
        try {
          return await post("/_matrix/client/unstable/io.element.msc4195")
        } catch {
          throw stable
        }
      }
    })

  return { turnServers, rtcTransports, rtcLivekit, userDirectorySearch, joinedRooms }
}

/**
 * `readRoomAccountData` of the port: the content as the server keeps it, or `undefined` when none
 * is set (404 `M_NOT_FOUND`). Any other failure, a 404 `M_UNRECOGNIZED` from a server without the
 * endpoint included, is an error: "not set" must not hide "cannot tell".
 */
export const roomAccountDataReader =
  (http: MatrixHttp, userId: string) =>
  (roomId: string, type: string): Effect.Effect<Readonly<Record<string, unknown>> | undefined, HomeserverError> =>
    tryPromise("read room account data", async (signal) => {
      try {
        return await http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/user/${userId}/rooms/${roomId}/account_data/${type}`, signal })
      } catch (e) {
        const errcode = e instanceof HomeserverError ? (e.http?.body as { errcode?: unknown } | undefined)?.errcode : undefined
        if (e instanceof HomeserverError && e.http?.status === 404 && errcode === "M_NOT_FOUND") return undefined
        throw e
      }
    })
