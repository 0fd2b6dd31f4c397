/**
 * The actor clock, as xstate's `createActor(…, { clock })` takes it, plus `now` (SimulatedClock
 * has it). Everything time-based in the engine runs on one of these, so tests advance time by hand.
 */
export interface Clock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown
  clearTimeout(id: unknown): void
  /** Milliseconds on any monotonic scale: the engine only ever takes differences. */
  now?(): number
}

/** The clock's `now`, or a monotonic one when it has none. */
export const nowOf = (clock: Clock): (() => number) => (clock.now === undefined ? () => performance.now() : clock.now.bind(clock))

export const realClock: Clock & { now(): number } = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  // Monotonic: every use is a duration (timer deadlines, TURN credential lifetimes), which a
  // wall-clock step (NTP, a suspended laptop's resync) must not stretch or shrink.
  now: () => performance.now()
}
