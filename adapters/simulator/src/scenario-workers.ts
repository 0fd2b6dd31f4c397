/**
 * `simulate --scenario FILE --workers N`: the scenario's accounts spread over N worker threads in
 * contiguous blocks (as `splitAccounts` does for flag runs), each worker hosting its accounts'
 * ports, engines, transport and widgets (scenario-worker.ts). The homeserver, the fault proxy and
 * the rooms stay in the main thread, which runs the timeline: it asks the owning worker to join,
 * reconnect or leave, and injects outages itself. A leave is hear-out across threads: the owner
 * stops its widgets, every worker says what it sent to that room before then, and the owner's
 * widgets wait for those. At the end every worker's ledger is merged and sent to all, each says
 * what its widgets received, and the one verdict (scenario-verdict.ts) judges the union: a widget
 * lives in exactly one worker, so exactly-once is checked where it receives.
 */
import { setTimeout as delay } from "node:timers/promises"
import { Worker } from "node:worker_threads"
import { UsageError } from "./cli-flags.ts"
import type { Scenario, ScenarioStep } from "./scenario-file.ts"
import { startScenarioServers, type ScenarioServers } from "./scenario-setup.ts"
import { runOutage, scheduleTimeline, type RunningTimeline } from "./scenario-timeline.ts"
import { scenarioReportOf, type OutageSeen, type ScenarioReport } from "./scenario-verdict.ts"
import type { AskName, FromScenarioWorker, ScenarioAsks, ScenarioShareInput } from "./scenario-worker.ts"
import { countingLedger, type ScenarioLedger, type WidgetOutcome } from "./scenario-widget.ts"
import { sharedNow } from "./shared-clock.ts"
import { SimulationError } from "./simulate-options.ts"
import { splitAccounts } from "./simulate-workers.ts"
import { workerEntry } from "./worker-entry.ts"

/** One worker's row of a scenario run on workers. */
export interface ScenarioWorkerRow {
  readonly worker: number
  readonly accounts: ReadonlyArray<string>
  readonly widgets: ReadonlyArray<string>
  readonly delivered: number
  readonly expected: number
}

export type ScenarioWorkersReport = ScenarioReport & { readonly workers: ReadonlyArray<ScenarioWorkerRow> }

/** A started scenario worker: `ask` posts an ask and resolves with its answer. */
const startScenarioWorker = (input: ScenarioShareInput) => {
  const { entry, options } = workerEntry("scenario-worker")
  const worker = new Worker(entry, { ...options, workerData: input })
  const pending = new Map<number, { resolve: (a: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 0
  let failure: Error | undefined
  let markReady!: () => void
  let failReady!: (e: Error) => void
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve
    failReady = reject
  })
  ready.catch(() => undefined) // awaited by the run; never unhandled
  const fail = (message: string) => {
    failure ??= new SimulationError(`worker ${input.worker}: ${message}`)
    failReady(failure)
    for (const p of pending.values()) p.reject(failure)
    pending.clear()
  }
  worker.on("message", (m: FromScenarioWorker) => {
    if (m.type === "ready") return markReady()
    if (m.type === "failed") return fail(m.message)
    const waiting = pending.get(m.id)
    pending.delete(m.id)
    if (m.error !== undefined) waiting?.reject(new SimulationError(`worker ${input.worker}: ${m.error}`))
    else waiting?.resolve(m.answer)
  })
  worker.on("error", (error) => fail(error.message))
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve))
  void exited.then((code) => fail(`exited with code ${code}`))
  const ask = <K extends AskName>(name: K, body: ScenarioAsks[K]["ask"]): Promise<ScenarioAsks[K]["answer"]> =>
    failure !== undefined
      ? Promise.reject(failure)
      : new Promise((resolve, reject) => {
          const id = ++nextId
          pending.set(id, { resolve: resolve as (a: unknown) => void, reject })
          const message = { type: "ask", id, name, ask: body }
          worker.postMessage(message)
        })
  return { worker, ready, exited, ask }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Runs a scenario over `workers` worker threads and returns the merged report; every worker, the
 * proxy and the homeserver are stopped before it returns.
 *
 * @example (await runScenarioOnWorkers(loadScenario("smoke.yaml"), 2)).verdict.ok
 */
export const runScenarioOnWorkers = async (scenario: Scenario, workers: number): Promise<ScenarioWorkersReport> => {
  const accounts = scenario.accounts.length
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > accounts) throw new UsageError(`--workers must be an integer from 1 to the scenario's accounts (${accounts})`)
  const main = countingLedger() // the main thread's own errors: failed timeline steps
  let servers: ScenarioServers | undefined
  let timeline: RunningTimeline | undefined
  const running: Array<ReturnType<typeof startScenarioWorker>> = []
  const outages: Array<OutageSeen> = []
  try {
    servers = await startScenarioServers(scenario)
    const proxy = servers.proxy
    const userIds = new Map(servers.accounts.map((a) => [a.name, a.userId]))
    const blocks = splitAccounts(accounts, workers).map((block) => block.map((i) => servers!.accounts[i]!))
    const ownerOf = new Map(blocks.flatMap((block, k) => block.map((a) => [a.name, k] as const)))
    const widgetOwner = (widget: string) => ownerOf.get(scenario.widgets.find((w) => w.name === widget)?.account ?? "") ?? -1
    for (const [k, block] of blocks.entries()) {
      running.push(startScenarioWorker({ kind: "scenario-share", worker: k, scenario, baseUrl: proxy.baseUrl, accounts: block, roomIds: servers.roomIds, userIds }))
    }
    await Promise.all(running.map((w) => w.ready))
    const owner = (account: string) => running[ownerOf.get(account) ?? -1] ?? (() => { throw new SimulationError(`no worker owns ${account}`) })()

    const act = async (step: ScenarioStep): Promise<void> => {
      if ("join" in step) await owner(step.join.account).ask("join", step.join)
      else if ("reconnect" in step) {
        const asks = running.flatMap((w, k) => {
          const mine = step.reconnect.filter((n) => widgetOwner(n) === k)
          return mine.length === 0 ? [] : [w.ask("reconnect", { widgets: mine })]
        })
        await Promise.all(asks)
      } else if ("leave" in step) {
        // Hear-out across threads: what anyone sent to the room before the widgets stopped.
        const until = sharedNow() + 5_000
        const leaver = owner(step.leave.account)
        const { stopAt } = await leaver.ask("stop", step.leave)
        const sent = await Promise.all(running.map((w) => w.ask("sentBefore", { room: step.leave.room, before: stopAt, until })))
        await leaver.ask("hearOut", { ...step.leave, messages: new Map(sent.flatMap((m) => [...m])), until })
      } else outages.push(await runOutage(proxy, step.outage))
    }
    const t0 = sharedNow()
    timeline = scheduleTimeline(scenario.timeline ?? [], act, (detail) => main.ledger.error("timelineStep", detail))
    await sleep(scenario.durationSeconds * 1000)
    await timeline.done

    // ---- the end: every ledger merged and handed to every worker, which drains against it.
    const ledgers = await Promise.all(running.map((w) => w.ask("finish", { until: sharedNow() + 5_000 })))
    const messages: ScenarioLedger["messages"] = new Map(ledgers.flatMap((l) => [...l.messages]))
    const toDevice: ScenarioLedger["toDevice"] = new Map(ledgers.flatMap((l) => [...l.toDevice]))
    const until = sharedNow() + 10_000
    const shares = await Promise.all(running.map((w) => w.ask("drain", { messages, toDevice, until })))
    const end = sharedNow()

    const errors = new Map(main.errors)
    const samples = [...main.samples]
    for (const [k, s] of shares.entries()) {
      for (const [kind, n] of s.errors) errors.set(kind, (errors.get(kind) ?? 0) + n)
      for (const sample of s.samples) if (samples.length < 10) samples.push(`worker ${k}: ${sample}`)
    }
    const widgets: Array<WidgetOutcome> = shares.flatMap((s) => s.widgets)
    const report = scenarioReportOf({
      t0,
      end,
      messages,
      toDevice,
      widgets,
      timedOut: new Map(shares.flatMap((s) => [...s.timedOut])),
      outages,
      redelivered: shares.reduce((n, s) => n + s.redelivered, 0),
      errors,
      samples
    })
    const rows = shares.map((s, k): ScenarioWorkerRow => {
      const names = s.widgets.map((w) => w.spec.name)
      return {
        worker: k,
        accounts: blocks[k]!.map((a) => a.name),
        widgets: names,
        delivered: names.reduce((n, name) => n + (report.widgets[name]?.delivered ?? 0), 0),
        expected: names.reduce((n, name) => n + (report.widgets[name]?.expected ?? 0), 0)
      }
    })
    return { ...report, workers: rows }
  } catch (error) {
    await Promise.all(running.map((w) => w.worker.terminate()))
    throw error
  } finally {
    main.close()
    timeline?.cancel()
    // A worker stops its own host after its drain answer; one that hangs is ended here.
    await Promise.all(running.map(async (w) => {
      const stopped = await Promise.race([w.exited, delay(10_000, undefined, { ref: false })])
      if (stopped === undefined) await w.worker.terminate()
    }))
    await servers?.close()
  }
}
