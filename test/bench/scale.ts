/**
 * Scenario 8, simulation scale (ours only): the largest number of concurrent websocket widget
 * sessions one process holds with p99 delivery latency under 50 ms at a stated event rate.
 *
 * Three processes: this one only starts and reads the others. The server process runs the engine
 * behind our MSC3009 transport (`startWebsocketTransport`, default limits) and measures; the
 * widgets are scripted websocket clients in a third process, spread over worker threads
 * (`scale-widgets.ts`), so they share neither the server's event loop nor its open-files limit.
 * Both children are started with the open-files limit raised to `FILES` where the OS allows it
 * (as root, or up to the hard limit, through `prlimit`; never above /proc/sys/fs/nr_open): one
 * socket per session on each side, plus the process's own files. Each widget sends
 * `content_loaded`, answers `supported_api_versions` and `capabilities` (send and receive
 * `m.room.message`), and acknowledges every toWidget request by echoing it with `response: {}`,
 * as matrix-widget-api does. Sessions are spread over 100 rooms.
 *
 * With 2 cores, the widget side competes with the server for CPU: at N sessions it receives and
 * answers N messages a second, about as much socket work as the server's. The row's
 * `clientCpuPercent` says how much it took; the result is a lower bound of what the server alone
 * would hold on a machine where the widgets ran elsewhere.
 *
 * Ramp: for each level (1000, 2500, 5000, 7500, 10 000, ... 25 000 sessions) connect the new
 * widgets, wait until every session is ready, then publish `m.room.message` events round-robin
 * over the rooms at `rate` events per second (default 100/s: every session receives 1 event per
 * second, so the server makes N deliveries per second) for a warm-up second and then `repeats`
 * (default 3) consecutive measured windows. Latency is publish → the widget's acknowledgement
 * arriving back at the server: a full round trip, so an upper bound of the delivery latency, on
 * one clock. A level holds when every one of its windows has p99 < 50 ms and loses no delivery;
 * the ramp stops at the first level that does not, that the open-files limit cannot fit, or that
 * would overrun the time budget. The server is then killed, not shut down (closing thousands of
 * sessions one by one is not what is measured here).
 *
 *   npx tsx test/bench/scale.ts [--quick] [--levels 1000,2500] [--rate 100] [--seconds 5] [--repeats 3] [--threads 2] [--budget 240]
 *   prlimit --nofile=65536:65536 node --cpu-prof --import ./test/bench/loader.mjs test/bench/scale.ts --here --levels 15000
 *     (server in this process, widgets still in their own, for a profile of the server alone)
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"

/** Children run through the same production-like loader as this process (see loader.mjs). */
const loader = new URL("./loader.mjs", import.meta.url).href
import { parseArgs } from "node:util"
import { createEngine, delegateSession } from "@widgethost/engine"
import { startWebsocketTransport } from "@widgethost/websocket"
import { machineInfo, percentile, progress, renderTable, type Row, type Settings, settingsFor } from "./harness.ts"
import { benchHomeserver } from "./hosts.ts"
import { runWidgets, type ToWidgets, type WidgetStats } from "./scale-widgets.ts"

export interface ScaleOptions {
  readonly levels?: ReadonlyArray<number>
  /** Events per second over all rooms. */
  readonly rate?: number
  readonly rooms?: number
  /** Measured seconds per level. */
  readonly seconds?: number
  readonly p99LimitMs?: number
  /** Consecutive measured windows per level; the level holds only if every one does. */
  readonly repeats?: number
  /** Worker threads in the widget process. */
  readonly threads?: number
  /** Widget processes; sessions are dealt round-robin over them. */
  readonly processes?: number
  /** The open-files limit asked for each child process. */
  readonly files?: number
  /** Seconds the whole ramp may take; a level predicted to overrun it is not started. */
  readonly budgetSeconds?: number
}

type ScalePlan = Required<ScaleOptions>

/** One measured window at one level. */
export interface WindowResult {
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

export interface LevelResult {
  readonly sessions: number
  readonly connectAndReadySeconds: number
  readonly windows: ReadonlyArray<WindowResult>
  /** The worst window's p99: the level's figure. */
  readonly p99Ms: number
  readonly holds: boolean
}

export interface ScaleResult {
  readonly plan: ScalePlan
  readonly openFilesLimit: number
  readonly widgetOpenFilesLimit: number
  readonly widgetThreads: number
  readonly levels: ReadonlyArray<LevelResult>
  /** Why the ramp stopped before its last level, if it did. */
  readonly stopped?: string
}

type ToClient = ToWidgets
type FromClient = WidgetStats

const here = fileURLToPath(import.meta.url)
const roomOf = (i: number, rooms: number) => `!scale-${i % rooms}:example.org`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The open-files limit a child can be given: `wanted`, bounded by what the kernel allows. */
const filesFor = (wanted: number) => {
  const nrOpen = Number(readFileSync("/proc/sys/fs/nr_open", { encoding: "utf8", flag: "r" }).trim()) || wanted
  return Math.min(wanted, nrOpen)
}

/** Whether this process may start a child with `files` open files (root alone is not enough in a container without CAP_SYS_RESOURCE). */
const raisable = (files: number) => spawnSync("prlimit", [`--nofile=${files}:${files}`, "true"]).status === 0

/**
 * Starts `node <args>` with the open-files limit raised to `files` through `prlimit` (which
 * execs node, so the pid and the IPC channel are node's). Raising the hard limit needs root;
 * otherwise, or without prlimit, the child keeps this process's limit, and reports it.
 */
const spawnNode = (args: ReadonlyArray<string>, files: number): ChildProcess => {
  const canRaise = raisable(files)
  const [command, argv] = canRaise ? ["prlimit", [`--nofile=${files}:${files}`, process.execPath, ...args]] : [process.execPath, [...args]]
  const child = spawn(command, argv, { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  return child
}

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
  const { rate, rooms, seconds, p99LimitMs, repeats } = plan
  const widgetThreads = plan.processes * plan.threads
  const started = performance.now()
  const limit = Number(machineInfo().openFilesLimit)
  const headroom = 200 // this process's own files, the listening socket, pipes

  const homeserver = benchHomeserver()
  const engine = createEngine({ homeserver, approver: async ({ requested }) => requested })
  const transport = await startWebsocketTransport()
  // Several widget processes when one cannot hold every socket under its open-files limit.
  const clients = Array.from({ length: plan.processes }, () => spawnNode(["--import", loader, here, "--clients", String(plan.threads)], plan.files))
  const statsOf = (client: ChildProcess) =>
    new Promise<FromClient>((resolve) => {
      client.once("message", (m) => resolve(m as FromClient))
      client.send({ type: "stats" } satisfies ToClient)
    })
  const clientStats = async () => {
    const all = await Promise.all(clients.map(statsOf))
    const sum = (key: "opened" | "errors" | "closed" | "cpuMicros" | "threads") => all.reduce((total, x) => total + x[key], 0)
    return { opened: sum("opened"), errors: sum("errors"), closed: sum("closed"), cpuMicros: sum("cpuMicros"), threads: sum("threads"), openFilesLimit: Math.min(...all.map((x) => x.openFilesLimit)) }
  }

  let ready = 0
  let acknowledged = 0
  let measuring = false
  let windowStart = Number.POSITIVE_INFINITY
  let windowStop = Number.POSITIVE_INFINITY
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
            if (typeof sentAt === "number" && sentAt >= windowStart && sentAt < windowStop) {
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
  const widgetLimit = (await clientStats()).openFilesLimit
  progress(`scale: open-files limit ${limit} in the server, ${widgetLimit} in each of ${clients.length} widget processes (${plan.threads} threads each)`)
  for (const level of plan.levels) {
    if (level + headroom > limit || Math.ceil(level / clients.length) + headroom > widgetLimit) {
      stopped = `${level} sessions would not fit the open-files limit (server ${limit}, widgets ${widgetLimit})`
      break
    }
    // Opening sessions costs more the more there are: extrapolate the last ramp quadratically.
    const elapsed = (performance.now() - started) / 1000
    const rampGuess = lastRamp === undefined ? 0 : (lastRamp.seconds * (level * level - sessions * sessions)) / Math.max(1, lastRamp.to * lastRamp.to - lastRamp.from * lastRamp.from)
    if (elapsed + rampGuess + repeats * (seconds + 0.5) + 3 > plan.budgetSeconds) {
      stopped = `${level} sessions would overrun the ${plan.budgetSeconds} s budget (about ${rampGuess.toFixed(0)} s to open them)`
      break
    }
    progress(`scale: ramping to ${level} websocket sessions`)
    const t0 = performance.now()
    const widgets: Array<{ id: string; uri: string }> = []
    for (let i = sessions; i < level; i++) {
      const id = `scale-${i}`
      widgets.push({ id, uri: transport.register(id, open(id, roomOf(i, rooms))).uri })
    }
    clients.forEach((client, p) => client.send({ type: "connect", widgets: widgets.filter((_, i) => i % clients.length === p) } satisfies ToClient))
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
    const perRoom = (r: number) => Math.floor(level / rooms) + (r < level % rooms ? 1 : 0)
    const windows: WindowResult[] = []
    for (let repeat = 0; repeat < repeats; repeat++) {
      latencies = []
      acknowledged = 0
      publishedInWindow = 0
      const clientCpu0 = (await clientStats()).cpuMicros
      const cpu0 = process.cpuUsage()
      windowStop = Number.POSITIVE_INFINITY
      const openedAt = performance.now()
      windowStart = openedAt
      measuring = true
      delay.reset()
      delay.enable()
      await sleep(seconds * 1000)
      const stopAt = eventSeq
      const inWindow = publishedInWindow
      measuring = false
      delay.disable()
      const windowEnd = performance.now()
      windowStop = windowEnd
      const cpu = process.cpuUsage(cpu0)
      const clientCpu = (await clientStats()).cpuMicros - clientCpu0
      let expected = 0
      for (let k = stopAt - inWindow; k < stopAt; k++) expected += perRoom(k % rooms)
      // Answers to the window's last events may still be on their way; events published after
      // the window carry a later `sent_at` and are not counted.
      await until(() => acknowledged >= expected, 2000, "last acknowledgements").catch(() => {})
      windowStart = Number.POSITIVE_INFINITY
      const inTime = latencies
      const memory = process.memoryUsage()
      const p99 = percentile(inTime, 99)
      const windowMs = windowEnd - openedAt
      const window: WindowResult = {
        eventsPublished: inWindow,
        deliveriesExpected: expected,
        deliveriesAcknowledged: acknowledged,
        latencyMs: { p50: percentile(inTime, 50), p99, max: inTime.reduce((x, y) => Math.max(x, y), 0) },
        eventLoopDelayP99Ms: delay.percentile(99) / 1e6,
        cpuPercent: ((cpu.user + cpu.system) / 1000 / windowMs) * 100,
        clientCpuPercent: (clientCpu / 1000 / windowMs) * 100,
        heapUsedBytes: memory.heapUsed,
        rssBytes: memory.rss,
        holds: p99 < p99LimitMs && acknowledged >= expected
      }
      windows.push(window)
      progress(
        `scale: ${level} sessions, window ${repeat + 1}/${repeats}: p50 ${window.latencyMs.p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ${acknowledged}/${expected} acknowledged, ` +
          `event loop delay p99 ${window.eventLoopDelayP99Ms.toFixed(1)} ms, cpu ${window.cpuPercent.toFixed(0)}% (widgets' process ${window.clientCpuPercent.toFixed(0)}%), ` +
          `ready after ${connectAndReadySeconds.toFixed(1)} s`
      )
      if (!window.holds) break
    }
    clearInterval(ticker)
    const p99 = windows.reduce((worst, w) => Math.max(worst, w.latencyMs.p99), 0)
    const result: LevelResult = { sessions: level, connectAndReadySeconds, windows, p99Ms: p99, holds: windows.length === repeats && windows.every((w) => w.holds) }
    results.push(result)
    if (!result.holds) {
      stopped = `p99 ${p99.toFixed(1)} ms at ${level} sessions (window ${windows.length} of ${repeats})`
      break
    }
  }
  const stats = await clientStats()
  if (stats.errors > 0) progress(`scale: the widgets saw ${stats.errors} socket errors`)
  return { plan, openFilesLimit: limit, widgetOpenFilesLimit: widgetLimit, widgetThreads, levels: results, ...(stopped === undefined ? {} : { stopped }) }
}

const planOf = (settings: Settings, options: ScaleOptions): ScalePlan => ({
  levels: options.levels ?? (settings.quick ? [250, 500, 1000] : [1000, 2500, 5000, 7500, 10_000, 12_500, 15_000, 17_500, 19_500, 20_000, 22_500, 25_000]),
  rate: options.rate ?? 100,
  rooms: options.rooms ?? 100,
  seconds: options.seconds ?? (settings.quick ? 2 : 5),
  p99LimitMs: options.p99LimitMs ?? 50,
  repeats: options.repeats ?? 3,
  threads: options.threads ?? 1,
  processes: options.processes ?? 2,
  files: filesFor(options.files ?? 65_536),
  budgetSeconds: options.budgetSeconds ?? (settings.quick ? 60 : 240)
})

/** Runs the server process and turns its result into table rows. */
export const scale = async (settings: Settings, options: ScaleOptions = {}): Promise<{ rows: Row[]; result: ScaleResult }> => {
  const plan = planOf(settings, options)
  const server = spawnNode(["--import", loader, here, "--server", JSON.stringify(plan)], plan.files)
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
  const scenario = `8 scale, ${plan.rate} events/s over ${plan.rooms} rooms, ${plan.repeats} windows per level, open files ${result.openFilesLimit} (widgets: ${plan.processes} processes, ${result.widgetOpenFilesLimit} each, ${result.widgetThreads} threads)`
  const rows: Row[] = [
    {
      scenario,
      metric: `websocket sessions, p99 < ${plan.p99LimitMs} ms`,
      unit: "sessions",
      ours: best,
      better: "higher",
      target: { text: ">= 20,000", minValue: 20_000 },
      detail: { ...result }
    }
  ]
  if (at !== undefined) {
    const worst = at.windows.reduce((w, x) => (x.latencyMs.p99 > w.latencyMs.p99 ? x : w))
    rows.push({ scenario: `8 scale, at ${best} sessions`, metric: "delivery round trip p99 (worst window)", unit: "ms", ours: at.p99Ms, better: "lower" })
    rows.push({ scenario: `8 scale, at ${best} sessions`, metric: "deliveries/s", unit: "1/s", ours: worst.deliveriesAcknowledged / plan.seconds, better: "higher" })
  }
  return { rows, result }
}

if (process.argv[1] === import.meta.filename) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      clients: { type: "string" },
      repeats: { type: "string" },
      threads: { type: "string" },
      files: { type: "string" },
      processes: { type: "string" },
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
    ...(values.budget === undefined ? {} : { budgetSeconds: Number(values.budget) }),
    ...(values.repeats === undefined ? {} : { repeats: Number(values.repeats) }),
    ...(values.threads === undefined ? {} : { threads: Number(values.threads) }),
    ...(values.files === undefined ? {} : { files: Number(values.files) }),
    ...(values.processes === undefined ? {} : { processes: Number(values.processes) })
  }
  if (values.clients !== undefined) runWidgets(Number(values.clients))
  else if (values.server !== undefined) process.send?.(await serve(JSON.parse(values.server) as ScalePlan))
  else if (values.here) {
    // The server in this process, e.g. under `node --cpu-prof --import tsx test/bench/scale.ts --here`.
    process.stdout.write(`${JSON.stringify(await serve(planOf(settingsFor(values.quick), options)), null, 2)}\n`)
    process.exit(0)
  } else console.log(renderTable((await scale(settingsFor(values.quick), options)).rows))
}
