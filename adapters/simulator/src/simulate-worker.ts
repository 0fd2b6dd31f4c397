/**
 * One worker thread of `widgethost simulate --workers N`: it owns a share of the accounts, each
 * with its own homeserver port and engine, its own websocket transport and the widgets of those
 * accounts. It sends the planned messages whose sender is one of its widgets, counts what its
 * widgets receive, and posts a partial report to the main thread, which merges the shares
 * (`simulate-workers.ts`). The homeserver and the room live in the main thread.
 *
 * Protocol (main → worker, worker → main): workerData {@link ShareInput}; → `ready`; ← `go`
 * (a shared start time); → `sent` (its send counts); ← `drain` (the global send counts, so it
 * knows what its widgets must still receive); → `report` {@link ShareReport}; then it stops
 * everything and exits. Any failure is → `failed`.
 */
import { performance } from "node:perf_hooks"
import { isMainThread, parentPort, workerData, type MessagePort } from "node:worker_threads"
import { WebSocket } from "ws"
import { type Engine } from "@widgethost/engine"
import { type MatrixHomeserver } from "@widgethost/homeserver-client"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import { SimWidget, Tally } from "./sim-widget.ts"
import { type SimulateOptions, SimulationError } from "./simulate-options.ts"
import { approvingEngine, connectSimAccount, registerSimWidget, startSyncing } from "./sim-account.ts"
import { planWorkload } from "./workload.ts"
import { type RunTotals, samplesOf } from "./run-report.ts"

/** The options a worker needs: everything but callbacks and the abort signal. */
export type ShareOptions = Omit<SimulateOptions, "onProgress" | "signal">

export interface ShareInput {
  readonly kind: "simulate-share"
  readonly worker: number
  readonly options: ShareOptions
  readonly baseUrl: string
  readonly roomId: string
  /** This worker's accounts (global indexes) and their sign-ins. */
  readonly accounts: ReadonlyArray<{ readonly index: number; readonly userId: string; readonly accessToken: string; readonly deviceId: string }>
  /** Every account's user id, by global index: to-device targets may live in other workers. */
  readonly userIds: ReadonlyArray<string>
  /** Send time of each message seq (shared clock, NaN: not sent), written by the sender's worker. */
  readonly sentAt: SharedArrayBuffer
}

export interface SendCounts {
  readonly messagesSent: number
  readonly stateSent: number
  /** To-device messages sent, by target account (global index). */
  readonly toDeviceSentTo: ReadonlyArray<number>
}

/** One worker's part of a run: the counts it shares with the run's totals, merged by the main thread (latencies and arrivals on the shared clock). */
export interface ShareReport
  extends Pick<
    RunTotals,
    "deliveries" | "stateDeliveries" | "toDeviceDeliveries" | "toDeviceReceived" | "turnUpdates" | "eventsRouted" | "unanswered" | "latencies" | "receivedAt" | "widgetStats" | "samples" | "eventLoopUtilization"
  > {
  readonly worker: number
  readonly accounts: ReadonlyArray<number>
  readonly widgets: number
  readonly sent: SendCounts
  /** Shared-clock times (ms since the epoch). */
  readonly lastSend: number
  readonly lastDelivery: number
  readonly errors: Readonly<Record<string, number>>
  readonly heapUsedBytes: number
}

export type ToWorker = { readonly type: "go"; readonly t0: number } | { readonly type: "abort" } | { readonly type: "drain"; readonly sent: SendCounts; readonly deadline: number }
export type FromWorker = { readonly type: "ready" } | { readonly type: "sent"; readonly sent: SendCounts } | { readonly type: "report"; readonly report: ShareReport } | { readonly type: "failed"; readonly message: string }

/** One clock for every thread: send times stamped in one worker are read in another. */
const sharedNow = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const nextMessage = <T extends ToWorker["type"]>(port: MessagePort, type: T): Promise<Extract<ToWorker, { type: T }>> =>
  new Promise((resolve) => {
    const on = (message: ToWorker) => {
      if (message.type !== type) return
      port.off("message", on)
      resolve(message as Extract<ToWorker, { type: T }>)
    }
    port.on("message", on)
  })

/** Runs this worker's share of the simulation, talking to the main thread over `port`. */
export const runShare = async (input: ShareInput, port: MessagePort): Promise<void> => {
  const { options } = input
  const plan = planWorkload(options)
  const local = new Set(input.accounts.map((a) => a.index))
  const localWidgets = input.accounts.length * options.widgets
  const sentAt = new Float64Array(input.sentAt)
  const tally = new Tally(plan.messages.length, plan.toDeviceCount, sentAt, sharedNow)
  const watchers = new Set(plan.turnWatchers)
  const ports: Array<MatrixHomeserver> = []
  const engines: Array<Engine> = []
  const widgets = new Map<number, SimWidget>()
  let transport: WebsocketTransport | undefined
  let aborted = false
  port.on("message", (message: ToWorker) => {
    if (message.type === "abort") aborted = true
  })
  try {
    const setupTimeoutMs = options.setupTimeoutMs ?? 60_000
    const homeserverError = (message: string) => void (tally.closing || tally.error("homeserver", message))
    for (const account of input.accounts) ports.push(await connectSimAccount(input.baseUrl, account, 10_000, homeserverError))
    await startSyncing(ports, () => void (tally.closing || tally.eventsRouted++))
    transport = await startWebsocketTransport({ rateLimit: { messages: Math.max(500, Math.ceil(options.rate * 4) + 100), perMs: 1000 } })
    const ws = transport
    for (const [i, account] of input.accounts.entries()) {
      const engine = approvingEngine(ports[i]!, (widgetId, action, requestId) => tally.error("timeouts", `${widgetId}: ${action} ${requestId}`))
      engines.push(engine)
      for (let w = 0; w < options.widgets; w++) {
        const index = account.index * options.widgets + w
        const id = `sim-a${account.index}-w${w}`
        const uri = registerSimWidget(ws, engine, { id, roomId: input.roomId, name: `simulated widget ${id}`, page: "sim" })
        widgets.set(index, new SimWidget(id, account.index, uri, watchers.has(index), tally, options.encrypted, plan.messages.length, plan.toDeviceCount))
      }
    }
    const setup = Promise.all([...widgets.values()].map((w) => w.ready)).then(() =>
      Promise.all(plan.turnWatchers.filter((i) => widgets.has(i)).map((i) => widgets.get(i)!.watchTurn()))
    )
    let setupTimer: NodeJS.Timeout | undefined
    const watched = await Promise.race([setup, new Promise<undefined>((resolve) => {
        setupTimer = setTimeout(() => resolve(undefined), setupTimeoutMs)
      })])
    clearTimeout(setupTimer) // a pending timer would keep the thread alive after its report
    if (watched === undefined) throw new SimulationError(`worker ${input.worker}: only ${tally.widgetsReady} of ${localWidgets} widgets were ready within ${setupTimeoutMs} ms`)
    if (watched.some((ok) => !ok)) throw new SimulationError(`worker ${input.worker}: a TURN watch was refused`)

    const go = nextMessage(port, "go")
    port.postMessage({ type: "ready" } satisfies FromWorker)
    const { t0 } = await go
    const loopAtStart = performance.eventLoopUtilization()
    // ---- send this worker's messages on their due times (shared clock); late timers catch up.
    const mine = plan.messages.filter((m) => local.has(Math.floor(m.sender / options.widgets)))
    const toDeviceSentTo = Array.from({ length: options.accounts }, () => 0)
    let lastSend = t0
    for (let next = 0; next < mine.length && !aborted; ) {
      const wait = t0 + mine[next]!.atMs - sharedNow()
      if (wait > 0) await sleep(wait)
      const now = sharedNow() - t0
      while (next < mine.length && mine[next]!.atMs <= now && !aborted) {
        const m = mine[next++]!
        const sender = widgets.get(m.sender)!
        if (sender.sendMessage(m.seq)) tally.messagesSent++
        if (m.state && sender.sendState(m.seq)) tally.stateSent++
        if (m.toDevice !== undefined && sender.sendToDevice(input.userIds[m.toDevice.account]!, m.toDevice.seq, m.toDevice.account)) {
          tally.toDeviceSent++
          toDeviceSentTo[m.toDevice.account]!++
        }
      }
      lastSend = sharedNow()
    }
    const drain = nextMessage(port, "drain")
    port.postMessage({ type: "sent", sent: { messagesSent: tally.messagesSent, stateSent: tally.stateSent, toDeviceSentTo } } satisfies FromWorker)
    // ---- drain: until every message sent anywhere reached this worker's widgets, or the deadline.
    const { sent, deadline } = await drain
    const toDeviceExpected = input.accounts.reduce((n, a) => n + (sent.toDeviceSentTo[a.index] ?? 0), 0) * options.widgets
    const settled = () =>
      tally.deliveries >= sent.messagesSent * localWidgets &&
      tally.stateDeliveries >= sent.stateSent * localWidgets &&
      tally.toDeviceDeliveries >= toDeviceExpected &&
      tally.pendingRequests === 0
    while (!settled() && sharedNow() < deadline) await sleep(10)
    // A sync that fell further behind than the port back-fills loses events before any engine
    // sees them: say so, or the loss below reads as the engine's.
    for (const p of ports) tally.error("syncGapsLeft", `${p.userId}: ${p.stats().gapsLeft} limited sync gaps not back-filled`, p.stats().gapsLeft)
    const { latencies, receivedAt, widgetStats } = samplesOf(widgets.values())
    const report: ShareReport = {
      worker: input.worker,
      accounts: input.accounts.map((a) => a.index),
      widgets: localWidgets,
      sent: { messagesSent: tally.messagesSent, stateSent: tally.stateSent, toDeviceSentTo },
      ...tally.received(),
      unanswered: [...widgets.values()].reduce((n, w) => n + w.unanswered(), 0),
      lastSend,
      lastDelivery: tally.lastDelivery,
      latencies,
      receivedAt,
      widgetStats,
      errors: Object.fromEntries(tally.errors),
      samples: tally.samples,
      eventLoopUtilization: performance.eventLoopUtilization(loopAtStart).utilization,
      heapUsedBytes: process.memoryUsage().heapUsed
    }
    port.postMessage({ type: "report", report } satisfies FromWorker, [latencies.buffer, receivedAt.buffer])
  } finally {
    tally.closing = true
    const sockets = [...widgets.values()]
    const closed = sockets.map((w) => new Promise<void>((resolve) => (w.ws.readyState === WebSocket.CLOSED ? resolve() : w.ws.once("close", () => resolve()))))
    for (const engine of engines) engine.stop()
    await transport?.close()
    for (const w of sockets) if (w.ws.readyState !== WebSocket.CLOSED) w.ws.terminate()
    await Promise.all(closed)
    await Promise.all(ports.map((p) => p.stop().catch(() => undefined)))
  }
}

if (!isMainThread && parentPort !== null && (workerData as Partial<ShareInput> | undefined)?.kind === "simulate-share") {
  const port = parentPort
  // Closing the port (after the last message) lets the thread exit once everything stopped.
  runShare(workerData as ShareInput, port).then(
    () => port.close(),
    (error: unknown) => {
      port.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) } satisfies FromWorker)
      port.close()
    }
  )
}
