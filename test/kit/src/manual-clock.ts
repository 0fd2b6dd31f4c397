import type { Clock } from "@widgethost/core"

interface ManualTimer {
  /** When it falls due, on the clock's time. */
  readonly at: number
  /** What it was set for (its `timeout`). */
  readonly ms: number
  /** Setting order, so timers due together fire in the order they were set (as real timers do). */
  readonly seq: number
  readonly fn: () => void
}

/** A live timer as a test sees it: what it was set for and how long until it falls due. */
export interface WaitingTimer {
  readonly ms: number
  readonly dueIn: number
}

/**
 * A `Clock` that moves only when told: `advance` moves time on and fires the timers that fall
 * due, each at its own deadline, in deadline order (and the ones they set, if those fall due
 * within the same advance). Everything on the project's one `Clock` (the engine and its timers,
 * the homeserver client's backoff and timeouts, `sleep`, `setTimer`) runs on it.
 *
 * @example
 * const clock = new ManualClock()
 * const slept = sleep(clock, 1_000)
 * clock.advance(1_000) // slept resolves
 */
export class ManualClock implements Clock {
  constructor(public t = 1_700_000_000_000) {}
  /** Every `timeout` a timer was set for, in order: what the code under test waited or armed. */
  readonly delays: Array<number> = []
  private timers: Array<ManualTimer> = []
  private nextSeq = 0

  readonly now = (): number => this.t

  readonly setTimeout = (fn: (...args: unknown[]) => void, timeout: number): unknown => {
    const ms = Math.max(0, timeout)
    const timer: ManualTimer = { at: this.t + ms, ms, seq: this.nextSeq++, fn: () => fn() }
    this.timers.push(timer)
    this.delays.push(timeout)
    return timer
  }

  readonly clearTimeout = (id: unknown): void => {
    const timer = this.timers.find((x) => x === id)
    if (timer !== undefined) this.timers = this.timers.filter((x) => x !== timer)
  }

  /** Moves time on by `ms`, firing every timer that falls due on the way, each at its deadline. */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      const next = this.soonest()
      if (next === undefined || next.at > end) break
      this.timers = this.timers.filter((x) => x !== next)
      this.t = Math.max(this.t, next.at)
      next.fn()
    }
    this.t = end
  }

  /** The timers still waiting, soonest first. */
  waiting(): ReadonlyArray<WaitingTimer> {
    return [...this.timers].sort(bySchedule).map((x) => ({ ms: x.ms, dueIn: x.at - this.t }))
  }

  get liveTimers(): number {
    return this.timers.length
  }

  private soonest(): ManualTimer | undefined {
    let best: ManualTimer | undefined
    for (const x of this.timers) if (best === undefined || bySchedule(x, best) < 0) best = x
    return best
  }
}

const bySchedule = (a: ManualTimer, b: ManualTimer) => a.at - b.at || a.seq - b.seq
