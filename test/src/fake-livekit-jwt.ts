/**
 * A stand-in for a MatrixRTC LiveKit authorisation service (lk-jwt-service) on 127.0.0.1: what a
 * call widget asks for a LiveKit token. It does what the real one does with the widget's OpenID
 * token, validating it at the homeserver's `/_matrix/federation/v1/openid/userinfo` and checking
 * that the user it names is the one claimed, and then mints a JWT-shaped token (unsigned: there is
 * no LiveKit server to check it). Both endpoints are served: the legacy `POST /sfu/get`
 * (`{ room, openid_token, device_id }`) and `POST /get_token` (`{ room_id, slot_id,
 * openid_token, member: { id, claimed_user_id, claimed_device_id } }`); both answer
 * `{ url, jwt }`. `/delegate_delayed_leave` answers 404, as a service without delegation does.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface TokenRequest {
  readonly path: "/sfu/get" | "/get_token"
  readonly body: Readonly<Record<string, unknown>>
  /** The user the homeserver said the OpenID token belongs to, or why it was refused. */
  readonly outcome: { readonly user: string; readonly room: string } | { readonly refused: string }
}

export interface FakeLivekitJwtService {
  /** The `livekit_service_url` to configure as the homeserver's RTC transport. */
  readonly url: string
  readonly requests: ReadonlyArray<TokenRequest>
  /** Every other request (method and path), such as the delegation probe or LiveKit's own. */
  readonly otherHits: ReadonlyArray<string>
  close(): Promise<void>
}

const CORS = { "access-control-allow-origin": "*", "access-control-allow-methods": "POST, GET, OPTIONS", "access-control-allow-headers": "content-type" }

const send = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { ...CORS, "content-type": "application/json" }).end(JSON.stringify(body))

const readBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"))
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("body is not a JSON object")
  return parsed as Record<string, unknown>
}

const base64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64").replace(/=+$/, "")

/** Header, payload, signature: the payload carries what Element Call reads (`sub`, `video.room`). */
const mintJwt = (identity: string, room: string) => {
  const now = Math.floor(Date.now() / 1000)
  const payload = { iss: "fake-livekit-jwt", sub: identity, nbf: now, exp: now + 3600, video: { room, roomJoin: true, canPublish: true, canSubscribe: true } }
  return `${base64({ alg: "none", typ: "JWT" })}.${base64(payload)}.unsigned`
}

const field = (body: Readonly<Record<string, unknown>>, ...path: ReadonlyArray<string>): unknown =>
  path.reduce<unknown>((value, key) => (typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined), body)

/**
 * `homeserver`: the one server whose tokens are accepted (the real service federates to
 * `matrix_server_name`; here that name must be `serverName`, and its URL is `baseUrl`). A
 * function, because the homeserver is configured with this service's URL, so starts after it.
 * The tokens are for an SFU at this service's own address (`ws://`), where no LiveKit answers:
 * whatever LiveKit's client tries there is in `otherHits`.
 */
export const startFakeLivekitJwtService = async (options: { readonly homeserver: () => { readonly baseUrl: string; readonly serverName: string } }): Promise<FakeLivekitJwtService> => {
  const requests: Array<TokenRequest> = []
  const otherHits: Array<string> = []

  /** Whose token this is, by the homeserver's word. */
  const validate = async (token: unknown): Promise<string> => {
    const accessToken = field({ token }, "token", "access_token")
    const serverName = field({ token }, "token", "matrix_server_name")
    if (typeof accessToken !== "string") throw new Error("openid_token.access_token missing")
    const homeserver = options.homeserver()
    if (serverName !== homeserver.serverName) throw new Error(`tokens of ${String(serverName)} are not accepted here`)
    const res = await fetch(`${homeserver.baseUrl}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(accessToken)}`)
    const body = (await res.json()) as { sub?: unknown; errcode?: unknown }
    if (!res.ok || typeof body.sub !== "string") throw new Error(`userinfo refused the token: ${res.status} ${String(body.errcode)}`)
    return body.sub
  }

  const answer = async (path: TokenRequest["path"], body: Readonly<Record<string, unknown>>) => {
    const legacy = path === "/sfu/get"
    const room = field(body, legacy ? "room" : "room_id")
    const device = field(body, ...(legacy ? ["device_id"] : ["member", "claimed_device_id"]))
    const user = await validate(body["openid_token"])
    if (!legacy && field(body, "member", "claimed_user_id") !== user) throw new Error(`the token is ${user}'s, not the claimed user's`)
    if (typeof room !== "string" || typeof device !== "string") throw new Error("room and device are required")
    return { user, room, jwt: mintJwt(legacy ? `${user}:${device}` : String(field(body, "member", "id")), room) }
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://jwt").pathname
    if (req.method === "OPTIONS") return void res.writeHead(204, CORS).end()
    if (req.method !== "POST" || (path !== "/sfu/get" && path !== "/get_token")) {
      otherHits.push(`${req.method} ${path}`)
      return send(res, 404, { errcode: "M_NOT_FOUND", error: "Not found" })
    }
    readBody(req)
      .then(async (body) => {
        try {
          const { user, room, jwt } = await answer(path, body)
          requests.push({ path, body, outcome: { user, room } })
          send(res, 200, { url: `ws://${req.headers.host}`, jwt })
        } catch (e) {
          requests.push({ path, body, outcome: { refused: String(e) } })
          send(res, 401, { errcode: "M_UNAUTHORIZED", error: String(e) })
        }
      })
      .catch((e: unknown) => send(res, 400, { errcode: "M_BAD_JSON", error: String(e) }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    otherHits,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
