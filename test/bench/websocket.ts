/**
 * Scenario 6, websocket transport (ours only, against the limit of `ws` itself): messages per
 * second and p50/p99 round trip over one connection and over 100, next to a bare `ws` echo server
 * (and one that also parses and stringifies JSON) measured in the same run.
 *
 * One connection reuses `websocket-throughput.ts` as is (its `measure`: 64 requests in flight,
 * servers interleaved). A hundred connections: all are opened first, then each keeps one request
 * in flight (100 in flight in all, like 100 widgets each awaiting its answer); the clock runs from
 * the first send to the last answer. Our transport runs with its rate limit lifted (its default,
 * 500 messages per second per connection, would close these connections; the bare server has
 * none) and answers through a stub session (`answeringSession`): this is the transport, not the
 * engine (scenario 8 runs the engine over websockets).
 *
 *   npx tsx test/bench/websocket.ts [--quick]
 */
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import { startWebsocketTransport } from "@widgethost/websocket"
import { interleave, median, percentile, progress, renderTable, type Row, type Settings, settingsFor } from "./harness.ts"
import { answeringSession, bareServer, measure, request } from "./websocket-throughput.ts"

const open = (url: string) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

/** Opens every URL, then runs `perConnection` request/answer pairs on each, `window` in flight per connection. */
export const roundMany = async (urls: ReadonlyArray<string>, perConnection: number, window: number, latencies: Array<number>): Promise<number> => {
  const sockets = await Promise.all(urls.map(open))
  const total = sockets.length * perConnection
  const seconds = await new Promise<number>((resolve) => {
    let finished = 0
    let counter = 0
    const started = performance.now()
    for (const ws of sockets) {
      const sentAt: number[] = []
      let sent = 0
      let answered = 0
      const send = () => {
        sentAt.push(performance.now())
        sent++
        ws.send(request(counter++))
      }
      ws.on("message", () => {
        latencies.push(performance.now() - sentAt[answered]!)
        answered++
        if (sent < perConnection) send()
        else if (answered === perConnection && ++finished === sockets.length) resolve((performance.now() - started) / 1000)
      })
      while (sent < Math.min(window, perConnection)) send()
    }
  })
  await Promise.all(sockets.map((ws) => new Promise((resolve) => (ws.once("close", resolve), ws.close()))))
  return total / seconds
}

const rowsFor = (scenario: string, ours: { rate: number; latencies: number[] }, bare: { rate: number; latencies: number[] }, detail: Record<string, unknown>): Row[] => [
  {
    scenario,
    metric: "messages/s",
    unit: "1/s",
    ours: ours.rate,
    against: { name: "bare ws echo", value: bare.rate },
    better: "higher",
    target: { text: ">= 0.7x", minRatio: 0.7 },
    detail
  },
  { scenario, metric: "round trip p50", unit: "ms", ours: percentile(ours.latencies, 50), against: { name: "bare ws echo", value: percentile(bare.latencies, 50) }, better: "lower" },
  { scenario, metric: "round trip p99", unit: "ms", ours: percentile(ours.latencies, 99), against: { name: "bare ws echo", value: percentile(bare.latencies, 99) }, better: "lower" }
]

export const websocket = async (settings: Settings): Promise<Row[]> => {
  const bare = await bareServer(false)
  const bareJson = await bareServer(true)
  const ours = await startWebsocketTransport({ rateLimit: { messages: Number.MAX_SAFE_INTEGER, perMs: 1000 } })
  const rows: Row[] = []
  try {
    progress("websocket: one connection")
    const one = { messages: settings.quick ? 5_000 : 20_000, window: 64, rounds: settings.rounds, warmup: settings.warmup }
    const latencies = { bare: [] as number[], json: [] as number[], ours: [] as number[] }
    const single = await measure(
      [
        { name: "ws echo (bare)", nextUrl: () => bare.url, latencies: latencies.bare },
        { name: "ws echo + JSON parse/stringify", nextUrl: () => bareJson.url, latencies: latencies.json },
        { name: "widgethost websocket transport", nextUrl: () => ours.register("bench", answeringSession).uri, latencies: latencies.ours }
      ],
      one
    )
    const [bareRow, jsonRow, oursRow] = single as [(typeof single)[number], (typeof single)[number], (typeof single)[number]]
    const detail1 = { ...one, rounds: Object.fromEntries(single.map((r) => [r.name, r.rounds])), jsonEcho: { rate: jsonRow.median, p50: percentile(latencies.json, 50), p99: percentile(latencies.json, 99) } }
    rows.push(...rowsFor("6 websocket, 1 connection", { rate: oursRow.median, latencies: latencies.ours }, { rate: bareRow.median, latencies: latencies.bare }, detail1))

    progress("websocket: 100 connections")
    const connections = 100
    const perConnection = settings.quick ? 50 : 200
    const many = { ours: [] as number[], bare: [] as number[] }
    const samples = await interleave(settings, [
      { name: "bare", round: () => roundMany(Array.from({ length: connections }, () => bare.url), perConnection, 1, many.bare) },
      { name: "ours", round: () => roundMany(Array.from({ length: connections }, () => ours.register("bench", answeringSession).uri), perConnection, 1, many.ours) }
    ])
    // Warm-up rounds pushed latencies too: keep only the measured rounds' share (the last ones).
    const keep = settings.rounds * connections * perConnection
    const detail100 = { connections, perConnection, inFlightPerConnection: 1, rounds: Object.fromEntries(samples) }
    rows.push(
      ...rowsFor(
        `6 websocket, ${connections} connections`,
        { rate: median(samples.get("ours")!), latencies: many.ours.slice(-keep) },
        { rate: median(samples.get("bare")!), latencies: many.bare.slice(-keep) },
        detail100
      )
    )
  } finally {
    await Promise.all([bare.close(), bareJson.close(), ours.close()])
  }
  return rows
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({ options: { quick: { type: "boolean", default: false } } })
  console.log(renderTable(await websocket(settingsFor(values.quick))))
}
