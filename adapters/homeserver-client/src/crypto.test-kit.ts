/**
 * What the E2ee tests share: an in-memory key server (device keys, one-time keys, to-device
 * inboxes), two accounts on it, wire events, a decrypting timeline that records what it delivers.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach } from "vitest"
import type { RoomEvent } from "@widgethost/core"
import { type CryptoHttp, E2ee, type RawEvent, type UndecryptableReport } from "./crypto.ts"
import { DecryptingTimeline } from "./decrypting-timeline.ts"
import type { HttpRequest } from "./matrix-http.ts"

export type Json = Record<string, unknown>
export type Messages = Record<string, Record<string, Json>>

/**
 * The parts of a homeserver that E2EE needs, in memory: device keys, one-time and fallback keys,
 * to-device inboxes and device-list changes. Each account talks to it through a {@link CryptoHttp}.
 */
export class KeyServer {
  readonly deviceKeys = new Map<string, Map<string, Json>>()
  readonly otks = new Map<string, Map<string, Json>>()
  readonly fallback = new Map<string, Json>()
  readonly inbox = new Map<string, Array<Json>>()
  readonly changed = new Map<string, Set<string>>()
  readonly requests: Array<string> = []

  http(userId: string, deviceId: string): CryptoHttp {
    const me = `${userId}|${deviceId}`
    return {
      request: async <T>(req: HttpRequest): Promise<T> => {
        await Promise.resolve()
        this.requests.push(`${userId} ${req.method} ${req.path}`)
        const body = (typeof req.body === "string" ? JSON.parse(req.body) : req.body) as Json
        const route = req.path.replace("/_matrix/client/v3", "")
        if (route === "/keys/upload") {
          if (body["device_keys"] !== undefined) {
            const mine = this.deviceKeys.get(userId) ?? new Map<string, Json>()
            mine.set(deviceId, body["device_keys"] as Json)
            this.deviceKeys.set(userId, mine)
            for (const k of this.inbox.keys()) if (k !== me) this.markChanged(k, userId)
          }
          const otks = this.otks.get(me) ?? new Map<string, Json>()
          for (const [id, key] of Object.entries((body["one_time_keys"] ?? {}) as Json)) otks.set(id, key as Json)
          this.otks.set(me, otks)
          if (body["fallback_keys"] !== undefined) this.fallback.set(me, body["fallback_keys"] as Json)
          this.inbox.set(me, this.inbox.get(me) ?? [])
          return { one_time_key_counts: { signed_curve25519: otks.size } } as T
        }
        if (route === "/keys/query") {
          const out: Record<string, Json> = {}
          for (const user of Object.keys(body["device_keys"] as Json)) out[user] = Object.fromEntries(this.deviceKeys.get(user) ?? [])
          return { device_keys: out, failures: {} } as T
        }
        if (route === "/keys/claim") {
          const out: Record<string, Record<string, Json>> = {}
          for (const [user, devices] of Object.entries(body["one_time_keys"] as Record<string, Json>))
            for (const device of Object.keys(devices)) {
              const pool = this.otks.get(`${user}|${device}`)
              const first = pool?.keys().next().value
              if (pool !== undefined && first !== undefined) {
                ;(out[user] ??= {})[device] = { [first]: pool.get(first) }
                pool.delete(first)
              } else {
                const fb = this.fallback.get(`${user}|${device}`)
                if (fb !== undefined) (out[user] ??= {})[device] = fb
              }
            }
          return { one_time_keys: out, failures: {} } as T
        }
        const toDevice = /^\/sendToDevice\/([^/]+)\/([^/]+)$/.exec(route)
        if (toDevice !== null) {
          this.deliverToDevice(userId, decodeURIComponent(toDevice[1]!), (body["messages"] ?? {}) as Messages)
          return {} as T
        }
        if (route === "/keys/signatures/upload") return { failures: {} } as T
        throw new Error(`in-memory key server: no route for ${req.method} ${req.path}`)
      }
    }
  }

  deliverToDevice(sender: string, type: string, messages: Messages): void {
    for (const [user, devices] of Object.entries(messages))
      for (const [device, content] of Object.entries(devices)) {
        const targets = device === "*" ? Array.from(this.deviceKeys.get(user)?.keys() ?? []) : [device]
        for (const d of targets) this.inbox.get(`${user}|${d}`)?.push({ type, sender, content })
      }
  }

  /** What the next /sync would carry for this device's crypto, consumed. */
  sync(userId: string, deviceId: string) {
    const me = `${userId}|${deviceId}`
    const toDevice = this.inbox.get(me) ?? []
    this.inbox.set(me, [])
    const changed = Array.from(this.changed.get(me) ?? [])
    this.changed.delete(me)
    return { toDevice, changed, oneTimeKeyCounts: { signed_curve25519: this.otks.get(me)?.size ?? 0 }, unusedFallbackKeyTypes: ["signed_curve25519"] }
  }

  private markChanged(device: string, user: string) {
    const set = this.changed.get(device) ?? new Set<string>()
    set.add(user)
    this.changed.set(device, set)
  }
}

export const ALICE = "@alice:test"
export const BOB = "@bob:test"
export const ROOM = "!room:test"
export const ROOM2 = "!other:test"

export let server: KeyServer
export let dir: string
export const opened: Array<E2ee> = []

export const openAccount = async (userId: string, deviceId: string, storeFile?: string) => {
  const e2ee = await E2ee.open({ userId, deviceId, http: server.http(userId, deviceId), ...(storeFile === undefined ? {} : { storeFile }) })
  opened.push(e2ee)
  await e2ee.processOutgoingRequests()
  return e2ee
}

/** Feeds the device its pending sync crypto input; returns what widgets would see. */
export const syncCrypto = (e2ee: E2ee) => e2ee.receiveSync(server.sync(e2ee.userId, e2ee.deviceId))

export let eventCounter = 0
export const wire = (sender: string, type: string, content: Json, id = `$ev${++eventCounter}`): RawEvent => ({
  type,
  event_id: id,
  sender,
  origin_server_ts: 1_700_000_000_000 + eventCounter,
  content,
  unsigned: { age: 1 }
})

/** Alice encrypts for Alice and Bob; the room key goes to Bob's to-device inbox. */
export const encryptFromAlice = async (alice: E2ee, roomId: string, body: string, id?: string) =>
  wire(ALICE, "m.room.encrypted", await alice.encryptRoomEvent(roomId, [ALICE, BOB], "m.room.message", { msgtype: "m.text", body }), id)

export const timelineOf = (bob: E2ee, options: ConstructorParameters<typeof DecryptingTimeline>[2] = {}) => {
  const seen: Array<RoomEvent> = []
  const reports: Array<UndecryptableReport> = []
  const timeline = new DecryptingTimeline(bob, (e) => seen.push(e), { onUndecryptable: (r) => reports.push(r), ...options })
  return { timeline, seen, reports }
}

/** Registers a fresh key server and temp directory per test, and closes what a test opened. */
export const useCryptoWorld = () => {
  beforeEach(async () => {
    server = new KeyServer()
    dir = await mkdtemp(join(tmpdir(), "widgethost-crypto-"))
  })
  afterEach(async () => {
    for (const e of opened.splice(0)) await e.close()
    await rm(dir, { recursive: true, force: true })
  })
}
