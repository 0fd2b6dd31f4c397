/**
 * `simulate --scenario FILE`: runs a scenario (scenario-file.ts) on the embedded homeserver behind
 * a fault proxy, one engine per account, every widget a kit widget over a real websocket, and
 * reports deliveries checked exactly once per widget, latency percentiles, errors by kind and
 * per-widget outliers (scenario-verdict.ts). This is the one-process run; `--workers N` spreads
 * the accounts over worker threads (scenario-workers.ts).
 */
import type { Scenario } from "./scenario-file.ts"
import { startScenarioHost, type ScenarioHost } from "./scenario-host.ts"
import { startScenarioServers, type ScenarioServers } from "./scenario-setup.ts"
import { runOutage, scheduleTimeline, type RunningTimeline } from "./scenario-timeline.ts"
import { caughtUp, expectedFor, scenarioReportOf, type OutageSeen, type ScenarioReport } from "./scenario-verdict.ts"
import { countingLedger, type ScenarioWidgetRunner } from "./scenario-widget.ts"
import { sharedNow } from "./shared-clock.ts"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const runScenario = async (scenario: Scenario): Promise<ScenarioReport> => {
  const { ledger, errors, samples, close: closeLedger } = countingLedger()
  let servers: ScenarioServers | undefined
  let host: ScenarioHost | undefined
  let timeline: RunningTimeline | undefined
  const outages: Array<OutageSeen> = []
  try {
    servers = await startScenarioServers(scenario)
    const proxy = servers.proxy
    host = await startScenarioHost(scenario, {
      baseUrl: proxy.baseUrl,
      accounts: servers.accounts,
      roomIds: servers.roomIds,
      userIds: new Map(servers.accounts.map((a) => [a.name, a.userId])),
      ledger
    })
    const h = host
    const runners = [...h.runners.values()]
    const heardOut = (r: ScenarioWidgetRunner) => expectedFor(ledger.messages, r).every((b) => r.received.has(b))
    /** Every send this widget should hear has settled (a send still in flight may yet count). */
    const settledFor = (r: ScenarioWidgetRunner) => [...ledger.messages.values()].every((m) => m.settled || m.room !== r.spec.room || m.startedAt >= r.stopAt)

    // ---- the timeline, against one clock; the senders run meanwhile.
    const t0 = sharedNow()
    timeline = scheduleTimeline(
      scenario.timeline ?? [],
      async (step) => {
        if ("join" in step) await h.join(step.join.account, step.join.room)
        else if ("leave" in step) {
          // Leaving widgets stop, hear out what was sent before (up to 5 s), then go.
          const leaving = h.stopWidgets(step.leave.account, step.leave.room)
          const until = sharedNow() + 5_000
          while (!leaving.every((r) => settledFor(r) && heardOut(r)) && sharedNow() < until) await sleep(20)
          await h.leave(step.leave.account, step.leave.room)
        } else if ("reconnect" in step) await h.reconnect(step.reconnect)
        else outages.push(await runOutage(proxy, step.outage))
      },
      (detail) => ledger.error("timelineStep", detail)
    )
    await sleep(scenario.durationSeconds * 1000)
    await timeline.done
    for (const r of runners) r.stop()

    // ---- drain: every confirmed message should reach every widget that was listening.
    const deadline = sharedNow() + 10_000
    while (!runners.every((r) => caughtUp(ledger.messages, ledger.toDevice, r)) && sharedNow() < deadline) await sleep(20)
    await sleep(200) // late duplicates, if any, arrive now rather than after the count
    return scenarioReportOf({
      t0,
      end: sharedNow(),
      messages: ledger.messages,
      toDevice: ledger.toDevice,
      widgets: runners,
      timedOut: h.timedOut,
      outages,
      redelivered: h.transport.stats().redelivered,
      errors,
      samples
    })
  } finally {
    closeLedger()
    timeline?.cancel()
    await host?.close()
    await servers?.close()
  }
}
