/**
 * Decryptions per second: the adapter's decrypt-and-route path (`DecryptingTimeline.push`, what
 * the sync loop runs for every room timeline) against crypto-wasm's `OlmMachine.decryptRoomEvent`
 * alone, on the same Megolm events and the same machine and store, in the same run.
 *
 * Run: `npx tsx test/bench/decryption.ts [--events 2000] [--rounds 5] [--batch 50] [--json out.json]`.
 * Nothing is asserted.
 */
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import { writeFile } from "node:fs/promises"
import { parseArgs } from "node:util"
import { type CryptoHttp, E2ee, type RawEvent } from "@widgethost/homeserver-client"
import { DecryptingTimeline } from "@widgethost/homeserver-client"
import type { HttpRequest } from "@widgethost/homeserver-client"
import { median } from "./harness.ts"

type Json = Record<string, unknown>

/** The script's settings; `run.ts` passes its own. */
export interface DecryptionSettings {
  readonly events: number
  readonly rounds: number
  readonly batch: number
}

export const defaults: DecryptionSettings = { events: 2000, rounds: 5, batch: 50 }

/** Keys and to-device, in memory: just enough for Alice to share a room key with Bob. */
const keyServer = () => {
  const deviceKeys = new Map<string, Json>()
  const otks = new Map<string, Map<string, Json>>()
  const inbox = new Map<string, Array<Json>>()
  const http = (userId: string, deviceId: string): CryptoHttp => ({
    request: async <T>(req: HttpRequest): Promise<T> => {
      const body = (typeof req.body === "string" ? JSON.parse(req.body) : req.body) as Json
      const route = req.path.replace("/_matrix/client/v3", "")
      if (route === "/keys/upload") {
        if (body["device_keys"] !== undefined) deviceKeys.set(userId, { [deviceId]: body["device_keys"] })
        const pool = otks.get(userId) ?? new Map<string, Json>()
        for (const [id, key] of Object.entries((body["one_time_keys"] ?? {}) as Json)) pool.set(id, key as Json)
        otks.set(userId, pool)
        return { one_time_key_counts: { signed_curve25519: pool.size } } as T
      }
      if (route === "/keys/query")
        return { device_keys: Object.fromEntries(Object.keys(body["device_keys"] as Json).map((u) => [u, deviceKeys.get(u) ?? {}])), failures: {} } as T
      if (route === "/keys/claim") {
        const out: Record<string, Record<string, Json>> = {}
        for (const [user, devices] of Object.entries(body["one_time_keys"] as Record<string, Json>))
          for (const device of Object.keys(devices)) {
            const pool = otks.get(user)
            const first = pool?.keys().next().value
            if (pool !== undefined && first !== undefined) {
              ;(out[user] ??= {})[device] = { [first]: pool.get(first) }
              pool.delete(first)
            }
          }
        return { one_time_keys: out, failures: {} } as T
      }
      const m = /^\/sendToDevice\/([^/]+)\//.exec(route)
      if (m !== null) {
        for (const [user, devices] of Object.entries((body["messages"] ?? {}) as Record<string, Json>))
          for (const content of Object.values(devices)) inbox.set(user, [...(inbox.get(user) ?? []), { type: decodeURIComponent(m[1]!), sender: userId, content }])
        return {} as T
      }
      return {} as T
    }
  })
  const take = (user: string) => {
    const pending = inbox.get(user) ?? []
    inbox.set(user, [])
    return pending
  }
  return { http, take }
}

/** Measures both paths on the same events; returns the rows and every round's milliseconds. */
export const measureDecryption = async (options: DecryptionSettings = defaults) => {
  const { events: EVENTS, rounds: ROUNDS, batch: BATCH } = options
  const server = keyServer()
  const ALICE = "@alice:bench"
  const BOB = "@bob:bench"
  const ROOM = "!bench:bench"
  const alice = await E2ee.open({ userId: ALICE, deviceId: "ALICE", http: server.http(ALICE, "ALICE") })
  const bob = await E2ee.open({ userId: BOB, deviceId: "BOB", http: server.http(BOB, "BOB") })
  await alice.processOutgoingRequests()
  await bob.processOutgoingRequests()

  const events: Array<RawEvent> = []
  for (let i = 0; i < EVENTS; i++) {
    const content = await alice.encryptRoomEvent(ROOM, [ALICE, BOB], "m.room.message", { msgtype: "m.text", body: `message ${i}` })
    events.push({ type: "m.room.encrypted", event_id: `$e${i}`, sender: ALICE, origin_server_ts: 1_700_000_000_000 + i, content })
  }
  await bob.receiveSync({ toDevice: server.take(BOB), oneTimeKeyCounts: { signed_curve25519: 50 } })

  const settings = new sdk.DecryptionSettings(sdk.TrustRequirement.Untrusted)
  const roomId = new sdk.RoomId(ROOM)
  // The IndexedDB store (fake-indexeddb) slows down as a run goes on, for both paths alike
  // (+15 % a round here): the two paths take turns batch by batch, so both see the same store.
  const round = async () => {
    let referenceMs = 0
    let adapterMs = 0
    let delivered = 0
    const timeline = new DecryptingTimeline(bob, () => {
      delivered += 1
    })
    for (let i = 0, turn = 0; i < events.length; i += BATCH, turn++) {
      const batch = events.slice(i, i + BATCH)
      const reference = async () => {
        const t0 = performance.now()
        for (const e of batch) await bob.machine.decryptRoomEvent(JSON.stringify({ ...e, room_id: ROOM }), roomId, settings)
        referenceMs += performance.now() - t0
      }
      const adapter = async () => {
        const t0 = performance.now()
        await timeline.push(ROOM, batch)
        adapterMs += performance.now() - t0
      }
      // Alternate who goes first, so neither always finds the warmer cache.
      if (turn % 2 === 0) {
        await reference()
        await adapter()
      } else {
        await adapter()
        await reference()
      }
    }
    timeline.close()
    if (delivered !== events.length || timeline.stats.decrypted !== events.length) throw new Error(`adapter delivered ${delivered}/${events.length}`)
    return { referenceMs, adapterMs }
  }
  // The same keys in crypto-wasm's memory store: what the IndexedDB store (fake-indexeddb) costs.
  const memory = await sdk.OlmMachine.initialize(new sdk.UserId(BOB), new sdk.DeviceId("BOBMEM"))
  await memory.importExportedRoomKeys(await bob.machine.exportRoomKeys(() => true), () => undefined)
  const memoryReference = async () => {
    const t0 = performance.now()
    for (const e of events) await memory.decryptRoomEvent(JSON.stringify({ ...e, room_id: ROOM }), roomId, settings)
    return performance.now() - t0
  }

  await round() // warm-up: JIT, wasm, the store's caches
  await memoryReference()
  const refMs: Array<number> = []
  const adaptMs: Array<number> = []
  const memMs: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    const { referenceMs, adapterMs } = await round()
    refMs.push(referenceMs)
    adaptMs.push(adapterMs)
    memMs.push(await memoryReference())
  }
  const refRate = (EVENTS / median(refMs)) * 1000
  const row = (scenario: string, ms: ReadonlyArray<number>) => {
    const rate = (EVENTS / median(ms)) * 1000
    return { scenario, eventsPerSecond: Math.round(rate), medianMs: Math.round(median(ms)), ratio: Number((rate / refRate).toFixed(3)) }
  }
  const rows = [
    row("OlmMachine.decryptRoomEvent, IndexedDB store (reference)", refMs),
    row(`adapter: DecryptingTimeline.push, batches of ${BATCH}`, adaptMs),
    row("OlmMachine.decryptRoomEvent, memory store (for scale)", memMs)
  ]
  const report = { bench: "decryption", events: EVENTS, rounds: ROUNDS, batch: BATCH, node: process.version, rows, referenceMs: refMs, adapterMs: adaptMs, memoryStoreMs: memMs }
  memory.close()
  await alice.close()
  await bob.close()
  return report
}

const main = async () => {
  const { values: args } = parseArgs({
    options: {
      events: { type: "string", default: String(defaults.events) },
      rounds: { type: "string", default: String(defaults.rounds) },
      batch: { type: "string", default: String(defaults.batch) },
      json: { type: "string" }
    }
  })
  const report = await measureDecryption({ events: Number(args.events), rounds: Number(args.rounds), batch: Number(args.batch) })
  process.stdout.write(`decryption: ${report.events} megolm events, ${report.rounds} rounds (median), node ${process.version}\n`)
  console.table(report.rows)
  process.stdout.write(`${JSON.stringify(report)}\n`)
  if (args.json !== undefined) await writeFile(args.json, JSON.stringify(report, null, 2))
}

// Runs as a script; `run.ts` imports `measureDecryption`.
if (process.argv[1] === import.meta.filename) await main()
