/**
 * The scenario's timeline against one clock: each step runs at its `at` second after the start,
 * whatever the others do meanwhile (a step that fails is an error of kind `timelineStep`, and the
 * run goes on). Outages are the main thread's, on the fault proxy; the other steps are carried
 * out by whoever hosts the accounts (scenario-run.ts, scenario-workers.ts).
 */
import type { FaultProxy } from "./fault-proxy.ts"
import type { ScenarioStep } from "./scenario-file.ts"
import type { OutageSeen } from "./scenario-verdict.ts"
import { sharedNow } from "./shared-clock.ts"

export interface RunningTimeline {
  /** Settles when every step has run (or failed). */
  readonly done: Promise<void>
  /** Drops the steps not yet started. */
  readonly cancel: () => void
}

export const scheduleTimeline = (
  steps: ReadonlyArray<ScenarioStep>,
  act: (step: ScenarioStep) => Promise<void>,
  onError: (detail: string) => void
): RunningTimeline => {
  const timers: Array<NodeJS.Timeout> = []
  const runs = steps.map(
    (step) =>
      new Promise<void>((resolve) => {
        timers.push(
          setTimeout(() => {
            act(step).then(resolve, (e: Error) => {
              onError(`${JSON.stringify(step)}: ${e.message}`)
              resolve()
            })
          }, step.at * 1000)
        )
      })
  )
  return { done: Promise.all(runs).then(() => undefined), cancel: () => timers.forEach(clearTimeout) }
}

/** Injects an outage on the proxy and says what it refused or held, and when it ended. */
export const runOutage = async (proxy: FaultProxy, outage: { readonly mode: "refuse" | "stall"; readonly seconds: number }): Promise<OutageSeen> => {
  const before = { ...proxy.counts }
  await proxy.outage(outage.mode, outage.seconds * 1000)
  return { mode: outage.mode, seconds: outage.seconds, refused: proxy.counts.refused - before.refused, stalled: proxy.counts.stalled - before.stalled, endAt: sharedNow() }
}
