/**
 * One clock timer for many: the sessions of an engine keep their timers (request-timeout sweeps,
 * approval timeouts, capability windows) in this queue, a binary min-heap by deadline, and only
 * the earliest deadline is armed on the clock. A thousand idle sessions then hold a thousand small
 * entries, not a thousand runtime timers with a closure each; arming and cancelling are O(log n).
 *
 * Timers with the same deadline fire in the order they were scheduled. When the clock timer fires,
 * every entry due by then fires, earliest first; entries scheduled meanwhile wait for the next arming.
 */
import type { Clock } from "@widgethost/core"

/** An entry of the queue; the queue owns `deadline`, `order` and `index`. */
export abstract class Scheduled {
  deadline = 0
  order = 0
  /** Position in the heap, or -1 when not scheduled. */
  index = -1
  abstract fire(): void
}

export class TimerQueue {
  private readonly heap: Scheduled[] = []
  private scheduledCount = 0
  /** The deadline the clock timer is armed for, and its handle. */
  private armedFor: number | undefined
  private armed: unknown
  /** Open {@link hold}s: while any is open, emptying the queue leaves the clock timer armed. */
  private holds = 0

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.heap.length
  }

  /** (Re)schedules `entry` to fire `ms` from now. */
  schedule(entry: Scheduled, ms: number): void {
    if (entry.index >= 0) this.remove(entry)
    entry.deadline = this.clock.now() + ms
    entry.order = this.scheduledCount++
    entry.index = this.heap.length
    this.heap.push(entry)
    this.up(entry.index)
    this.arm()
  }

  /** Unschedules `entry`; nothing when it is not scheduled. */
  cancel(entry: Scheduled): void {
    if (entry.index < 0) return
    this.remove(entry)
    // The clock timer stays armed for an earlier deadline: it finds nothing due and re-arms.
    if (this.heap.length === 0 && this.holds === 0) this.disarm()
  }

  /**
   * Until the matching {@link release}, a cancel that empties the queue keeps the clock timer:
   * a chart step that cancels a state's timer and arms the next one (a session leaving one
   * phase for another) then costs no clock call at all when the new deadline is later, instead
   * of a clear and a set (most of a single session's negotiation, where the queue holds one
   * timer at a time). An entry never fires early: a clock timer armed for an earlier deadline
   * finds nothing due and re-arms.
   */
  hold(): void {
    this.holds++
  }

  /** Ends a {@link hold}: the last one disarms the clock timer if the queue is empty by then. */
  release(): void {
    if (--this.holds === 0 && this.heap.length === 0) this.disarm()
  }

  private readonly onClock = (): void => {
    const due = Math.max(this.clock.now(), this.armedFor ?? 0)
    this.armedFor = undefined
    this.armed = undefined
    const heap = this.heap
    while (heap.length > 0 && heap[0]!.deadline <= due) {
      const entry = heap[0]!
      this.remove(entry)
      entry.fire()
    }
    this.arm()
  }

  private arm(): void {
    const first = this.heap[0]
    if (first === undefined || (this.armedFor !== undefined && this.armedFor <= first.deadline)) return
    this.disarm()
    this.armedFor = first.deadline
    this.armed = this.clock.setTimeout(this.onClock, Math.max(0, first.deadline - this.clock.now()))
  }

  private disarm(): void {
    if (this.armedFor === undefined) return
    this.clock.clearTimeout(this.armed)
    this.armedFor = undefined
    this.armed = undefined
  }

  private remove(entry: Scheduled): void {
    const heap = this.heap
    const at = entry.index
    const last = heap.pop()!
    entry.index = -1
    if (last === entry) return
    heap[at] = last
    last.index = at
    this.up(at)
    this.down(last.index)
  }

  private before(a: Scheduled, b: Scheduled): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.order < b.order)
  }

  private up(at: number): void {
    const heap = this.heap
    const entry = heap[at]!
    while (at > 0) {
      const parentAt = (at - 1) >> 1
      const parent = heap[parentAt]!
      if (!this.before(entry, parent)) break
      heap[at] = parent
      parent.index = at
      at = parentAt
    }
    heap[at] = entry
    entry.index = at
  }

  private down(at: number): void {
    const heap = this.heap
    const entry = heap[at]!
    const n = heap.length
    for (;;) {
      const left = 2 * at + 1
      if (left >= n) break
      const right = left + 1
      const child = right < n && this.before(heap[right]!, heap[left]!) ? right : left
      if (!this.before(heap[child]!, entry)) break
      heap[at] = heap[child]!
      heap[at]!.index = at
      at = child
    }
    heap[at] = entry
    entry.index = at
  }
}
