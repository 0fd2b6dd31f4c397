/**
 * `simulate --scenario FILE`: runs a scenario (scenario-file.ts) on the embedded homeserver behind
 * a fault proxy, one engine per account, every widget a kit widget over a real websocket, and
 * reports deliveries checked exactly once per widget, latency percentiles, errors by kind and
 * per-widget outliers. One process for now (worker threads: not yet, see the README).
 */
import { fromEffectPort } from "@widgethost/core/effect"
import { randomBytes } from "node:crypto"
import { performance } from "node:perf_hooks"
import { parseWidgetDefinition, Result } from "@widgethost/core"
import { createEngine, type Engine } from "@widgethost/engine"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, path, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import { startFaultProxy, type FaultProxy } from "./fault-proxy.ts"
import type { Scenario } from "./scenario-file.ts"
import { ScenarioWidgetRunner, type ScenarioLedger } from "./scenario-widget.ts"
import { SimulationError } from "./simulate-options.ts"

export interface WidgetReport {
  readonly behaviour: string
  readonly account: string
  readonly room: string
  readonly sent: number
  readonly expected: number
  readonly delivered: number
  readonly missing: number
  readonly duplicates: number
  /**
   * Room events and to-device messages the engine sent this widget and saw unanswered (its
   * `RequestTimedOut` reports). The transport delivers again what a dropped link may have lost
   * and the engine's timeout waits while the widget is away, so this is 0 in a sound run; it
   * tells a loss the engine noticed from a silent one.
   */
  readonly timedOut: number
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null }
}

export interface ScenarioReport {
  readonly durationSeconds: number
  readonly deliveries: { readonly expected: number; readonly delivered: number; readonly missing: number; readonly duplicates: number }
  readonly toDevice: { readonly expected: number; readonly delivered: number; readonly missing: number; readonly duplicates: number }
  readonly latencyMs: { readonly p50: number | null; readonly p90: number | null; readonly p99: number | null; readonly max: number | null }
  readonly misbehaving: { readonly junkSent: number; readonly junkAnsweredWithError: number; readonly floodsRateLimited: number; readonly recovered: number }
  readonly outages: ReadonlyArray<{ readonly mode: string; readonly seconds: number; readonly refused: number; readonly stalled: number; readonly recoveredAfterMs: number | null }>
  readonly reconnects: number
  /** toWidget requests the transport wrote again on a resumed link, unanswered when the old one dropped. */
  readonly redelivered: number
  readonly readPages: number
  readonly turnUpdates: number
  readonly errors: { readonly total: number; readonly byKind: Readonly<Record<string, number>>; readonly samples: ReadonlyArray<string> }
  readonly widgets: Readonly<Record<string, WidgetReport>>
  /**
   * Whether the run holds up: every confirmed message and to-device message delivered exactly
   * once to every widget listening, reconnects included (no loss at all, noticed or silent, and
   * no duplicate), every junk request answered with an error, every flood cut and recovered
   * from, every outage followed by a confirmed send. Why not, otherwise. `losses`: deliveries
   * missing; `silentLosses`: those of them the engine did not report as timed out.
   */
  readonly verdict: { readonly ok: boolean; readonly losses: number; readonly silentLosses: number; readonly problems: ReadonlyArray<string> }
  /** Widgets with losses or duplicates, or a median latency over twice the run's. */
  readonly outliers: ReadonlyArray<string>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const round = (n: number) => Math.round(n * 100) / 100
const pct = (sorted: ReadonlyArray<number>, p: number): number | null =>
  sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!)

export const runScenario = async (scenario: Scenario): Promise<ScenarioReport> => {
  const errors = new Map<string, number>()
  const samples: Array<string> = []
  let closing = false
  const ledger: ScenarioLedger = {
    messages: new Map(),
    toDevice: new Map(),
    error: (kind, detail) => {
      if (closing) return
      errors.set(kind, (errors.get(kind) ?? 0) + 1)
      if (samples.length < 10) samples.push(`${kind}: ${detail}`)
    }
  }
  let homeserver: EmbeddedHomeserver | undefined
  let proxy: FaultProxy | undefined
  let transport: WebsocketTransport | undefined
  const ports = new Map<string, MatrixHomeserver>()
  const engines: Array<Engine> = []
  const runners = new Map<string, ScenarioWidgetRunner>()
  const timers: Array<NodeJS.Timeout> = []
  const timedOut = new Map<string, number>()
  const outages: Array<{ mode: string; seconds: number; refused: number; stalled: number; endAt: number }> = []
  try {
    homeserver = await startEmbeddedHomeserver({ turn: { uris: ["turn:127.0.0.1:3478?transport=udp"], sharedSecret: randomBytes(16).toString("hex"), ttlSeconds: 5 } })
    const hs = homeserver
    proxy = await startFaultProxy(hs.baseUrl)
    const via = proxy.baseUrl
    for (const name of scenario.accounts) {
      const session = await hs.ensureUser(name, `scenario-${name}`)
      const port = await connectHomeserver({
        baseUrl: via,
        auth: { accessToken: session.accessToken, deviceId: session.deviceId, userId: session.userId },
        sync: { timeoutMs: 5_000 },
        onError: (error) => ledger.error("homeserver", `${name}: ${error instanceof Error ? error.message : String(error)}`)
      })
      ports.set(name, port)
    }
    const portOf = (account: string) => ports.get(account) ?? (() => { throw new SimulationError(`no account ${account}`) })()
    const roomIds = new Map<string, string>()
    for (const room of scenario.rooms) {
      const [creator, ...others] = room.members
      const { room_id } = await portOf(creator!).http.request<{ room_id: string }>({
        method: "POST",
        path: "/_matrix/client/v3/createRoom",
        body: {
          preset: "public_chat",
          name: room.name,
          initial_state: room.encrypted === true ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] : []
        }
      })
      roomIds.set(room.name, room_id)
      for (const m of others) await portOf(m).http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${room_id}/join`, body: {} })
    }
    const firstSyncs = [...ports.values()].map((p) => p.nextSync())
    for (const p of ports.values()) p.start()
    await Promise.all(firstSyncs)

    transport = await startWebsocketTransport({ rateLimit: { messages: scenario.rateLimit ?? 200, perMs: 1000 }, resumeGraceMs: 15_000 })
    const ws = transport
    const engineOf = new Map<string, Engine>()
    for (const [name, port] of ports) {
      const engine = createEngine({
        homeserver: fromEffectPort(port),
        policy: { rules: [{ capability: "*", decision: "approve" }] },
        onReport: (_s, widgetId, report) => {
          if (report._tag !== "RequestTimedOut") return
          ledger.error("timeouts", `${widgetId}: ${report.action}`)
          timedOut.set(widgetId, (timedOut.get(widgetId) ?? 0) + 1)
        }
      })
      engines.push(engine)
      engineOf.set(name, engine)
    }
    const members = new Map(scenario.rooms.map((r) => [r.name, new Set(r.members)]))
    for (const spec of scenario.widgets) {
      const roomId = roomIds.get(spec.room)!
      const parsed = parseWidgetDefinition({
        source: "config",
        id: spec.name,
        roomId,
        content: { type: "m.custom", url: "https://widgethost.invalid/scenario#ws=$matrix_websocket_uri", name: spec.name, data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }
      })
      if (Result.isFailure(parsed)) throw new SimulationError(`widget ${spec.name}: ${parsed.failure.detail}`)
      const widget = parsed.success
      const engine = engineOf.get(spec.account)!
      const registration = ws.register(spec.name, (send) => engine.openSession({ widget, send, waitForIframeLoad: false }))
      const encrypted = scenario.rooms.find((r) => r.name === spec.room)?.encrypted === true
      const peer = spec.behaviour === "call" ? portOf(spec.peer).userId : undefined
      runners.set(spec.name, new ScenarioWidgetRunner(spec, registration.uri, ledger, encrypted, peer))
    }
    const startWidgets = (account: string, room: string) =>
      Promise.all([...runners.values()].filter((r) => r.spec.account === account && r.spec.room === room && Number.isNaN(r.readyAt)).map((r) => r.start()))
    for (const [room, set] of members) for (const account of set) await startWidgets(account, room)

    const expectedFor = (r: ScenarioWidgetRunner) =>
      [...ledger.messages.entries()].filter(([, m]) => m.confirmed && m.room === r.spec.room && m.startedAt >= r.readyAt && m.startedAt < r.stopAt).map(([body]) => body)
    const caughtUp = (r: ScenarioWidgetRunner) => expectedFor(r).every((b) => r.received.has(b))
    /** Every send this widget should hear has settled (a send still in flight may yet count). */
    const settledFor = (r: ScenarioWidgetRunner) => [...ledger.messages.values()].every((m) => m.settled || m.room !== r.spec.room || m.startedAt >= r.stopAt)

    // ---- the timeline, against one clock; the senders run meanwhile.
    const t0 = performance.now()
    const steps: Array<Promise<void>> = []
    for (const step of scenario.timeline ?? []) {
      steps.push(
        new Promise<void>((resolve) => {
          timers.push(
            setTimeout(() => {
              const act = async () => {
                if ("join" in step) {
                  await portOf(step.join.account).http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomIds.get(step.join.room)!}/join`, body: {} })
                  await portOf(step.join.account).nextSync()
                  await startWidgets(step.join.account, step.join.room)
                } else if ("leave" in step) {
                  // Leaving widgets stop, hear out what was sent before (up to 5 s), then go.
                  const leaving = [...runners.values()].filter((r) => r.spec.account === step.leave.account && r.spec.room === step.leave.room)
                  for (const r of leaving) r.stop()
                  const until = performance.now() + 5_000
                  while (!leaving.every((r) => settledFor(r) && caughtUp(r)) && performance.now() < until) await sleep(20)
                  for (const r of leaving) r.close()
                  await portOf(step.leave.account).http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomIds.get(step.leave.room)!}/leave`, body: {} })
                } else if ("reconnect" in step) {
                  await Promise.all(step.reconnect.map((n) => runners.get(n)!.reconnect()))
                } else {
                  const before = { ...proxy!.counts }
                  await proxy!.outage(step.outage.mode, step.outage.seconds * 1000)
                  outages.push({ mode: step.outage.mode, seconds: step.outage.seconds, refused: proxy!.counts.refused - before.refused, stalled: proxy!.counts.stalled - before.stalled, endAt: performance.now() })
                }
              }
              act().then(resolve, (e: Error) => {
                ledger.error("timelineStep", `${JSON.stringify(step)}: ${e.message}`)
                resolve()
              })
            }, step.at * 1000)
          )
        })
      )
    }
    await sleep(scenario.durationSeconds * 1000)
    await Promise.all(steps)
    for (const r of runners.values()) r.stop()

    // ---- drain: every confirmed message should reach every widget that was listening.
    const toDeviceFor = (r: ScenarioWidgetRunner) =>
      r.spec.behaviour !== "call" ? [] : [...ledger.toDevice.entries()].filter(([, t]) => t.confirmed && t.account === r.spec.account).map(([key]) => key)
    const done = () => [...runners.values()].every((r) => caughtUp(r) && toDeviceFor(r).every((k) => r.toDeviceReceived.has(k)))
    const deadline = performance.now() + 10_000
    while (!done() && performance.now() < deadline) await sleep(20)
    await sleep(200) // late duplicates, if any, arrive now rather than after the count
    const durationSeconds = (performance.now() - t0) / 1000

    // ---- the verdict.
    const widgets: Record<string, WidgetReport> = {}
    const all: Array<number> = []
    const totals = { expected: 0, delivered: 0, missing: 0, duplicates: 0 }
    const td = { expected: 0, delivered: 0, missing: 0, duplicates: 0 }
    for (const r of runners.values()) {
      const expected = expectedFor(r)
      const delivered = expected.filter((b) => r.received.has(b)).length
      const duplicates = [...r.received.values()].reduce((n, c) => n + c - 1, 0)
      const sorted = [...r.latencies].sort((a, b) => a - b)
      all.push(...sorted)
      widgets[r.spec.name] = { behaviour: r.spec.behaviour, account: r.spec.account, room: r.spec.room, sent: r.sent, expected: expected.length, delivered, missing: expected.length - delivered, duplicates, timedOut: timedOut.get(r.spec.name) ?? 0, latencyMs: { p50: pct(sorted, 0.5), p99: pct(sorted, 0.99) } }
      totals.expected += expected.length
      totals.delivered += delivered
      totals.duplicates += duplicates
      const keys = toDeviceFor(r)
      td.expected += keys.length
      td.delivered += keys.filter((k) => r.toDeviceReceived.has(k)).length
      td.duplicates += [...r.toDeviceReceived.values()].reduce((n, c) => n + c - 1, 0)
    }
    totals.missing = totals.expected - totals.delivered
    td.missing = td.expected - td.delivered
    for (const [kind, n] of [["missing", totals.missing], ["duplicates", totals.duplicates], ["toDeviceMissing", td.missing], ["toDeviceDuplicates", td.duplicates]] as const)
      if (n > 0) errors.set(kind, (errors.get(kind) ?? 0) + n)
    all.sort((a, b) => a - b)
    const p50 = pct(all, 0.5)
    const outliers = Object.entries(widgets)
      .filter(([, w]) => w.missing > 0 || w.duplicates > 0 || (p50 !== null && w.latencyMs.p50 !== null && w.latencyMs.p50 > 2 * p50))
      .map(([name]) => name)
    const bad = [...runners.values()].filter((r) => r.spec.behaviour === "misbehaving")
    const confirmedAfter = (at: number) => [...ledger.messages.values()].filter((m) => m.confirmed && m.startedAt >= at).map((m) => m.startedAt)
    const misbehaving = {
      junkSent: bad.reduce((n, r) => n + r.junkSent, 0),
      junkAnsweredWithError: bad.reduce((n, r) => n + r.junkAnswered, 0),
      floodsRateLimited: bad.reduce((n, r) => n + r.rateLimited, 0),
      recovered: bad.filter((r) => r.recoveredAfterFlood).length
    }
    const outageReports = outages.map((o) => {
      const after = confirmedAfter(o.endAt)
      return { mode: o.mode, seconds: o.seconds, refused: o.refused, stalled: o.stalled, recoveredAfterMs: after.length === 0 ? null : round(Math.min(...after) - o.endAt) }
    })
    const silentLosses = Object.values(widgets).reduce((n, w) => n + Math.max(0, w.missing - w.timedOut), 0)
    const losses = totals.missing + td.missing
    const problems = [
      ...(totals.duplicates + td.duplicates > 0 ? [`${totals.duplicates + td.duplicates} duplicate deliveries`] : []),
      ...(losses > 0 ? [`${losses} deliveries lost (${silentLosses} without a timeout report)`] : []),
      ...(misbehaving.junkAnsweredWithError < misbehaving.junkSent ? [`${misbehaving.junkSent - misbehaving.junkAnsweredWithError} junk requests not answered with an error`] : []),
      ...(misbehaving.floodsRateLimited < bad.length || misbehaving.recovered < bad.length ? ["a flood was not cut, or the widget could not come back"] : []),
      ...outageReports.filter((o) => o.recoveredAfterMs === null).map((o) => `no confirmed send after the ${o.mode} outage`)
    ]
    return {
      verdict: { ok: problems.length === 0, losses, silentLosses, problems },
      durationSeconds: round(durationSeconds),
      deliveries: totals,
      toDevice: td,
      latencyMs: { p50, p90: pct(all, 0.9), p99: pct(all, 0.99), max: pct(all, 1) },
      misbehaving,
      outages: outageReports,
      reconnects: [...runners.values()].reduce((n, r) => n + r.reconnects, 0),
      redelivered: transport?.stats().redelivered ?? 0,
      readPages: [...runners.values()].reduce((n, r) => n + r.pages, 0),
      turnUpdates: [...runners.values()].reduce((n, r) => n + r.turnUpdates, 0),
      errors: { total: [...errors.values()].reduce((a, b) => a + b, 0), byKind: Object.fromEntries([...errors.entries()].sort(([a], [b]) => a.localeCompare(b))), samples },
      widgets,
      outliers
    }
  } finally {
    closing = true
    for (const t of timers) clearTimeout(t)
    for (const r of runners.values()) r.close()
    for (const e of engines) e.stop()
    await transport?.close()
    await Promise.all([...ports.values()].map((p) => p.stop().catch(() => undefined)))
    await proxy?.close()
    await homeserver?.close()
  }
}
