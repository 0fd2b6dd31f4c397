import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { SimulatedClock } from "xstate"
import { Scheduled, TimerQueue } from "./timer-queue.ts"

class Probe extends Scheduled {
  constructor(
    readonly name: number,
    private readonly log: Array<{ name: number; at: number }>,
    private readonly clock: SimulatedClock
  ) {
    super()
  }
  fire(): void {
    this.log.push({ name: this.name, at: this.clock.now() })
  }
}

/** What one timer per entry on the clock would do: fire at its deadline, ties in scheduling order. */
type Op = { readonly _tag: "schedule"; readonly timer: number; readonly ms: number } | { readonly _tag: "cancel"; readonly timer: number } | { readonly _tag: "advance"; readonly ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ _tag: fc.constant("schedule" as const), timer: fc.nat(5), ms: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ _tag: fc.constant("cancel" as const), timer: fc.nat(5) }),
  fc.record({ _tag: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 60 }) })
)

describe("timer queue", () => {
  it("fires every timer at its deadline, in deadline then scheduling order, like one clock timer each", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const clock = new SimulatedClock()
        const queue = new TimerQueue(clock)
        const fired: Array<{ name: number; at: number }> = []
        const probes = Array.from({ length: 6 }, (_, i) => new Probe(i, fired, clock))
        // The oracle: a list of live timers with deadlines and scheduling order.
        const live = new Map<number, { deadline: number; order: number }>()
        const expected: Array<{ name: number; at: number }> = []
        let order = 0
        const advanceOracle = (to: number) => {
          for (;;) {
            const next = [...live].filter(([, t]) => t.deadline <= to).sort(([, a], [, b]) => a.deadline - b.deadline || a.order - b.order)[0]
            if (next === undefined) return
            live.delete(next[0])
            expected.push({ name: next[0], at: next[1].deadline })
          }
        }
        for (const o of ops) {
          if (o._tag === "schedule") {
            queue.schedule(probes[o.timer]!, o.ms)
            live.set(o.timer, { deadline: clock.now() + o.ms, order: order++ })
          } else if (o._tag === "cancel") {
            queue.cancel(probes[o.timer]!)
            live.delete(o.timer)
          } else {
            // Step a millisecond at a time so that each firing is seen at its own time.
            for (let i = 0; i < o.ms; i++) {
              clock.increment(1)
              advanceOracle(clock.now())
            }
          }
        }
        expect(fired).toEqual(expected)
        expect(queue.size).toBe(live.size)
        // One clock timer at most, whatever the number of entries.
        expect((clock as unknown as { timeouts: Map<unknown, unknown> }).timeouts.size).toBe(live.size > 0 ? 1 : 0)
      }),
      { numRuns: 1_000 }
    )
  })

  it("fires what a late clock made due all at once, earliest first", () => {
    const clock = new SimulatedClock()
    const queue = new TimerQueue(clock)
    const fired: Array<{ name: number; at: number }> = []
    const [a, b, c] = [0, 1, 2].map((i) => new Probe(i, fired, clock))
    queue.schedule(c!, 30)
    queue.schedule(a!, 10)
    queue.schedule(b!, 20)
    clock.increment(100)
    expect(fired.map((f) => f.name)).toEqual([0, 1, 2])
    expect(queue.size).toBe(0)
  })

  it("keeps its clock timer through a held cancel and re-arm, and fires nothing early", () => {
    const clock = new SimulatedClock()
    const timeouts = (clock as unknown as { timeouts: Map<unknown, unknown> }).timeouts
    let armed = 0
    const setTimeout = clock.setTimeout.bind(clock)
    clock.setTimeout = (fn, ms) => (armed++, setTimeout(fn, ms))
    const queue = new TimerQueue(clock)
    const fired: Array<{ name: number; at: number }> = []
    const [a, b] = [0, 1].map((i) => new Probe(i, fired, clock))
    queue.schedule(a!, 10)
    // What a chart step leaving a state does: cancel its timer, arm the next state's.
    queue.hold()
    queue.cancel(a!)
    queue.schedule(b!, 50)
    queue.release()
    expect(armed).toBe(1)
    expect(timeouts.size).toBe(1)
    clock.increment(10) // the clock timer armed for a's deadline: nothing due, re-armed for b's
    expect(fired).toEqual([])
    expect(timeouts.size).toBe(1)
    clock.increment(40)
    expect(fired).toEqual([{ name: 1, at: 50 }])
    expect(timeouts.size).toBe(0)
  })

  it("disarms at the last release when a held step left the queue empty", () => {
    const clock = new SimulatedClock()
    const timeouts = (clock as unknown as { timeouts: Map<unknown, unknown> }).timeouts
    const queue = new TimerQueue(clock)
    const fired: Array<{ name: number; at: number }> = []
    const a = new Probe(0, fired, clock)
    queue.schedule(a, 10)
    queue.hold()
    queue.hold()
    queue.cancel(a)
    queue.release()
    expect(timeouts.size).toBe(1) // still held by the outer step
    queue.release()
    expect(timeouts.size).toBe(0)
    clock.increment(100)
    expect(fired).toEqual([])
  })
})
