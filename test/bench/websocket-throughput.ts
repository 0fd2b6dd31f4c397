/**
 * Websocket throughput on one connection: our MSC3009 transport (token check, JSON parse, a
 * session that answers, JSON stringify, bounded queue) against a bare `ws` echo server measured in
 * the same run, plus a bare `ws` echo that also parses and stringifies (the JSON share of the cost).
 *
 * The client keeps `WINDOW` requests in flight and counts answers; a round is `MESSAGES` answers.
 * Rounds of the three servers are interleaved; warm-up rounds are discarded; the table shows the
 * median of the measured rounds and the ratio to the bare server. Nothing asserts a time.
 *
 *   npx tsx test/bench/websocket-throughput.ts [--messages 20000] [--rounds 5] [--out file.json]
 */
import { writeFileSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { WebSocket, WebSocketServer } from "ws"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import { startWebsocketTransport } from "@widgethost/websocket"
import { median } from "./harness.ts"

/** The script's settings; importers pass their own (see `websocket.ts`). */
export interface ThroughputSettings {
  readonly messages: number
  readonly rounds: number
  readonly warmup: number
  readonly window: number
}

export const defaults: ThroughputSettings = { messages: 20000, rounds: 5, warmup: 2, window: 64 }

/** A typical widget request: a `send_event` with a short message body. */
export const request = (n: number) =>
  JSON.stringify({
    api: "fromWidget",
    widgetId: "bench",
    requestId: `req-${n}`,
    action: "send_event",
    data: { type: "m.room.message", content: { msgtype: "m.text", body: `message number ${n} from the benchmark widget` } }
  })

/**
 * Opens a connection and measures answers per second for one round. With `latencies`, also
 * records each request's round trip (answers come back in order on one connection).
 */
export const round = (url: string, settings: Pick<ThroughputSettings, "messages" | "window"> = defaults, latencies?: Array<number>) =>
  new Promise<number>((resolve, reject) => {
    const { messages: MESSAGES, window: WINDOW } = settings
    const ws = new WebSocket(url, { perMessageDeflate: false })
    const sentAt: Array<number> = []
    let sent = 0
    let answered = 0
    let started = 0
    const send = () => {
      if (latencies !== undefined) sentAt.push(performance.now())
      ws.send(request(sent++))
    }
    ws.once("error", reject)
    ws.once("open", () => {
      started = performance.now()
      while (sent < Math.min(WINDOW, MESSAGES)) send()
    })
    ws.on("message", () => {
      if (latencies !== undefined) latencies.push(performance.now() - sentAt[answered]!)
      answered++
      if (sent < MESSAGES) send()
      if (answered === MESSAGES) {
        const seconds = (performance.now() - started) / 1000
        ws.once("close", () => resolve(MESSAGES / seconds))
        ws.close()
      }
    })
  })

/** Rounds of every scenario interleaved, so load from elsewhere on the machine hits all alike. */
export const measure = async (
  scenarios: ReadonlyArray<{ readonly name: string; readonly nextUrl: () => string; readonly latencies?: Array<number> }>,
  settings: ThroughputSettings = defaults
) => {
  const { warmup: WARMUP, rounds: ROUNDS } = settings
  const rates = scenarios.map(() => [] as Array<number>)
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    for (const [index, scenario] of scenarios.entries()) {
      // Latencies of warm-up rounds are discarded with their rates.
      const latencies = i >= WARMUP ? scenario.latencies : undefined
      const rate = await round(scenario.nextUrl(), settings, latencies)
      if (i >= WARMUP) rates[index]!.push(rate)
    }
  }
  return scenarios.map((scenario, index) => ({ name: scenario.name, median: median(rates[index]!), rounds: rates[index]! }))
}

export const bareServer = async (json: boolean) => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  await new Promise((resolve) => wss.once("listening", resolve))
  wss.on("connection", (ws) =>
    ws.on("message", (data, isBinary) => {
      if (!json) return ws.send(data, { binary: isBinary })
      const message = JSON.parse((data as Buffer).toString()) as Record<string, unknown>
      ws.send(JSON.stringify({ ...message, response: { event_id: "$bench" } }))
    })
  )
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
  return { url, close: () => new Promise((resolve) => wss.close(resolve)) }
}

/** A session that answers every request the way the engine answers `send_event`. */
export const answeringSession = (send: (message: WidgetMessage) => void): WidgetSession => ({
  widgetId: "bench",
  receive: (raw) => send({ ...(raw as WidgetMessage), response: { event_id: "$bench" } }),
  frameLoaded: () => {},
  transportDown: () => {},
  transportUp: () => {},
  close: () => {},
  onClose: () => () => {}
})

const main = async () => {
  const { values } = parseArgs({
    options: {
      messages: { type: "string", default: String(defaults.messages) },
      rounds: { type: "string", default: String(defaults.rounds) },
      warmup: { type: "string", default: String(defaults.warmup) },
      window: { type: "string", default: String(defaults.window) },
      out: { type: "string", default: join(tmpdir(), "widgethost-websocket-throughput.json") }
    }
  })
  const settings: ThroughputSettings = { messages: Number(values.messages), rounds: Number(values.rounds), warmup: Number(values.warmup), window: Number(values.window) }
  const { messages: MESSAGES, rounds: ROUNDS, warmup: WARMUP, window: WINDOW } = settings
  const bare = await bareServer(false)
  const bareJson = await bareServer(true)
  const ours = await startWebsocketTransport({ rateLimit: { messages: Number.MAX_SAFE_INTEGER, perMs: 1000 } })
  const rows = await measure([
    { name: "ws echo (bare)", nextUrl: () => bare.url },
    { name: "ws echo + JSON parse/stringify", nextUrl: () => bareJson.url },
    { name: "widgethost websocket transport", nextUrl: () => ours.register("bench", answeringSession).uri }
  ], settings)
  await Promise.all([bare.close(), bareJson.close(), ours.close()])

  const reference = rows[0]!.median
  const table = rows.map((row) => ({ scenario: row.name, "messages/s (median)": Math.round(row.median), "vs bare ws": `${(row.median / reference).toFixed(2)}×` }))
  console.log(`one connection, ${MESSAGES} request/answer pairs per round, ${WINDOW} in flight, ${WARMUP} warm-up + ${ROUNDS} rounds, node ${process.version}`)
  console.table(table)
  writeFileSync(values.out, JSON.stringify({ messages: MESSAGES, window: WINDOW, rounds: ROUNDS, node: process.version, rows }, null, 2))
  console.log(`results: ${values.out}`)
}

// Runs as a script; `websocket.ts` imports the functions above.
if (process.argv[1] === import.meta.filename) await main()
