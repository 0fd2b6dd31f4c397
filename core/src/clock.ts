/**
 * Time, for the whole project: one `Clock` that the engine, its timers, the homeserver client and
 * the test kit's `ManualClock` all speak, so a test drives every timer by hand with one clock.
 *
 * Its shape is xstate's actor clock (`createActor(machine, { clock })` takes `setTimeout` and
 * `clearTimeout`) plus `now`, so any `Clock` is also an actor clock. `sleep` and `setTimer` are
 * written over it, not part of it: a clock only has to keep time and fire callbacks.
 */
export interface Clock {
  /**
   * Milliseconds on the Unix epoch's scale that never go backwards. Time is only ever taken as a
   * difference of two readings (timer deadlines, credential lifetimes, backoff), or compared with
   * a date a server sent (`Retry-After`); a wall-clock step must not stretch or shrink either.
   */
  now(): number
  /** Calls `fn` once, `timeout` ms from now; returns the id `clearTimeout` takes. */
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown
  /** Cancels a timer that has not fired; an id that fired or was cleared is ignored. */
  clearTimeout(id: unknown): void
}

/** Read once: it is constant for the process's life, and its getter adds about a fifth to a reading (Node 20). */
const timeOrigin = performance.timeOrigin

/**
 * The real clock: the runtime's timers, and `now` read from the monotonic clock anchored at the
 * process's (or page's) start time, so it is on the epoch's scale yet never jumps with an NTP
 * step or a manual change of the system time.
 */
export const realClock: Clock = {
  now: () => timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>)
}

/** Runs `fn` after `ms` on `clock`; returns the function that cancels it (a no-op once it ran). */
export const setTimer = (clock: Clock, ms: number, fn: () => void): (() => void) => {
  const id = clock.setTimeout(fn, ms)
  return () => clock.clearTimeout(id)
}

/**
 * Resolves after `ms` on `clock`. If `signal` aborts first (or already has), the timer is
 * cancelled and the promise rejects with an `Error("aborted")` whose `cause` is the signal's reason.
 */
export const sleep = (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const aborted = () => new Error("aborted", { cause: signal?.reason })
    if (signal?.aborted === true) return reject(aborted())
    const onAbort = () => {
      clock.clearTimeout(id)
      reject(aborted())
    }
    const id = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    signal?.addEventListener("abort", onAbort, { once: true })
  })
