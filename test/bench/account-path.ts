/**
 * The account path: room events from the embedded homeserver's `/sync`, through the HTTP adapter
 * (and, in an encrypted room, the decrypting timeline), to what the router receives from the
 * homeserver port, over real HTTP on 127.0.0.1.
 *
 * Setup: the homeserver and Bob (the sender) run in a child process, as in real use, where they
 * are other machines: on this 2-core machine Alice's client and the server each have a core,
 * and this process's CPU is the client's alone. The clear room is measured a second time with
 * the homeserver and Bob in this process ("same process" rows), where every number also pays
 * for building each sync response, serving each send and Bob's client.
 *
 * - events/s: Bob sends `events` messages while Alice is offline; Alice's port is reopened on her
 *   saved sync position and timed from `start()` to the last event handed to subscribers.
 * - fixed cost of one sync: Alice syncs with a zero long-poll timeout and nothing new, and this
 *   process's CPU time (the client's; the server's too in the same process) is divided by the
 *   syncs made.
 * - crypto machine calls per sync: in a clear room with nothing for the crypto machine, it should
 *   be 0 (each call loads and re-pickles the Olm account: see `E2ee.receiveSync`).
 * - live (account-live.ts): Alice long-polls with an engine and a ready widget on her port while
 *   Bob sends; events/s and latency from Bob's send to the widget, the client's and the server
 *   process's CPU per event, and Alice's OlmMachine calls and `/keys/*` requests per event (0 in
 *   a clear room).
 *
 * Run: `node --import ./test/bench/loader.mjs test/bench/account-path.ts [--events 1000] [--encrypted-events 300] [--rounds 3] [--in-flight 8] [--placement child|same|both] [--rooms clear|encrypted|both]`.
 * Nothing is asserted.
 */
import { parseArgs } from "node:util"
import { fileURLToPath } from "node:url"
import { live, type LiveSample } from "./account-live.ts"
import { openAlice, setUp, tearDown, type Placement, type World } from "./account-world.ts"
import { median, type Row } from "./harness.ts"

export interface AccountPathSettings {
  readonly events: number
  /**
   * Events per round in the encrypted room: Bob's encrypted sends and Alice's decryption run at a
   * few hundred a second, so a clear room's size would make this scenario most of the bench's
   * budget; a round of this size still takes about a second to catch up, enough for its median.
   */
  readonly encryptedEvents: number
  readonly rounds: number
  /** Seconds of idle syncing for the fixed cost. */
  readonly idleSeconds: number
  /** Bob's sends outstanding at once in the live rounds. */
  readonly inFlight: number
  /** "child": the homeserver in another process only; "both": also the clear room in this one. */
  readonly placement: "child" | "same" | "both"
  /** Which rooms: "clear" alone makes a quick A/B run (the encrypted room is most of the bench's time). */
  readonly rooms: "clear" | "encrypted" | "both"
}

export const defaults: AccountPathSettings = { events: 1000, encryptedEvents: 300, rounds: 3, idleSeconds: 3, inFlight: 8, placement: "both", rooms: "both" }

/** The (room, placement) pairs measured: the encrypted room in the same process is left out (slow, and no new question). */
const worlds = (placement: AccountPathSettings["placement"], rooms: AccountPathSettings["rooms"]): ReadonlyArray<{ encrypted: boolean; placement: Placement }> =>
  [
    ...(placement === "same" ? [] : [{ encrypted: false, placement: "child process" as const }, { encrypted: true, placement: "child process" as const }]),
    ...(placement === "child" ? [] : [{ encrypted: false, placement: "same process" as const }])
  ].filter((w) => rooms === "both" || w.encrypted === (rooms === "encrypted"))

/** Bob sends `count` messages (encrypted where the room is), one at a time. */
const send = (w: World, count: number, round: number) => w.sendMany(`r${round}`, count, 1)

/** Alice comes back online: ms from start to the last of `count` events reaching subscribers. */
const catchUp = async (w: World, count: number): Promise<number> => {
  const alice = await openAlice(w)
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
  const alice = await openAlice(w, { timeoutMs: 0 })
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
  for (const { encrypted, placement } of worlds(settings.placement, settings.rooms)) {
    const room = `${encrypted ? "encrypted room" : "clear room"}, homeserver in ${placement === "child process" ? "a child process" : "the same process"}`
    const w = await setUp(encrypted, placement)
    const events = encrypted ? settings.encryptedEvents : settings.events
    try {
      const rates: number[] = []
      // One warm-up round, then the measured ones.
      for (let round = 0; round <= settings.rounds; round++) {
        await send(w, events, round)
        const ms = await catchUp(w, events)
        if (round > 0) rates.push((events * 1_000) / ms)
      }
      const idle = await idleSyncs(w, settings.idleSeconds)
      const lives: LiveSample[] = []
      for (let round = 0; round <= settings.rounds; round++) {
        const sample = await live(w, events, settings.inFlight, round)
        if (round > 0) lives.push(sample)
      }
      const of = (pick: (s: LiveSample) => number) => median(lives.map(pick))
      const catchUpScenario = `8 account path, catch-up /sync to port, ${room}`
      const liveScenario = `8 account path, live /sync to widget, ${room}`
      rows.push(
        { scenario: catchUpScenario, metric: "events/s", unit: "1/s", ours: median(rates), better: "higher", target: { text: ">= 5000/s", minValue: 5_000 }, detail: { rates, events } },
        { scenario: catchUpScenario, metric: placement === "child process" ? "client CPU per sync with nothing new" : "CPU per sync with nothing new", unit: "µs", ours: idle.cpuMicrosPerSync, better: "lower", detail: { syncs: idle.syncs } },
        { scenario: catchUpScenario, metric: "crypto machine calls per idle sync", unit: "calls", ours: idle.machineCallsPerSync, better: "lower", ...(encrypted ? {} : { target: { text: "0", maxValue: 0 } }) },
        { scenario: liveScenario, metric: `events/s, ${settings.inFlight} sends in flight`, unit: "1/s", ours: of((s) => s.eventsPerSecond), better: "higher", target: { text: ">= 5000/s", minValue: 5_000 }, detail: { samples: lives, events } },
        // Few events per sync means the fixed cost of a sync (request, response, state save) is paid per event.
        { scenario: liveScenario, metric: "events per sync", unit: "events", ours: of((s) => events / Math.max(1, s.syncs)), better: "higher" },
        { scenario: liveScenario, metric: "p99 send to widget", unit: "ms", ours: of((s) => s.p99Ms), better: "lower", target: { text: "< 50 ms", maxValue: 50 }, detail: { p50: lives.map((s) => s.p50Ms) } },
        { scenario: liveScenario, metric: placement === "child process" ? "client process CPU per event" : "process CPU per event (all of it)", unit: "µs", ours: of((s) => s.cpuMicrosPerEvent), better: "lower" },
        ...(placement === "child process" ? [{ scenario: liveScenario, metric: "homeserver + Bob process CPU per event", unit: "µs", ours: of((s) => s.serverCpuMicrosPerEvent), better: "lower" as const }] : []),
        { scenario: liveScenario, metric: "Alice's OlmMachine calls per event", unit: "calls", ours: of((s) => s.machineCallsPerEvent), better: "lower", ...(encrypted ? {} : { target: { text: "0", maxValue: 0 } }) },
        { scenario: liveScenario, metric: "Alice's /keys requests per event", unit: "calls", ours: of((s) => s.keysRequestsPerEvent), better: "lower", ...(encrypted ? {} : { target: { text: "0", maxValue: 0 } }) }
      )
    } finally {
      await tearDown(w)
    }
  }
  return rows
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { events: { type: "string" }, "encrypted-events": { type: "string" }, rounds: { type: "string" }, idle: { type: "string" }, "in-flight": { type: "string" }, placement: { type: "string" }, rooms: { type: "string" } } })
  const rows = await measureAccountPath({
    events: Number(values.events ?? defaults.events),
    encryptedEvents: Number(values["encrypted-events"] ?? defaults.encryptedEvents),
    rounds: Number(values.rounds ?? defaults.rounds),
    idleSeconds: Number(values.idle ?? defaults.idleSeconds),
    inFlight: Number(values["in-flight"] ?? defaults.inFlight),
    placement: (values.placement ?? defaults.placement) as AccountPathSettings["placement"],
    rooms: (values.rooms ?? defaults.rooms) as AccountPathSettings["rooms"]
  })
  for (const row of rows) console.log(`${row.scenario.padEnd(90)} ${row.metric.padEnd(40)} ${row.ours.toFixed(row.ours < 10 ? 2 : 0)}`)
}
