/**
 * One worker thread of `simulate --scenario FILE --workers N`: it hosts a share of the scenario's
 * accounts (scenario-host.ts: their ports, engines, transport and widgets) and answers the main
 * thread's asks, which carry out the timeline and the end of the run (scenario-workers.ts). The
 * homeserver, the fault proxy and the rooms live in the main thread.
 *
 * Protocol: workerData {@link ScenarioShareInput}; → `ready` once its widgets are; then any
 * number of ← `ask` {id, ask} → `answer` {id, answer | error}; after the `drain` answer it stops
 * everything and exits. A failure outside an ask is → `failed`.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from "node:worker_threads"
import type { Scenario } from "./scenario-file.ts"
import { startScenarioHost } from "./scenario-host.ts"
import type { ScenarioAccount } from "./scenario-setup.ts"
import { caughtUp, expectedFor } from "./scenario-verdict.ts"
import { countingLedger, type ScenarioLedger, type WidgetOutcome } from "./scenario-widget.ts"
import { sharedNow } from "./shared-clock.ts"

export interface ScenarioShareInput {
  readonly kind: "scenario-share"
  readonly worker: number
  readonly scenario: Scenario
  /** The fault proxy's URL. */
  readonly baseUrl: string
  /** This worker's accounts. */
  readonly accounts: ReadonlyArray<ScenarioAccount>
  readonly roomIds: ReadonlyMap<string, string>
  readonly userIds: ReadonlyMap<string, string>
}

type Messages = ScenarioLedger["messages"]
type ToDevice = ScenarioLedger["toDevice"]

/** What the main thread may ask (times on the shared clock), and what each ask answers. */
export interface ScenarioAsks {
  readonly join: { readonly ask: { readonly account: string; readonly room: string }; readonly answer: null }
  readonly reconnect: { readonly ask: { readonly widgets: ReadonlyArray<string> }; readonly answer: null }
  /** Stops the account's widgets in the room; answers when the last one stopped. */
  readonly stop: { readonly ask: { readonly account: string; readonly room: string }; readonly answer: { readonly stopAt: number } }
  /** This worker's sends in the room started before `before`, once they settled (or at `until`). */
  readonly sentBefore: { readonly ask: { readonly room: string; readonly before: number; readonly until: number }; readonly answer: Messages }
  /** The stopped widgets hear out `messages` (up to `until`), close, and the account leaves. */
  readonly hearOut: { readonly ask: { readonly account: string; readonly room: string; readonly messages: Messages; readonly until: number }; readonly answer: null }
  /** Every widget stops; answers this worker's ledger once its sends settled (or at `until`). */
  readonly finish: { readonly ask: { readonly until: number }; readonly answer: { readonly messages: Messages; readonly toDevice: ToDevice } }
  /** Waits (up to `until`) until its widgets received what every worker sent them; answers what they did. */
  readonly drain: {
    readonly ask: { readonly messages: Messages; readonly toDevice: ToDevice; readonly until: number }
    readonly answer: {
      readonly widgets: ReadonlyArray<WidgetOutcome>
      readonly timedOut: ReadonlyMap<string, number>
      readonly redelivered: number
      readonly errors: ReadonlyMap<string, number>
      readonly samples: ReadonlyArray<string>
    }
  }
}
export type AskName = keyof ScenarioAsks
export type ToScenarioWorker = { [K in AskName]: { readonly type: "ask"; readonly id: number; readonly name: K; readonly ask: ScenarioAsks[K]["ask"] } }[AskName]
export type FromScenarioWorker =
  | { readonly type: "ready" }
  | { readonly type: "answer"; readonly id: number; readonly answer?: unknown; readonly error?: string }
  | { readonly type: "failed"; readonly message: string }

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const waitUntil = async (done: () => boolean, until: number) => {
  while (!done() && sharedNow() < until) await sleep(20)
}

/** Runs this worker's share, answering the main thread over `port`, until the drain. */
export const runScenarioShare = async (input: ScenarioShareInput, port: MessagePort): Promise<void> => {
  const { ledger, errors, samples, close: closeLedger } = countingLedger()
  const host = await startScenarioHost(input.scenario, { baseUrl: input.baseUrl, accounts: input.accounts, roomIds: input.roomIds, userIds: input.userIds, ledger })
  const runners = [...host.runners.values()]
  let drained!: () => void
  const finished = new Promise<void>((resolve) => (drained = resolve))
  const answer = async (m: ToScenarioWorker): Promise<unknown> => {
    switch (m.name) {
      case "join":
        return host.join(m.ask.account, m.ask.room).then(() => null)
      case "reconnect":
        return host.reconnect(m.ask.widgets).then(() => null)
      case "stop": {
        const stopped = host.stopWidgets(m.ask.account, m.ask.room)
        return { stopAt: Math.max(sharedNow(), ...stopped.map((r) => r.stopAt).filter(Number.isFinite)) }
      }
      case "sentBefore": {
        const { room, before } = m.ask
        const mine = () => [...ledger.messages].filter(([, s]) => s.room === room && s.startedAt < before)
        await waitUntil(() => mine().every(([, s]) => s.settled), m.ask.until)
        return new Map(mine())
      }
      case "hearOut": {
        const leaving = runners.filter((r) => r.spec.account === m.ask.account && r.spec.room === m.ask.room)
        const all = new Map([...m.ask.messages, ...ledger.messages])
        await waitUntil(() => leaving.every((r) => expectedFor(all, r).every((b) => r.received.has(b))), m.ask.until)
        await host.leave(m.ask.account, m.ask.room)
        return null
      }
      case "finish": {
        for (const r of runners) r.stop()
        await waitUntil(() => [...ledger.messages.values(), ...ledger.toDevice.values()].every((s) => s.settled), m.ask.until)
        return { messages: ledger.messages, toDevice: ledger.toDevice }
      }
      case "drain": {
        const { messages, toDevice } = m.ask
        await waitUntil(() => runners.every((r) => caughtUp(messages, toDevice, r)), m.ask.until)
        await sleep(200) // late duplicates, if any, arrive now rather than after the count
        return { widgets: runners.map((r) => r.outcome()), timedOut: host.timedOut, redelivered: host.transport.stats().redelivered, errors, samples }
      }
    }
  }
  port.on("message", (m: ToScenarioWorker) => {
    answer(m).then(
      (result) => {
        port.postMessage({ type: "answer", id: m.id, answer: result } satisfies FromScenarioWorker)
        if (m.name === "drain") drained() // the last ask: stop once its answer is out
      },
      (error: unknown) => port.postMessage({ type: "answer", id: m.id, error: error instanceof Error ? error.message : String(error) } satisfies FromScenarioWorker)
    )
  })
  try {
    port.postMessage({ type: "ready" } satisfies FromScenarioWorker)
    await finished
  } finally {
    closeLedger()
    await host.close()
  }
}

if (!isMainThread && parentPort !== null && (workerData as Partial<ScenarioShareInput> | undefined)?.kind === "scenario-share") {
  const port = parentPort
  runScenarioShare(workerData as ScenarioShareInput, port).then(
    () => port.close(),
    (error: unknown) => {
      port.postMessage({ type: "failed", message: error instanceof Error ? error.message : String(error) } satisfies FromScenarioWorker)
      port.close()
    }
  )
}
