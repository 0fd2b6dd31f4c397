import type { JsonObject } from "./decode.ts"
import type { EmbeddedHomeserver } from "./server.ts"

/**
 * A deliberately dumb HTTP client for the homeserver's tests: raw fetch, no retries, no
 * interpretation, so the tests see exactly what a client would. Response bodies are cast to
 * the shape a test expects (the casts are the assertions' premise, not a decoder).
 */
export interface Session {
  readonly userId: string
  readonly accessToken: string
  readonly deviceId: string
}

export interface Res<T> {
  readonly status: number
  readonly body: T
  readonly headers: Headers
}

export interface ClientEvent {
  readonly event_id: string
  readonly type: string
  readonly sender: string
  readonly content: JsonObject
  readonly origin_server_ts: number
  readonly state_key?: string
  readonly redacts?: string
  readonly room_id?: string
  readonly unsigned?: JsonObject & { readonly transaction_id?: string; readonly redacted_because?: ClientEvent }
}

export interface RoomSection {
  readonly state: { readonly events: ReadonlyArray<ClientEvent> }
  readonly timeline: { readonly events: ReadonlyArray<ClientEvent>; readonly limited: boolean; readonly prev_batch: string }
  readonly ephemeral?: { readonly events: ReadonlyArray<JsonObject> }
  readonly account_data?: { readonly events: ReadonlyArray<JsonObject> }
}

export interface SyncResponse {
  readonly next_batch: string
  readonly rooms: {
    readonly join: Readonly<Record<string, RoomSection>>
    readonly invite: Readonly<Record<string, { readonly invite_state: { readonly events: ReadonlyArray<ClientEvent> } }>>
    readonly leave: Readonly<Record<string, RoomSection>>
  }
  readonly account_data: { readonly events: ReadonlyArray<{ readonly type: string; readonly content: JsonObject }> }
  readonly to_device: { readonly events: ReadonlyArray<{ readonly sender: string; readonly type: string; readonly content: JsonObject }> }
  readonly device_lists: { readonly changed: ReadonlyArray<string>; readonly left: ReadonlyArray<string> }
  readonly device_one_time_keys_count: Readonly<Record<string, number>>
  readonly device_unused_fallback_key_types: ReadonlyArray<string>
}

export interface MatrixErrorBody {
  readonly errcode: string
  readonly error: string
  readonly [key: string]: unknown
}

export const V3 = "/_matrix/client/v3"

export class Client {
  constructor(
    readonly baseUrl: string,
    readonly session?: Session
  ) {}

  get userId(): string {
    return this.session!.userId
  }

  async request<T = JsonObject>(
    method: string,
    path: string,
    opts: { readonly body?: unknown; readonly raw?: string; readonly token?: string | null; readonly headers?: Record<string, string> } = {}
  ): Promise<Res<T>> {
    const token = opts.token === undefined ? this.session?.accessToken : opts.token
    const headers: Record<string, string> = { ...opts.headers }
    if (token !== undefined && token !== null) headers.authorization = `Bearer ${token}`
    let body: string | undefined
    if (opts.raw !== undefined) body = opts.raw
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body)
      headers["content-type"] = "application/json"
    }
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body !== undefined && { body }) })
    const text = await res.text()
    return { status: res.status, body: (text === "" ? undefined : JSON.parse(text)) as T, headers: res.headers }
  }

  get<T = JsonObject>(path: string): Promise<Res<T>> {
    return this.request<T>("GET", path)
  }
  post<T = JsonObject>(path: string, body: unknown = {}): Promise<Res<T>> {
    return this.request<T>("POST", path, { body })
  }
  put<T = JsonObject>(path: string, body: unknown = {}): Promise<Res<T>> {
    return this.request<T>("PUT", path, { body })
  }

  /** 200 or throw: for steps that set a test up rather than being what it checks. */
  async ok<T = JsonObject>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request<T>(method, path, body === undefined ? {} : { body })
    if (res.status !== 200) throw new Error(`${method} ${path} -> ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  }

  async createRoom(body: JsonObject = {}): Promise<string> {
    return (await this.ok<{ room_id: string }>("POST", `${V3}/createRoom`, body)).room_id
  }

  async send(roomId: string, body: string, txnId = `t${Math.random()}`): Promise<string> {
    const path = `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`
    return (await this.ok<{ event_id: string }>("PUT", path, { msgtype: "m.text", body })).event_id
  }

  async join(roomIdOrAlias: string): Promise<void> {
    await this.ok("POST", `${V3}/join/${encodeURIComponent(roomIdOrAlias)}`, {})
  }

  sync(params: Record<string, string> = {}): Promise<SyncResponse> {
    return this.ok<SyncResponse>("GET", `${V3}/sync?${new URLSearchParams(params).toString()}`)
  }
}

let counter = 0

/** A fresh user with a unique name on `hs`, and a client holding their session. */
export const newUser = async (hs: EmbeddedHomeserver, name = "user"): Promise<Client> => {
  const session = await hs.ensureUser(`${name}${++counter}`, "correct horse battery staple")
  return new Client(hs.baseUrl, session)
}

export const room = (roomId: string): string => `${V3}/rooms/${encodeURIComponent(roomId)}`
