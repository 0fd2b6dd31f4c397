/**
 * Scenario 8, simulation scale (ours only): the largest number of concurrent websocket widget
 * sessions one process holds with p99 delivery latency under 50 ms at a stated event rate.
 *
 * Three processes: this one only starts and reads the others. The server process runs the engine
 * behind our MSC3009 transport (`startWebsocketTransport`, default limits) and measures; the
 * widgets are scripted websocket clients in a third process (the open-files limit is per
 * process, and the widgets' sockets would otherwise count against the server's). Each widget
 * sends `content_loaded`, answers `supported_api_versions` and `capabilities` (send and receive
 * `m.room.message`), and acknowledges every toWidget request by echoing it with `response: {}`,
 * as matrix-widget-api does. Sessions are spread over 100 rooms.
 *
 * Ramp: for each level (1000, 2500, 5000, 7500, 10 000, 12 500, 15 000 sessions) connect the new widgets, wait
 * until every session is ready, then publish `m.room.message` events round-robin over the rooms
 * at `rate` events per second (default 100/s: every session receives 1 event per second, so the
 * server makes N deliveries per second) for a warm-up second and a measured window. Latency is
 * publish → the widget's acknowledgement arriving back at the server: a full round trip, so an
 * upper bound of the delivery latency, on one clock. A level holds when p99 < 50 ms and no
 * delivery is lost; the ramp stops at the first level that does not, that the open-files limit
 * cannot fit, or that would overrun the time budget. The server is then killed, not shut down
 * (closing thousands of sessions one by one is not what is measured here).
 *
 *   npx tsx test/bench/scale.ts [--quick] [--levels 1000,2500] [--rate 100] [--seconds 5] [--budget 240]
 *   node --cpu-prof --import tsx test/bench/scale.ts --here --levels 5000     (server in this process)
 */
import { type ChildProcess, spawn } from "node:child_process"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

/** Children run through the same production-like loader as this process (see loader.mjs). */
const loader = new URL("./loader.mjs", import.meta.url).href
import { parseArgs } from "node:util"
import { WebSocket } from "ws"
import { createEngine, delegateSession } from "@widgethost/engine"
import { startWebsocketTransport } from "@widgethost/websocket"
import { machineInfo, percentile, progress, renderTable, type Row, type Settings, settingsFor } from "./harness.ts"
import { benchHomeserver, MESSAGE_CAPABILITIES } from "./hosts.ts"

export interface ScaleOptions {
  readonly levels?: ReadonlyArray<number>
  /** Events per second over all rooms. */
  readonly rate?: number
  readonly rooms?: number
  /** Measured seconds per level. */
  readonly seconds?: number
  readonly p99LimitMs?: number
  /** Seconds the whole ramp may take; a level predicted to overrun it is not started. */
  readonly budgetSeconds?: number
}

type ScalePlan = Required<ScaleOptions>

export interface LevelResult {
  readonly sessions: number
  readonly connectAndReadySeconds: number
  readonly eventsPublished: number
  readonly deliveriesExpected: number
  readonly deliveriesAcknowledged: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly eventLoopDelayP99Ms: number
  /** CPU of the server process over the measured window (100 = one core). */
  readonly cpuPercent: number
  /** CPU of the process running the widgets, over the same window. */
  readonly clientCpuPercent: number
  readonly heapUsedBytes: number
  readonly rssBytes: number
  readonly holds: boolean
}

export interface ScaleResult {
  readonly plan: ScalePlan
  readonly openFilesLimit: number
  readonly levels: ReadonlyArray<LevelResult>
  /** Why the ramp stopped before its last level, if it did. */
  readonly stopped?: string
}

type ToClient = { readonly type: "connect"; readonly widgets: ReadonlyArray<{ readonly id: string; readonly uri: string }> } | { readonly type: "stats" }
type FromClient = { readonly type: "stats"; readonly opened: number; readonly errors: number; readonly closed: number; readonly cpuMicros: number }

const here = fileURLToPath(import.meta.url)
const roomOf = (i: number, rooms: number) => `!scale-${i % rooms}:example.org`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits for `check` to hold, polling every 50 ms, or fails after `ms`. */
const until = async (check: () => boolean, ms: number, what: string) => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`)
    await sleep(50)
  }
}

// ---- the server process ---------------------------------------------------------------------

const serve = async (plan: ScalePlan): Promise<ScaleResult> => {
  const { rate, rooms, seconds, p99LimitMs } = plan
  const started = performance.now()
  const limit = Number(machineInfo().openFilesLimit)
  const headroom = 200 // this process's own files, the listening socket, pipes

  const homeserver = benchHomeserver()
  const engine = createEngine({ homeserver, approver: async ({ requested }) => requested })
  const transport = await startWebsocketTransport()
  const client: ChildProcess = spawn(process.execPath, ["--import", loader, here, "--clients"], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const clientStats = () =>
    new Promise<FromClient>((resolve) => {
      client.once("message", (m) => resolve(m as FromClient))
      client.send({ type: "stats" } satisfies ToClient)
    })

  let ready = 0
  let acknowledged = 0
  let measuring = false
  let windowStart = 0
  let latencies: number[] = []

  const open = (id: string, roomId: string) => (send: Parameters<Parameters<typeof transport.register>[1]>[0]) => {
    const session = engine.openSession({
      widget: { id, kind: "room", roomId, type: "m.custom", url: "https://widget.example.org/index.html", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] },
      send,
      waitForIframeLoad: false
    })
    // Watch the widget's answers on their way in: readiness, and each event's round trip.
    return delegateSession(session, {
      receive: (raw: unknown) => {
        const m = raw as { api?: string; action?: string; response?: unknown; data?: { content?: { sent_at?: number } } }
        if (m.api === "toWidget" && m.response !== undefined) {
          if (m.action === "send_event") {
            const sentAt = m.data?.content?.sent_at
            if (measuring && typeof sentAt === "number" && sentAt >= windowStart) {
              acknowledged++
              latencies.push(performance.now() - sentAt)
            }
          } else if (m.action === "notify_capabilities") ready++
        }
        session.receive(raw)
      }
    })
  }

  const results: LevelResult[] = []
  let stopped: string | undefined
  let sessions = 0
  let lastRamp: { seconds: number; from: number; to: number } | undefined
  let eventSeq = 0
  for (const level of plan.levels) {
    if (level + headroom > limit) {
      stopped = `${level} sessions would not fit the open-files limit (${limit})`
      break
    }
    // Opening sessions costs more the more there are: extrapolate the last ramp quadratically.
    const elapsed = (performance.now() - started) / 1000
    const rampGuess = lastRamp === undefined ? 0 : (lastRamp.seconds * (level * level - sessions * sessions)) / Math.max(1, lastRamp.to * lastRamp.to - lastRamp.from * lastRamp.from)
    if (elapsed + rampGuess + seconds + 3 > plan.budgetSeconds) {
      stopped = `${level} sessions would overrun the ${plan.budgetSeconds} s budget (about ${rampGuess.toFixed(0)} s to open them)`
      break
    }
    progress(`scale: ramping to ${level} websocket sessions`)
    const t0 = performance.now()
    const widgets = []
    for (let i = sessions; i < level; i++) {
      const id = `scale-${i}`
      widgets.push({ id, uri: transport.register(id, open(id, roomOf(i, rooms))).uri })
    }
    client.send({ type: "connect", widgets } satisfies ToClient)
    try {
      await until(() => ready >= level, Math.max(10_000, (plan.budgetSeconds - elapsed) * 1000), `${level} sessions ready`)
    } catch (error) {
      stopped = String(error)
      break
    }
    const connectAndReadySeconds = (performance.now() - t0) / 1000
    lastRamp = { seconds: connectAndReadySeconds, from: sessions, to: level }
    sessions = level

    // Publish at `rate` for a warm-up second, then measure `seconds`, then let the last answers land.
    const delay = monitorEventLoopDelay({ resolution: 5 })
    let published = 0
    let publishedInWindow = 0
    const publishStart = performance.now()
    const publish = () => {
      const due = Math.floor(((performance.now() - publishStart) / 1000) * rate)
      while (published < due) {
        const n = eventSeq++
        const sentAt = performance.now()
        if (measuring) publishedInWindow++
        homeserver.publish({
          _tag: "RoomEvent",
          event: {
            type: "m.room.message",
            event_id: `$scale${n}:example.org`,
            room_id: roomOf(n, rooms),
            sender: "@alice:example.org",
            origin_server_ts: Date.now(),
            content: { msgtype: "m.text", body: `scale ${n}`, sent_at: sentAt }
          }
        })
        published++
      }
    }
    const ticker = setInterval(publish, 5)
    await sleep(1000)
    latencies = []
    acknowledged = 0
    const clientCpu0 = (await clientStats()).cpuMicros
    const cpu0 = process.cpuUsage()
    windowStart = performance.now()
    measuring = true
    delay.enable()
    await sleep(seconds * 1000)
    clearInterval(ticker)
    delay.disable()
    const windowEnd = performance.now()
    const cpu = process.cpuUsage(cpu0)
    const clientCpu = (await clientStats()).cpuMicros - clientCpu0
    const perRoom = (r: number) => Math.floor(level / rooms) + (r < level % rooms ? 1 : 0)
    let expected = 0
    for (let k = eventSeq - publishedInWindow; k < eventSeq; k++) expected += perRoom(k % rooms)
    // Answers to the window's last events may still be on their way.
    await until(() => acknowledged >= expected, 2000, "last acknowledgements").catch(() => {})
    measuring = false
    const memory = process.memoryUsage()
    const p99 = percentile(latencies, 99)
    const windowMs = windowEnd - windowStart
    const result: LevelResult = {
      sessions: level,
      connectAndReadySeconds,
      eventsPublished: publishedInWindow,
      deliveriesExpected: expected,
      deliveriesAcknowledged: acknowledged,
      latencyMs: { p50: percentile(latencies, 50), p99, max: latencies.reduce((a, b) => Math.max(a, b), 0) },
      eventLoopDelayP99Ms: delay.percentile(99) / 1e6,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / windowMs) * 100,
      clientCpuPercent: (clientCpu / 1000 / windowMs) * 100,
      heapUsedBytes: memory.heapUsed,
      rssBytes: memory.rss,
      holds: p99 < p99LimitMs && acknowledged >= expected
    }
    results.push(result)
    progress(
      `scale: ${level} sessions: p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ${acknowledged}/${expected} acknowledged, ` +
        `event loop delay p99 ${result.eventLoopDelayP99Ms.toFixed(1)} ms, cpu ${result.cpuPercent.toFixed(0)}% (widgets' process ${result.clientCpuPercent.toFixed(0)}%), ` +
        `ready after ${connectAndReadySeconds.toFixed(1)} s`
    )
    if (!result.holds) {
      stopped = `p99 ${p99.toFixed(1)} ms at ${level} sessions`
      break
    }
  }
  const stats = await clientStats()
  if (stats.errors > 0) progress(`scale: the widgets saw ${stats.errors} socket errors`)
  return { plan, openFilesLimit: limit, levels: results, ...(stopped === undefined ? {} : { stopped }) }
}

const planOf = (settings: Settings, options: ScaleOptions): ScalePlan => ({
  levels: options.levels ?? (settings.quick ? [250, 500, 1000] : [1000, 2500, 5000, 7500, 10_000, 12_500, 15_000, 17_500]),
  rate: options.rate ?? 100,
  rooms: options.rooms ?? 100,
  seconds: options.seconds ?? (settings.quick ? 2 : 5),
  p99LimitMs: options.p99LimitMs ?? 50,
  budgetSeconds: options.budgetSeconds ?? (settings.quick ? 60 : 240)
})

/** Runs the server process and turns its result into table rows. */
export const scale = async (settings: Settings, options: ScaleOptions = {}): Promise<{ rows: Row[]; result: ScaleResult }> => {
  const plan = planOf(settings, options)
  const server = spawn(process.execPath, ["--import", loader, here, "--server", JSON.stringify(plan)], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const result = await new Promise<ScaleResult>((resolve, reject) => {
    server.once("message", (m) => resolve(m as ScaleResult))
    server.once("error", reject)
    server.once("exit", (code) => reject(new Error(`scale server exited with ${code} before reporting`)))
  })
  // Killed, not shut down: the widgets' process sees its IPC channel close and exits too.
  server.removeAllListeners("exit")
  await new Promise((resolve) => {
    server.once("exit", resolve)
    server.kill("SIGKILL")
  })
  if (result.stopped !== undefined) progress(`scale: stopped: ${result.stopped}`)

  const best = result.levels.filter((r) => r.holds).reduce((max, r) => Math.max(max, r.sessions), 0)
  const at = result.levels.find((r) => r.sessions === best)
  const scenario = `8 scale, ${plan.rate} events/s over ${plan.rooms} rooms`
  const rows: Row[] = [
    {
      scenario,
      metric: `websocket sessions, p99 < ${plan.p99LimitMs} ms`,
      unit: "sessions",
      ours: best,
      better: "higher",
      target: { text: ">= 10,000", minValue: 10_000 },
      detail: { ...result }
    }
  ]
  if (at !== undefined) {
    rows.push({ scenario: `8 scale, at ${best} sessions`, metric: "delivery round trip p99", unit: "ms", ours: at.latencyMs.p99, better: "lower" })
    rows.push({ scenario: `8 scale, at ${best} sessions`, metric: "deliveries/s", unit: "1/s", ours: at.deliveriesAcknowledged / plan.seconds, better: "higher" })
  }
  return { rows, result }
}

// ---- the widgets: scripted websocket clients, in their own process --------------------------

const runClients = () => {
  const queue: Array<{ readonly id: string; readonly uri: string }> = []
  const sockets: WebSocket[] = []
  let next = 0
  let connecting = 0
  let opened = 0
  let errors = 0
  let closed = 0
  const capabilities = { capabilities: MESSAGE_CAPABILITIES }
  const versions = { supported_versions: ["0.0.2", "org.matrix.msc2762", "org.matrix.msc2871"] }

  const connect = () => {
    // A bounded number of handshakes at a time, so the server's accept backlog never overflows.
    while (connecting < 256 && next < queue.length) {
      const { id, uri } = queue[next] as { id: string; uri: string }
      // Source addresses spread over 127.0.0.2-9, so 15 000 sockets never run short of ports.
      const ws = new WebSocket(uri, { perMessageDeflate: false, localAddress: `127.0.0.${2 + (next % 8)}` })
      next++
      connecting++
      sockets.push(ws)
      ws.on("open", () => {
        connecting--
        opened++
        ws.send(JSON.stringify({ api: "fromWidget", widgetId: id, requestId: "hello", action: "content_loaded", data: {} }))
        connect()
      })
      ws.on("message", (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { api: string; action: string; response?: unknown }
        if (message.api !== "toWidget" || message.response !== undefined) return
        const response = message.action === "capabilities" ? capabilities : message.action === "supported_api_versions" ? versions : {}
        ws.send(JSON.stringify({ ...message, response }))
      })
      ws.on("error", () => {
        errors++
      })
      ws.on("close", () => {
        closed++
      })
    }
  }

  process.on("message", (message: ToClient) => {
    if (message.type === "connect") {
      queue.push(...message.widgets)
      connect()
    } else {
      const cpu = process.cpuUsage()
      process.send?.({ type: "stats", opened, errors, closed, cpuMicros: cpu.user + cpu.system } satisfies FromClient)
    }
  })
  process.on("disconnect", () => process.exit(0))
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      clients: { type: "boolean", default: false },
      server: { type: "string" },
      here: { type: "boolean", default: false },
      levels: { type: "string" },
      rate: { type: "string" },
      seconds: { type: "string" },
      budget: { type: "string" }
    }
  })
  const options: ScaleOptions = {
    ...(values.levels === undefined ? {} : { levels: values.levels.split(",").map(Number) }),
    ...(values.rate === undefined ? {} : { rate: Number(values.rate) }),
    ...(values.seconds === undefined ? {} : { seconds: Number(values.seconds) }),
    ...(values.budget === undefined ? {} : { budgetSeconds: Number(values.budget) })
  }
  if (values.clients) runClients()
  else if (values.server !== undefined) process.send?.(await serve(JSON.parse(values.server) as ScalePlan))
  else if (values.here) {
    // The server in this process, e.g. under `node --cpu-prof --import tsx test/bench/scale.ts --here`.
    process.stdout.write(`${JSON.stringify(await serve(planOf(settingsFor(values.quick), options)), null, 2)}\n`)
    process.exit(0)
  } else console.log(renderTable((await scale(settingsFor(values.quick), options)).rows))
}
