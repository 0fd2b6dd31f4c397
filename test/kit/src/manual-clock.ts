/**
 * A clock that never sleeps: records every wait and fires timers only when told. It has the
 * shape of the homeserver client's `Clock` (structurally, so the kit depends on no adapter).
 */
export class ManualClock {
  constructor(public t = 1_700_000_000_000) {}
  readonly sleeps: Array<number> = []
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = []
  now = () => this.t
  sleep = (ms: number) => {
    this.sleeps.push(ms)
    this.t += ms
    return Promise.resolve()
  }
  setTimer = (ms: number, fn: () => void) => {
    const timer = { at: this.t + ms, fn, live: true }
    this.timers.push(timer)
    return () => {
      timer.live = false
    }
  }
  /** Moves time on and fires the timers that fall due. */
  advance(ms: number) {
    this.t += ms
    const due = this.timers.filter((x) => x.live && x.at <= this.t)
    this.timers = this.timers.filter((x) => !due.includes(x))
    for (const x of due) x.fn()
  }
  get liveTimers() {
    return this.timers.filter((x) => x.live).length
  }
}
