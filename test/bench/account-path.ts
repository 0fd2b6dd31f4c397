/**
 * The account path: room events from the embedded homeserver's `/sync`, through the HTTP adapter
 * (and, in an encrypted room, the decrypting timeline), to what the router receives from the
 * homeserver port. The homeserver runs in the same process, over real HTTP on 127.0.0.1, so its
 * cost to build each sync response is in every number.
 *
 * - events/s: Bob sends `events` messages while Alice is offline; Alice's port is reopened on her
 *   saved sync position and timed from `start()` to the last event handed to subscribers.
 * - fixed cost of one sync: Alice syncs with a zero long-poll timeout and nothing new, and the
 *   process's CPU time (client and server) is divided by the syncs made.
 * - crypto machine calls per sync: in a clear room with nothing for the crypto machine, it should
 *   be 0 (each call loads and re-pickles the Olm account: see `E2ee.receiveSync`).
 *
 * Run: `node --import ./test/bench/loader.mjs test/bench/account-path.ts [--events 1000] [--rounds 3]`.
 * Nothing is asserted.
 */
import { Effect } from "effect"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { fileURLToPath } from "node:url"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { startInEncryptedRoom } from "../src/engine-fixture.ts"
import { median, type Row } from "./harness.ts"

export interface AccountPathSettings {
  readonly events: number
  readonly rounds: number
  /** Seconds of idle syncing for the fixed cost. */
  readonly idleSeconds: number
}

export const defaults: AccountPathSettings = { events: 1000, rounds: 3, idleSeconds: 3 }

const PASSWORD = "correct horse battery staple"

interface World {
  readonly hs: EmbeddedHomeserver
  readonly root: string
  readonly roomId: string
  readonly bob: MatrixHomeserver
  readonly aliceUser: string
}

const open = (hs: EmbeddedHomeserver, user: string, dataDir: string, sync: ConnectOptions["sync"] = {}) =>
  connectHomeserver({ baseUrl: hs.baseUrl, auth: { user, password: PASSWORD }, dataDir, sync: { timeoutMs: 1_000, timelineLimit: 1_000, maxGapPages: 100, ...sync } })

/** Alice and Bob in one room (clear or encrypted), both synced once, Alice then offline. */
const setUp = async (encrypted: boolean): Promise<World> => {
  const root = await mkdtemp(join(tmpdir(), "widgethost-account-path-"))
  const hs = await startEmbeddedHomeserver({ dataDir: join(root, "hs") })
  const alice = await hs.ensureUser("alice", PASSWORD)
  const bobUser = await hs.ensureUser("bob", PASSWORD)
  const a = await open(hs, alice.userId, join(root, "alice"))
  const bob = await open(hs, bobUser.userId, join(root, "bob"))
  let roomId: string
  if (encrypted) roomId = await startInEncryptedRoom(a, bob)
  else {
    roomId = (await a.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: { preset: "public_chat" } })).room_id
    await bob.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
    const synced = [a.nextSync(), bob.nextSync()]
    a.start()
    bob.start()
    await Promise.all(synced)
  }
  await a.stop()
  return { hs, root, roomId, bob, aliceUser: alice.userId }
}

const tearDown = async (w: World) => {
  await w.bob.stop()
  await w.hs.close()
  await rm(w.root, { recursive: true, force: true })
}

/** Bob sends `count` messages (encrypted where the room is), sequentially. */
const send = async (w: World, count: number, round: number) => {
  for (let i = 0; i < count; i++) {
    await Effect.runPromise(w.bob.sendEvent({ _tag: "SendEvent", roomId: w.roomId, type: "m.room.message", content: { msgtype: "m.text", body: `r${round} m${i}` } }))
  }
}

/** Alice comes back online: ms from start to the last of `count` events reaching subscribers. */
const catchUp = async (w: World, count: number): Promise<number> => {
  const alice = await open(w.hs, w.aliceUser, join(w.root, "alice"))
  let seen = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => (done = resolve))
  alice.subscribe((update) => {
    if (update._tag === "RoomEvent" && update.event.room_id === w.roomId && update.event.type === "m.room.message" && ++seen === count) done()
  })
  const started = performance.now()
  alice.start()
  await all
  const elapsed = performance.now() - started
  await alice.stop()
  return elapsed
}

/** CPU µs per sync with nothing new, and crypto machine calls per such sync. */
const idleSyncs = async (w: World, seconds: number) => {
  const alice = await open(w.hs, w.aliceUser, join(w.root, "alice"), { timeoutMs: 0 })
  alice.start()
  await alice.nextSync()
  const syncs0 = alice.stats().syncs
  const skipped0 = alice.e2ee.syncsSkipped
  const cpu0 = process.cpuUsage()
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000))
  const cpu = process.cpuUsage(cpu0)
  const syncs = alice.stats().syncs - syncs0
  const machineCalls = syncs - (alice.e2ee.syncsSkipped - skipped0)
  await alice.stop()
  return { cpuMicrosPerSync: (cpu.user + cpu.system) / Math.max(1, syncs), machineCallsPerSync: Math.max(0, machineCalls) / Math.max(1, syncs), syncs }
}

export const measureAccountPath = async (settings: AccountPathSettings = defaults): Promise<Row[]> => {
  const rows: Row[] = []
  for (const encrypted of [false, true]) {
    const room = encrypted ? "encrypted room" : "clear room"
    const w = await setUp(encrypted)
    try {
      const rates: number[] = []
      // One warm-up round, then the measured ones.
      for (let round = 0; round <= settings.rounds; round++) {
        await send(w, settings.events, round)
        const ms = await catchUp(w, settings.events)
        if (round > 0) rates.push((settings.events * 1_000) / ms)
      }
      const idle = await idleSyncs(w, settings.idleSeconds)
      const scenario = `8 account path, /sync to router, ${room}`
      rows.push(
        { scenario, metric: "events/s", unit: "1/s", ours: median(rates), better: "higher", target: { text: ">= 5000/s", minValue: 5_000 }, detail: { rates, events: settings.events } },
        { scenario, metric: "CPU per sync with nothing new", unit: "µs", ours: idle.cpuMicrosPerSync, better: "lower", detail: { syncs: idle.syncs } },
        // Clear room: 0 means no crypto work per sync (the harness has no "at most" target, so none is set).
        { scenario, metric: "crypto machine calls per idle sync", unit: "calls", ours: idle.machineCallsPerSync, better: "lower" }
      )
    } finally {
      await tearDown(w)
    }
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { events: { type: "string" }, rounds: { type: "string" }, idle: { type: "string" } } })
  const rows = await measureAccountPath({
    events: Number(values.events ?? defaults.events),
    rounds: Number(values.rounds ?? defaults.rounds),
    idleSeconds: Number(values.idle ?? defaults.idleSeconds)
  })
  for (const row of rows) console.log(`${row.scenario.padEnd(48)} ${row.metric.padEnd(40)} ${row.ours.toFixed(row.ours < 10 ? 2 : 0)}`)
}
