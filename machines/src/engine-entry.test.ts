import { describe, expect, it } from "vitest"
import { createCoreCaches, defaultLimits, realClock, type SessionConfig } from "@widgethost/core"
import { addCloseListener, closeListenersOf, Entry } from "./engine-entry.ts"
import type { EngineSession } from "./session-handle.ts"
import { SessionCharts } from "./session-charts.ts"
import { phaseOf } from "./session-machine.ts"
import { TimerQueue } from "./timer-queue.ts"

const entry = (): Entry => ({ closeListeners: undefined }) as unknown as Entry

describe("close listeners of an entry", () => {
  const a = (_reason: string) => {}
  const b = (_reason: string) => {}
  const c = (_reason: string) => {}

  it.each([
    { given: [a], remove: [], stored: "bare", want: [a] },
    { given: [a, b], remove: [], stored: "array", want: [a, b] },
    { given: [a, b, c], remove: [1], stored: "array", want: [a, c] },
    { given: [a], remove: [0], stored: "none", want: [] },
    { given: [a, b], remove: [0, 1], stored: "array", want: [] },
    { given: [a, a], remove: [1], stored: "array", want: [a] }
  ])("given $given.length, removing $remove: $stored, told $want.length", ({ given, remove, stored, want }) => {
    const e = entry()
    const removers = given.map((listener) => addCloseListener(e, listener))
    for (const at of remove) removers[at]!()
    const kind = e.closeListeners === undefined ? "none" : typeof e.closeListeners === "function" ? "bare" : "array"
    expect(kind).toBe(stored)
    expect(closeListenersOf(e)).toEqual(want)
  })

  it("a removed listener removed again changes nothing", () => {
    const e = entry()
    const removeA = addCloseListener(e, a)
    removeA()
    addCloseListener(e, b)
    removeA()
    expect(closeListenersOf(e)).toEqual([b])
  })

  it("the list told is a copy: removing during the close does not skip the next", () => {
    const e = entry()
    const told: string[] = []
    let removeB = () => {}
    addCloseListener(e, () => {
      told.push("a")
      removeB()
    })
    removeB = addCloseListener(e, () => told.push("b"))
    for (const listener of closeListenersOf(e)) listener("closed")
    expect(told).toEqual(["a", "b"])
  })
})

describe("an entry is its session's chart", () => {
  it("opened by the session charts as itself, with nothing of the engine's allocated", () => {
    const charts = new SessionCharts({ timers: new TimerQueue(realClock), outbox: [], caches: createCoreCaches(), onDelayed: () => {} })
    const config: SessionConfig = { widgetId: "w", kind: "room", waitForIframeLoad: true, policy: { rules: [] }, limits: defaultLimits }
    const created = new Entry("w#0", {} as EngineSession, () => {})
    const opened = charts.open(created, { config })
    expect(opened).toBe(created)
    expect(phaseOf(opened.base.value)).toBe("loading")
    expect(opened.context.state.config).toBe(config)
    expect([opened.client, opened.watch, opened.approvals, opened.closeListeners, opened.inbox]).toEqual([undefined, undefined, undefined, undefined, undefined])
  })
})
