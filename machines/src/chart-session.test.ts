import { createCoreCaches, defaultLimits, type Command, type SessionConfig } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { recordedSteps } from "./recorded-steps.ts"
import { ChartSession, SessionCharts } from "./session-charts.ts"
import { phaseOf } from "./session-machine.ts"
import { TimerQueue } from "./timer-queue.ts"

const config: SessionConfig = { widgetId: "w", kind: "room", homeRoom: "!r:x", waitForIframeLoad: true, policy: { rules: [] }, limits: defaultLimits }
const clock = { now: () => 0, setTimeout: () => 0 as unknown as ReturnType<typeof setTimeout>, clearTimeout: () => {} }

describe("a session's snapshot as a shared base and its own context", () => {
  const open = (n: number) => {
    const outbox: Command[] = []
    // Sharing the base is the recorder's doing (createEngine passes it; a lean engine may not).
    const charts = new SessionCharts({ timers: new TimerQueue(clock), outbox, caches: createCoreCaches(), recorded: recordedSteps, onDelayed: () => {} })
    const sessions = Array.from({ length: n }, (_, i) => charts.open(new ChartSession(`s${i}`), { config }))
    return { charts, sessions, outbox }
  }

  it("sessions in one configuration after the same replayed steps share their base, each with its own context", () => {
    const { charts, sessions } = open(3)
    for (const session of sessions) charts.send(session, { type: "inputs", inputs: [{ _tag: "FrameLoaded" }] })
    const [, two, three] = sessions
    expect(phaseOf(two!.base.value)).toBe("negotiating")
    expect(three!.base).toBe(two!.base)
    expect(two!.base.context).toBeUndefined()
    expect(three!.context).not.toBe(two!.context)
  })

  it("the whole snapshot reads as xstate's: this session's context, the base's configuration", () => {
    const { charts, sessions } = open(2)
    for (const session of sessions) charts.send(session, { type: "inputs", inputs: [{ _tag: "FrameLoaded" }] })
    const session = sessions[1]!
    const snapshot = session.snapshot
    expect(snapshot.context).toBe(session.context)
    expect(snapshot.value).toEqual(session.base.value)
    expect(snapshot.status).toBe("active")
    expect(snapshot.context.state.config).toBe(config)
  })
})
