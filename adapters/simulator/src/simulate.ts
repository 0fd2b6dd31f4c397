/**
 * `widgethost simulate` (issue #7): a headless load run. An in-memory embedded homeserver (with
 * TURN), N accounts each with its own HTTP+E2EE homeserver port and its own engine, one shared
 * websocket transport, and M scripted websocket widgets per account in one public room. A seeded
 * workload sends messages, state changes and to-device messages through the widgets; every widget
 * of every account should receive every message, and the report says how many did, how fast, and
 * what went wrong.
 *
 * What is deterministic: the plan (who sends which message, when it is due, which widgets watch
 * TURN, where each to-device message goes) is a pure function of the options and the seed
 * ({@link planWorkload}). What is not: latencies and how deliveries interleave, which depend on
 * the machine.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { WebSocket } from "ws"
import { type Engine } from "@widgethost/engine"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type MatrixHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import { checkOptions, defaultSimulateOptions, type Progress, type Report, type SimulateOptions, SimulationError } from "./simulate-options.ts"
import { approvingEngine, connectSimAccount, registerSimWidget, startSyncing } from "./sim-account.ts"
import { planWorkload } from "./workload.ts"
import { reportOf, samplesOf } from "./run-report.ts"
import { SimWidget, TURN_TTL_SECONDS, Tally } from "./sim-widget.ts"

const withTimeout = async <A>(promise: Promise<A>, ms: number, what: () => string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new SimulationError(`${what()} within ${ms} ms`)), ms)
      })
    ])
  } finally {
    clearTimeout(timer)
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Runs one simulation and returns its report; everything it started is stopped before it returns.
 *
 * @example
 * const report = await simulate({ ...defaultSimulateOptions, widgets: 2, until: { events: 20 } })
 * report.deliveries === report.expectedDeliveries
 */
export const simulate = async (input: Partial<SimulateOptions> = {}): Promise<Report> => {
  const options: SimulateOptions = { ...defaultSimulateOptions, ...input }
  checkOptions(options)
  const plan = planWorkload(options)
  const totalWidgets = options.accounts * options.widgets
  const tally = new Tally(plan.messages.length, plan.toDeviceCount)
  const watchers = new Set(plan.turnWatchers)
  const started = performance.now()
  let phase: Progress["phase"] = "setup"
  let workloadStart = Number.NaN
  let peakRss = process.memoryUsage.rss()

  const progress = (): Progress => ({
    phase,
    widgetsReady: tally.widgetsReady,
    widgets: totalWidgets,
    sent: tally.messagesSent,
    planned: plan.messages.length,
    deliveries: tally.deliveries,
    expectedDeliveries: plan.messages.length * totalWidgets,
    elapsedMs: performance.now() - (Number.isNaN(workloadStart) ? started : workloadStart)
  })
  const ticker = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
    options.onProgress?.(progress())
  }, 100)

  let homeserver: EmbeddedHomeserver | undefined
  const ports: Array<MatrixHomeserver> = []
  const engines: Array<Engine> = []
  let transport: WebsocketTransport | undefined
  const widgets: Array<SimWidget> = []
  let sendTimer: NodeJS.Timeout | undefined

  try {
    const setupTimeoutMs = options.setupTimeoutMs ?? 60_000
    homeserver = await startEmbeddedHomeserver({
      turn: { uris: ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"], sharedSecret: randomBytes(16).toString("hex"), ttlSeconds: TURN_TTL_SECONDS }
    })
    const hs = homeserver
    const sessions = await Promise.all(Array.from({ length: options.accounts }, (_, a) => hs.ensureUser(`sim${a}`, `sim-password-${a}`)))
    const homeserverError = (message: string) => void (tally.closing || tally.error("homeserver", message))
    for (const session of sessions) ports.push(await connectSimAccount(hs.baseUrl, session, 10_000, homeserverError))
    const [first, ...others] = ports
    if (first === undefined) throw new SimulationError("no account to create the room with")
    const { room_id: roomId } = await first.http.request<{ room_id: string }>({
      method: "POST",
      path: "/_matrix/client/v3/createRoom",
      body: {
        preset: "public_chat",
        name: "widgethost simulation",
        // Every account's widgets change state: the public preset would need power 50 for that.
        power_level_content_override: { state_default: 0 },
        initial_state: options.encrypted ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] : []
      }
    })
    for (const port of others) await port.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
    // Start syncing and let each port take in the room (membership, encryption) before any widget speaks.
    await withTimeout(startSyncing(ports, () => void (tally.closing || tally.eventsRouted++)), setupTimeoutMs, () => "the accounts did not finish their first sync")

    transport = await startWebsocketTransport({
      // Each widget acknowledges every message it is sent: the default flood limit (500 a
      // second) would cut a fast run short, and this run is about the engine, not the limiter.
      rateLimit: { messages: Math.max(500, Math.ceil(options.rate * 4) + 100), perMs: 1000 }
    })
    const ws = transport
    for (const [a, port] of ports.entries()) {
      const engine = approvingEngine(port, (widgetId, action, requestId) => tally.error("timeouts", `${widgetId}: ${action} ${requestId}`))
      engines.push(engine)
      for (let w = 0; w < options.widgets; w++) {
        const index = a * options.widgets + w
        const id = `sim-a${a}-w${w}`
        const uri = registerSimWidget(ws, engine, { id, roomId, name: `simulated widget ${id}`, page: "sim" })
        widgets.push(new SimWidget(id, a, uri, watchers.has(index), tally, options.encrypted, plan.messages.length, plan.toDeviceCount))
      }
    }
    await withTimeout(Promise.all(widgets.map((w) => w.ready)), setupTimeoutMs, () => `only ${tally.widgetsReady} of ${totalWidgets} widgets were ready`)
    /** The plan's indexes come from the same options: they name widgets and accounts that exist. */
    const widgetAt = (i: number): SimWidget => {
      const widget = widgets[i]
      if (widget === undefined) throw new SimulationError(`the plan names widget ${i} of ${widgets.length}`)
      return widget
    }
    const watched = await withTimeout(Promise.all(plan.turnWatchers.map((i) => widgetAt(i).watchTurn())), setupTimeoutMs, () => "the TURN watchers got no answer")
    if (watched.some((ok) => !ok)) throw new SimulationError("a TURN watch was refused")
    const setupSeconds = (performance.now() - started) / 1000

    // ---- workload: each message on its due time; late timers catch up at once.
    phase = "running"
    workloadStart = performance.now()
    const loopAtStart = performance.eventLoopUtilization()
    const t0 = workloadStart
    let lastSend = t0
    const userIds = ports.map((p) => p.userId)
    await new Promise<void>((resolve) => {
      let next = 0
      const fire = () => {
        sendTimer = undefined
        const now = performance.now() - t0
        while (next < plan.messages.length && plan.messages[next]!.atMs <= now && options.signal?.aborted !== true) {
          const m = plan.messages[next++]!
          const sender = widgetAt(m.sender)
          if (sender.sendMessage(m.seq)) tally.messagesSent++
          if (m.state && sender.sendState(m.seq)) tally.stateSent++
          if (m.toDevice !== undefined) {
            const target = userIds[m.toDevice.account]
            if (target === undefined) throw new SimulationError(`the plan names account ${m.toDevice.account} of ${userIds.length}`)
            if (sender.sendToDevice(target, m.toDevice.seq, m.toDevice.account)) tally.toDeviceSent++
          }
        }
        lastSend = performance.now()
        if (next >= plan.messages.length || options.signal?.aborted === true) return finish()
        sendTimer = setTimeout(fire, Math.max(0, plan.messages[next]!.atMs - (performance.now() - t0)))
      }
      const onAbort = () => {
        clearTimeout(sendTimer)
        finish()
      }
      const finish = () => {
        options.signal?.removeEventListener("abort", onAbort)
        resolve()
      }
      options.signal?.addEventListener("abort", onAbort)
      fire()
    })

    // ---- drain: wait for what is in flight, or give up after the drain timeout.
    phase = "draining"
    const sentMessages = tally.messagesSent
    const drainDeadline = performance.now() + (options.drainTimeoutMs ?? 15_000)
    const settled = () =>
      tally.deliveries >= sentMessages * totalWidgets &&
      tally.stateDeliveries >= tally.stateSent * totalWidgets &&
      tally.toDeviceDeliveries >= tally.toDeviceSent * options.widgets &&
      tally.pendingRequests === 0
    while (!settled() && performance.now() < drainDeadline) await sleep(10)
    const end = Math.max(lastSend, tally.lastDelivery)
    // A sync that fell further behind than the port back-fills loses events before any engine sees them.
    for (const p of ports) tally.error("syncGapsLeft", `${p.userId}: ${p.stats().gapsLeft} limited sync gaps not back-filled`, p.stats().gapsLeft)

    // ---- the report, measured before anything is torn down.
    const memory = process.memoryUsage()
    peakRss = Math.max(peakRss, memory.rss)
    return reportOf({
      options,
      messagesPlanned: plan.messages.length,
      turnWatchers: plan.turnWatchers.length,
      setupSeconds,
      t0,
      end,
      messagesSent: tally.messagesSent,
      stateSent: tally.stateSent,
      toDeviceSent: tally.toDeviceSent,
      ...tally.received(),
      unanswered: widgets.reduce((n, w) => n + w.unanswered(), 0),
      ...samplesOf(widgets),
      errors: tally.errors,
      samples: tally.samples,
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, peakRssBytes: peakRss },
      eventLoopUtilization: performance.eventLoopUtilization(loopAtStart).utilization
    })
  } finally {
    tally.closing = true
    clearInterval(ticker)
    clearTimeout(sendTimer)
    await shutdown(widgets, engines, transport, ports, homeserver)
  }
}

/** Stops everything in dependency order: engines, transport, widget sockets, ports, homeserver. */
const shutdown = async (
  widgets: ReadonlyArray<SimWidget>,
  engines: ReadonlyArray<Engine>,
  transport: WebsocketTransport | undefined,
  ports: ReadonlyArray<MatrixHomeserver>,
  homeserver: EmbeddedHomeserver | undefined
): Promise<void> => {
  const socketsClosed = widgets.map(
    (w) => new Promise<void>((resolve) => (w.ws.readyState === WebSocket.CLOSED ? resolve() : w.ws.once("close", () => resolve())))
  )
  for (const engine of engines) engine.stop()
  await transport?.close()
  for (const w of widgets) if (w.ws.readyState !== WebSocket.CLOSED) w.ws.terminate()
  await Promise.all(socketsClosed)
  await Promise.all(ports.map((port) => port.stop().catch(() => undefined)))
  await homeserver?.close()
}
