import { describe, expect, it } from "vitest"
import { sleep } from "@widgethost/core"
import { createActor, createMachine } from "xstate"
import { ManualClock } from "./manual-clock.ts"

describe("ManualClock", () => {
  it("is an xstate actor clock: a chart's delayed transition fires when it advances", () => {
    const clock = new ManualClock(0)
    const actor = createActor(createMachine({ initial: "waiting", states: { waiting: { after: { 1_000: "done" } }, done: {} } }), { clock }).start()
    clock.advance(999)
    expect(actor.getSnapshot().value).toBe("waiting")
    clock.advance(1)
    expect(actor.getSnapshot().value).toBe("done")
    actor.stop()
  })

  it("sleep on it resolves when it reaches the sleep's end, not before", async () => {
    const clock = new ManualClock(0)
    let slept = false
    const done = sleep(clock, 1_000).then(() => (slept = true))
    clock.advance(999)
    await Promise.resolve()
    expect(slept).toBe(false)
    clock.advance(1)
    await done
    expect(slept).toBe(true)
    expect(clock.liveTimers).toBe(0)
  })

  it("fires due timers in deadline order, each at its own time, including timers they set", () => {
    const clock = new ManualClock(100)
    const seen: Array<[string, number]> = []
    clock.setTimeout(() => seen.push(["late", clock.now()]), 30)
    clock.setTimeout(() => {
      seen.push(["early", clock.now()])
      clock.setTimeout(() => seen.push(["chained", clock.now()]), 5)
    }, 10)
    clock.setTimeout(() => seen.push(["same time, set later", clock.now()]), 10)
    clock.advance(50)
    expect(seen).toEqual([
      ["early", 110],
      ["same time, set later", 110],
      ["chained", 115],
      ["late", 130]
    ])
    expect(clock.now()).toBe(150)
    expect(clock.delays).toEqual([30, 10, 10, 5])
  })

  it("tells what is waiting, soonest first", () => {
    const clock = new ManualClock(0)
    clock.setTimeout(() => undefined, 300)
    const id = clock.setTimeout(() => undefined, 100)
    clock.setTimeout(() => undefined, 200)
    clock.clearTimeout(id)
    clock.advance(50)
    expect(clock.waiting()).toEqual([
      { ms: 200, dueIn: 150 },
      { ms: 300, dueIn: 250 }
    ])
  })
})
