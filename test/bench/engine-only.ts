/**
 * The engine's own cost, with no transport and no widget side, ours only. `npm run bench`'s
 * host-only rows compare both engines' costs (the fake windows kept, their floor subtracted);
 * this calls the engine directly instead, no postMessage adapter, no windows. The widget is
 * played by code that answers at once; its own work (building and cloning the answers) is kept
 * out of the timed part where it can be.
 *
 *   node --import ./test/bench/loader.mjs test/bench/engine-only.ts [--widgets 100] [--rounds 5]
 *
 * Prints, per measure, the median of the rounds: µs per `send_event` round trip, µs of engine
 * time per room event delivered to one of N widgets (including its acknowledgement), and µs per
 * session opened, negotiated and closed. A diagnostic: nothing is compared or asserted.
 */
import { parseArgs } from "node:util"
import type { WidgetMessage } from "@widgethost/core"
import { createEngine, type Engine, type EngineSession } from "@widgethost/engine"
import { median, polyfill, silenceConsole } from "./harness.ts"
import { benchHomeserver, definitionOf, MESSAGE_CAPABILITIES, ROOM, roomMessage, WIDGET_ORIGIN } from "./hosts.ts"

type Outbox = Array<{ readonly session: EngineSession; readonly message: WidgetMessage }>

const isRequest = (message: WidgetMessage) => message.api === "toWidget" && !("response" in message)

/** The widget's answer to a toWidget request: every capability it wants, or a bare acknowledgement. */
const answerTo = (message: WidgetMessage) => Object.assign({}, message, { response: message.action === "capabilities" ? { capabilities: MESSAGE_CAPABILITIES } : {} })

/** An engine with `n` widgets that answer every toWidget request from `outbox` when told to. */
const setup = async (n: number) => {
  const homeserver = benchHomeserver()
  const engine = createEngine({ homeserver, approver: ({ requested }) => Promise.resolve(requested) })
  const outbox: Outbox = []
  const sessions = Array.from({ length: n }, (_, i) => {
    const holder: { session?: EngineSession } = {}
    const session = engine.openSession({
      widget: definitionOf({ id: `w${i}`, roomId: ROOM, capabilities: [] }),
      origin: WIDGET_ORIGIN,
      send: (message) => outbox.push({ session: holder.session!, message })
    })
    holder.session = session
    return session
  })
  const answerAll = () => {
    while (outbox.length > 0) {
      for (const { session, message } of outbox.splice(0)) {
        if (isRequest(message)) session.receive(structuredClone(answerTo(message)))
      }
      engine.flush()
    }
  }
  for (const session of sessions) session.frameLoaded()
  for (let i = 0; i < 3; i++) {
    engine.flush()
    answerAll()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const notReady = engine.sessions().filter((s) => s.phase !== "ready").length
  if (notReady > 0) throw new Error(`${notReady} sessions not ready`)
  outbox.length = 0
  return { engine, homeserver, sessions, outbox }
}

/** µs per send_event round trip: request in, homeserver call (answered at once), reply out. */
const roundTrip = async (count: number): Promise<number> => {
  const { engine, sessions, outbox } = await setup(1)
  const session = sessions[0]!
  const requests = Array.from({ length: count }, (_, i) =>
    structuredClone({ api: "fromWidget", widgetId: "w0", requestId: `r${i}`, action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: `round trip ${i}` } } })
  )
  const started = performance.now()
  for (const request of requests) {
    session.receive(request)
    // The drain is a promise reaction; let it run as it would at the end of a task.
    await Promise.resolve()
  }
  // The last replies wait on their port calls' promise reactions: let them settle.
  for (let turn = 0; turn < 100 && outbox.length < count; turn++) await new Promise((resolve) => setImmediate(resolve))
  const us = ((performance.now() - started) / count) * 1000
  if (outbox.length !== count) throw new Error(`${outbox.length} replies for ${count} requests`)
  engine.stop()
  return us
}

/** µs of engine time per delivery: publish to N widgets, then take their N acknowledgements. */
const fanOut = async (n: number, events: number): Promise<number> => {
  const { engine, homeserver, outbox } = await setup(n)
  let engineMs = 0
  for (let e = 0; e < events; e++) {
    const t0 = performance.now()
    homeserver.publish({ _tag: "RoomEvent", event: roomMessage() })
    engine.flush()
    engineMs += performance.now() - t0
    if (outbox.length !== n) throw new Error(`${outbox.length} deliveries for ${n} widgets`)
    // The widget side, untimed: each acknowledgement as postMessage would hand it over.
    const acks = outbox.splice(0).map(({ session, message }) => ({ session, ack: structuredClone(answerTo(message)) }))
    const t1 = performance.now()
    for (const { session, ack } of acks) session.receive(ack)
    engine.flush()
    engineMs += performance.now() - t1
  }
  engine.stop()
  return (engineMs / (events * n)) * 1000
}

/** µs per session opened, negotiated to ready (approver answering at once) and closed. */
const negotiation = async (count: number): Promise<number> => {
  const engine: Engine = createEngine({ homeserver: benchHomeserver(), approver: ({ requested }) => Promise.resolve(requested) })
  const one = async (i: number) => {
    const holder: { session?: EngineSession } = {}
    await new Promise<void>((resolve) => {
      holder.session = engine.openSession({
        widget: definitionOf({ id: `n${i}`, roomId: ROOM, capabilities: [] }),
        origin: WIDGET_ORIGIN,
        send: (message) => {
          if (!isRequest(message)) return
          holder.session!.receive(answerTo(message))
          if (message.action === "notify_capabilities") resolve()
        }
      })
      holder.session.frameLoaded()
    })
    holder.session!.close()
  }
  const started = performance.now()
  for (let i = 0; i < count; i++) await one(i)
  const us = ((performance.now() - started) / count) * 1000
  engine.stop()
  return us
}

const main = async () => {
  const { values } = parseArgs({ options: { widgets: { type: "string", default: "100" }, rounds: { type: "string", default: "5" } } })
  const widgets = Number(values.widgets)
  const rounds = Number(values.rounds)
  polyfill()
  const restore = silenceConsole()
  const measures: Array<[string, () => Promise<number>]> = [
    ["send_event round trip (µs)", () => roundTrip(200_000)],
    [`delivery to one of ${widgets} widgets, with its ack (µs)`, () => fanOut(widgets, Math.max(200, Math.round(200_000 / widgets)))],
    ["session opened, negotiated, closed (µs)", () => negotiation(20_000)]
  ]
  const lines: string[] = []
  for (const [name, measure] of measures) {
    await measure() // warm-up
    const samples: number[] = []
    for (let r = 0; r < rounds; r++) samples.push(await measure())
    lines.push(`${name.padEnd(52)} ${median(samples).toFixed(2).padStart(8)}   (rounds: ${samples.map((s) => s.toFixed(2)).join(", ")})`)
  }
  restore()
  console.log(lines.join("\n"))
}

if (process.argv[1] === import.meta.filename) await main()
