import { describe, expect, it } from "vitest"
import { type Clock, realClock, setTimer, sleep } from "./clock.ts"

/** A clock whose timers fire only when `fire` is called: enough to watch what the helpers ask of it. */
const recordingClock = () => {
  const timers = new Map<number, () => void>()
  let next = 0
  const clock: Clock = {
    now: () => 0,
    setTimeout: (fn) => {
      timers.set(++next, fn)
      return next
    },
    clearTimeout: (id) => void timers.delete(id as number)
  }
  const fire = () => {
    const due = [...timers.values()]
    timers.clear()
    for (const fn of due) fn()
  }
  return { clock, timers, fire }
}

describe("sleep and setTimer over any Clock", () => {
  it("sleep resolves when its timer fires, not before", async () => {
    const { clock, timers, fire } = recordingClock()
    let slept = false
    const done = sleep(clock, 1_000).then(() => (slept = true))
    await Promise.resolve()
    expect(slept).toBe(false)
    expect(timers.size).toBe(1)
    fire()
    await done
    expect(slept).toBe(true)
  })

  it("an aborted sleep rejects with the signal's reason and cancels its timer", async () => {
    const { clock, timers } = recordingClock()
    const abort = new AbortController()
    const slept = sleep(clock, 1_000, abort.signal)
    expect(timers.size).toBe(1)
    abort.abort("stop")
    await expect(slept).rejects.toMatchObject({ message: "aborted", cause: "stop" })
    expect(timers.size).toBe(0)
  })

  it("a sleep on an already aborted signal rejects without setting a timer", async () => {
    const { clock, timers } = recordingClock()
    await expect(sleep(clock, 1_000, AbortSignal.abort("gone"))).rejects.toMatchObject({ cause: "gone" })
    expect(timers.size).toBe(0)
  })

  it("setTimer's cancel clears its timer, and is harmless after it fired", () => {
    const { clock, timers, fire } = recordingClock()
    const fired: string[] = []
    const cancelA = setTimer(clock, 10, () => fired.push("a"))
    const cancelB = setTimer(clock, 20, () => fired.push("b"))
    cancelB()
    expect(timers.size).toBe(1)
    fire()
    cancelA()
    expect(fired).toEqual(["a"])
  })

  it("the real clock reads on the epoch's scale and never goes backwards", () => {
    const a = realClock.now()
    const b = realClock.now()
    expect(b).toBeGreaterThanOrEqual(a)
    expect(Math.abs(a - Date.now())).toBeLessThan(60_000)
  })

  it("the real clock fires its timers, and clears them", async () => {
    let cleared = false
    const cancel = setTimer(realClock, 1, () => (cleared = true))
    cancel()
    const fired = await new Promise<boolean>((resolve) => setTimer(realClock, 1, () => resolve(true)))
    expect(fired).toBe(true)
    expect(cleared).toBe(false)
  })
})
