/**
 * `widgethost simulate --workers N` (issue #20): the same run as {@link simulate}, with the
 * accounts (each with its port and engine, its widgets) spread over N `node:worker_threads`
 * workers. The main thread keeps the embedded homeserver and creates the room; each worker runs its
 * share (`simulate-worker.ts`) and posts a partial report; the main thread merges them.
 *
 * Merging stays exact: every widget lives in exactly one worker and checks its own receipts once
 * (duplicates are caught where they happen), so deliveries add up; the expected counts come from
 * the sends of all workers; latency percentiles are taken over the union of the raw samples (send
 * times are stamped in shared memory on one clock for all threads); errors by kind are summed.
 */
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { setTimeout as delay } from "node:timers/promises"
import { Worker } from "node:worker_threads"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { UsageError } from "./cli-flags.ts"
import { workerEntry } from "./worker-entry.ts"
import { TURN_TTL_SECONDS } from "./sim-widget.ts"
import { checkOptions, defaultSimulateOptions, type Report, type SimulateOptions, SimulationError } from "./simulate-options.ts"
import type { FromWorker, SendCounts, ShareInput, ShareOptions, ShareReport, ToWorker } from "./simulate-worker.ts"
import { planWorkload } from "./workload.ts"
import { reportOf, round } from "./run-report.ts"

const sharedNow = () => performance.timeOrigin + performance.now()

/**
 * Contiguous blocks of accounts, as even as they go: worker k gets accounts
 * [⌊k·A/N⌋, ⌊(k+1)·A/N⌋).
 *
 * @example splitAccounts(5, 2) // [[0, 1], [2, 3, 4]]
 */
export const splitAccounts = (accounts: number, workers: number): ReadonlyArray<ReadonlyArray<number>> =>
  Array.from({ length: workers }, (_, k) => {
    const from = Math.floor((k * accounts) / workers)
    const to = Math.floor(((k + 1) * accounts) / workers)
    return Array.from({ length: to - from }, (_, i) => from + i)
  })

/** A started worker and the messages it posted, in order. */
const startWorker = (input: ShareInput) => {
  const { entry, options } = workerEntry("simulate-worker")
  const worker = new Worker(entry, { ...options, workerData: input })
  const queue: Array<FromWorker> = []
  const waiters: Array<(m: FromWorker) => void> = []
  let failure: Error | undefined
  const deliver = (m: FromWorker) => {
    const waiter = waiters.shift()
    if (waiter === undefined) queue.push(m)
    else waiter(m)
  }
  worker.on("message", deliver)
  worker.on("error", (error) => {
    failure = error
    deliver({ type: "failed", message: error.message })
  })
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve))
  void exited.then((code) => deliver({ type: "failed", message: failure?.message ?? `exited with code ${code}` }))
  /** The next message, which must be of this type; a failure or another type is a SimulationError. */
  const next = async <T extends FromWorker["type"]>(type: T): Promise<Extract<FromWorker, { type: T }>> => {
    const m = queue.shift() ?? (await new Promise<FromWorker>((resolve) => waiters.push(resolve)))
    if (m.type === type) return m as Extract<FromWorker, { type: T }>
    throw new SimulationError(`worker ${input.worker}: ${m.type === "failed" ? m.message : `sent ${m.type}, expected ${type}`}`)
  }
  return { worker, next, exited, post: (m: ToWorker) => worker.postMessage(m) }
}

/** Creates the room (the first account) and joins every other account, over plain HTTP. */
const setUpRoom = async (hs: EmbeddedHomeserver, tokens: ReadonlyArray<string>, encrypted: boolean): Promise<string> => {
  const call = async <A>(token: string, path: string, body: unknown): Promise<A> => {
    const response = await fetch(`${hs.baseUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) })
    if (!response.ok) throw new SimulationError(`${path}: ${response.status} ${await response.text()}`)
    return (await response.json()) as A
  }
  const [first, ...others] = tokens
  if (first === undefined) throw new SimulationError("no account to create the room with")
  const { room_id: roomId } = await call<{ room_id: string }>(first, "/_matrix/client/v3/createRoom", {
    preset: "public_chat",
    name: "widgethost simulation",
    power_level_content_override: { state_default: 0 },
    initial_state: encrypted ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] : []
  })
  for (const token of others) await call(token, `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/join`, {})
  return roomId
}

/** One worker's row of the merged report. */
export interface WorkerRow {
  readonly worker: number
  readonly accounts: ReadonlyArray<number>
  readonly widgets: number
  readonly messagesSent: number
  readonly deliveries: number
  readonly eventLoopUtilization: number
}

export type WorkersReport = Report & { readonly workers: ReadonlyArray<WorkerRow> }

/**
 * Merges the workers' partial reports into one {@link Report}, with the verdict errors
 * (undelivered, unanswered) computed from the merged counts.
 */
export const mergeShares = (
  options: ShareOptions,
  shares: ReadonlyArray<ShareReport>,
  timing: { readonly setupSeconds: number; readonly t0: number; readonly rssBytes: number; readonly peakRssBytes: number; readonly mainHeapBytes: number }
): WorkersReport => {
  const owned = shares.flatMap((s) => s.accounts).sort((a, b) => a - b)
  if (owned.length !== options.accounts || owned.some((a, i) => a !== i)) throw new SimulationError(`the workers' accounts ${owned.join(",")} are not each account once`)
  const sum = (f: (s: ShareReport) => number) => shares.reduce((n, s) => n + f(s), 0)
  const errors = new Map<string, number>()
  const samples: Array<string> = []
  for (const s of shares) {
    for (const [kind, n] of Object.entries(s.errors)) errors.set(kind, (errors.get(kind) ?? 0) + n)
    for (const sample of s.samples) if (samples.length < 10) samples.push(`worker ${s.worker}: ${sample}`)
  }
  const latencies = new Float64Array(sum((s) => s.latencies.length))
  const receivedAt = new Float64Array(latencies.length)
  let at = 0
  for (const s of shares) {
    latencies.set(s.latencies, at)
    receivedAt.set(s.receivedAt, at)
    at += s.latencies.length
  }
  const plan = planWorkload(options)
  const report = reportOf({
    options,
    messagesPlanned: plan.messages.length,
    turnWatchers: plan.turnWatchers.length,
    setupSeconds: timing.setupSeconds,
    t0: timing.t0,
    end: Math.max(...shares.map((s) => Math.max(s.lastSend, s.lastDelivery))),
    messagesSent: sum((s) => s.sent.messagesSent),
    stateSent: sum((s) => s.sent.stateSent),
    toDeviceSent: sum((s) => s.sent.toDeviceSentTo.reduce((a, b) => a + b, 0)),
    deliveries: sum((s) => s.deliveries),
    stateDeliveries: sum((s) => s.stateDeliveries),
    toDeviceDeliveries: sum((s) => s.toDeviceDeliveries),
    toDeviceReceived: sum((s) => s.toDeviceReceived),
    turnUpdates: sum((s) => s.turnUpdates),
    eventsRouted: sum((s) => s.eventsRouted),
    unanswered: sum((s) => s.unanswered),
    latencies,
    receivedAt,
    widgetStats: shares.flatMap((s) => s.widgetStats),
    errors,
    samples,
    memory: { rssBytes: timing.rssBytes, heapUsedBytes: timing.mainHeapBytes + sum((s) => s.heapUsedBytes), peakRssBytes: timing.peakRssBytes },
    // The busiest worker's loop: that one bounds the run.
    eventLoopUtilization: Math.max(...shares.map((s) => s.eventLoopUtilization))
  })
  return {
    ...report,
    workers: shares.map((s) => ({ worker: s.worker, accounts: s.accounts, widgets: s.widgets, messagesSent: s.sent.messagesSent, deliveries: s.deliveries, eventLoopUtilization: round(s.eventLoopUtilization) }))
  }
}

/**
 * Runs one simulation over `workers` worker threads and returns the merged report; every worker
 * and the homeserver are stopped before it returns.
 *
 * @example (await simulateOnWorkers({ accounts: 2, widgets: 2, until: { events: 20 } }, 2)).workers.length === 2
 */
export const simulateOnWorkers = async (input: Partial<SimulateOptions>, workers: number): Promise<WorkersReport> => {
  const { onProgress: _progress, signal, ...options }: SimulateOptions = { ...defaultSimulateOptions, ...input }
  checkOptions(options)
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > options.accounts) throw new UsageError(`--workers must be an integer from 1 to --accounts (${options.accounts})`)
  const started = performance.now()
  let peakRss = process.memoryUsage.rss()
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 100)
  const homeserver = await startEmbeddedHomeserver({
    turn: { uris: ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"], sharedSecret: randomBytes(16).toString("hex"), ttlSeconds: TURN_TTL_SECONDS }
  })
  const running: Array<ReturnType<typeof startWorker>> = []
  const onAbort = () => running.forEach((w) => w.post({ type: "abort" }))
  try {
    const sessions = await Promise.all(Array.from({ length: options.accounts }, (_, a) => homeserver.ensureUser(`sim${a}`, `sim-password-${a}`)))
    const roomId = await setUpRoom(homeserver, sessions.map((s) => s.accessToken), options.encrypted)
    const plan = planWorkload(options)
    const sentAt = new SharedArrayBuffer((plan.messages.length + 1) * Float64Array.BYTES_PER_ELEMENT)
    new Float64Array(sentAt).fill(Number.NaN)
    for (const [k, accounts] of splitAccounts(options.accounts, workers).entries()) {
      running.push(
        startWorker({
          kind: "simulate-share",
          worker: k,
          options,
          baseUrl: homeserver.baseUrl,
          roomId,
          accounts: accounts.map((a) => ({ index: a, userId: sessions[a]!.userId, accessToken: sessions[a]!.accessToken, deviceId: sessions[a]!.deviceId })),
          userIds: sessions.map((s) => s.userId),
          sentAt
        })
      )
    }
    await Promise.all(running.map((w) => w.next("ready")))
    const setupSeconds = (performance.now() - started) / 1000
    // A common start a little ahead, so every worker's schedule begins at the same instant.
    const t0 = sharedNow() + 20
    signal?.addEventListener("abort", onAbort)
    if (signal?.aborted === true) onAbort()
    for (const w of running) w.post({ type: "go", t0 })
    const counts = (await Promise.all(running.map((w) => w.next("sent")))).map((m) => m.sent)
    const toDeviceSentTo = Array.from({ length: options.accounts }, (_, a) => counts.reduce((n, c) => n + (c.toDeviceSentTo[a] ?? 0), 0))
    const sent: SendCounts = { messagesSent: counts.reduce((n, c) => n + c.messagesSent, 0), stateSent: counts.reduce((n, c) => n + c.stateSent, 0), toDeviceSentTo }
    const deadline = sharedNow() + (options.drainTimeoutMs ?? 15_000)
    for (const w of running) w.post({ type: "drain", sent, deadline })
    const shares = (await Promise.all(running.map((w) => w.next("report")))).map((m) => m.report)
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
    return mergeShares(options, shares, { setupSeconds, t0, rssBytes: process.memoryUsage.rss(), peakRssBytes: peakRss, mainHeapBytes: process.memoryUsage().heapUsed })
  } catch (error) {
    // One worker failed: the others may wait for a `go` that never comes; end them now.
    await Promise.all(running.map((w) => w.worker.terminate()))
    throw error
  } finally {
    signal?.removeEventListener("abort", onAbort)
    clearInterval(sampler)
    // A worker stops its own engines and sockets after its report; one that failed is ended here.
    await Promise.all(running.map(async (w) => {
      const stopped = await Promise.race([w.exited, delay(10_000, undefined, { ref: false })])
      if (stopped === undefined) await w.worker.terminate()
    }))
    await homeserver.close()
  }
}
