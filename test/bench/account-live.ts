/**
 * The account path live: Alice's port long-polls `/sync` with an engine on it and one ready
 * widget in the room (receive m.room.message approved), while Bob sends `events` messages with
 * `inFlight` sends outstanding. Timed from Bob's first send to the last `send_event` reaching the
 * widget: the whole path a user's client runs. The homeserver and Bob run where the world's
 * placement says (`account-world.ts`); the CPU per event is split into this process's (Alice's
 * client, engine and widget side) and the homeserver process's (server and Bob).
 *
 * Also counted, on Alice's side only: calls into her OlmMachine (every method, by wrapping the
 * instance) and her requests to `/keys/*`, per event (test/src/crypto-counters.ts). In a clear
 * room both must be 0.
 */
import { fromEffectPort } from "@widgethost/core/effect"
import { isResponse, type WidgetMessage } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { approveAll } from "@widgethost/testing"
import { countCryptoWork } from "../src/crypto-counters.ts"
import { roomWidget, waitUntil } from "../src/engine-fixture.ts"
import { percentile } from "./harness.ts"
import { openAlice, sendOne, sharedNow, type World } from "./account-world.ts"

export interface LiveSample {
  readonly eventsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** This process's CPU per event delivered: Alice's client and engine (and, in the same process, the homeserver and Bob). */
  readonly cpuMicrosPerEvent: number
  /** The homeserver process's CPU per event (server and Bob); 0 when it is this process. */
  readonly serverCpuMicrosPerEvent: number
  readonly machineCallsPerEvent: number
  readonly keysRequestsPerEvent: number
  readonly syncs: number
}

const RECEIVE = "org.matrix.msc2762.receive.event:m.room.message"

export const live = async (w: World, events: number, inFlight: number, round: number): Promise<LiveSample> => {
  const alice = await openAlice(w, { timeoutMs: 30_000 })
  const engine = createEngine({ homeserver: fromEffectPort(alice), approver: approveAll })
  // Arrival times by message index, on the clock shared with the homeserver's process.
  const prefix = `live r${round}`
  const arrivedAt = new Array<number>(events).fill(Number.NaN)
  let arrived = 0
  let ready = false
  let lastAt = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => (done = resolve))
  const ping = `live r${round} ping m0`
  let pinged: () => void = () => {}
  const pingArrived = new Promise<void>((resolve) => (pinged = resolve))
  const widget = roomWidget(`live-${round}`, w.roomId)
  const session = engine.openSession({
    widget,
    send: (message: WidgetMessage) => {
      if (message.api !== "toWidget" || isResponse(message)) return
      const request = message
      if (request.action === "notify_capabilities") ready = true
      if (request.action === "send_event") {
        const body = ((request.data as { content?: { body?: unknown } }).content?.body ?? "") as string
        if (body === ping) pinged()
        const index = body.startsWith(`${prefix} m`) ? Number(body.slice(prefix.length + 2)) : Number.NaN
        if (index >= 0 && index < events && Number.isNaN(arrivedAt[index])) {
          lastAt = sharedNow()
          arrivedAt[index] = lastAt
          if (++arrived === events) done()
        }
      }
      const response = request.action === "capabilities" ? { capabilities: [RECEIVE] } : request.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      setImmediate(() => session.receive({ ...request, response }))
    }
  })
  session.frameLoaded()
  alice.start()
  await waitUntil("the live widget to be ready", () => ready && session.info().phase === "ready")
  // One message through the whole path before counting: Alice's first sync of a run (its crypto
  // machine call included) is then behind us. Waiting for a first sync instead would wait out the
  // 30 s long-poll from her saved token, idle time that once made most of this row's run.
  await sendOne(w, `live r${round} ping`)
  await pingArrived
  const crypto = countCryptoWork(alice)
  const syncs0 = alice.stats().syncs

  const server0 = w.placement === "same process" ? 0 : await w.serverCpuMicros()
  const cpu0 = process.cpuUsage()
  const started = sharedNow()
  const sentAt = await w.sendMany(prefix, events, inFlight)
  await all
  const cpu = process.cpuUsage(cpu0)
  const serverCpu = w.placement === "same process" ? 0 : (await w.serverCpuMicros()) - server0
  const latencies = arrivedAt.map((t, i) => t - sentAt[i]!)
  const sample: LiveSample = {
    eventsPerSecond: (events * 1_000) / (lastAt - started),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    cpuMicrosPerEvent: (cpu.user + cpu.system) / events,
    serverCpuMicrosPerEvent: serverCpu / events,
    machineCallsPerEvent: crypto.machineCallTotal() / events,
    keysRequestsPerEvent: crypto.keysRequestTotal() / events,
    syncs: alice.stats().syncs - syncs0
  }
  engine.stop()
  await alice.stop()
  return sample
}
