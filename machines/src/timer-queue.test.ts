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
})
