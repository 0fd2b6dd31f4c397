/**
 * The actor clock, as xstate's `createActor(…, { clock })` takes it, plus `now` (SimulatedClock
 * has it). Everything time-based in the engine runs on one of these, so tests advance time by hand.
 */
export interface Clock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown
  clearTimeout(id: unknown): void
  now?(): number
}

export const realClock: Clock & { now(): number } = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
  now: () => Date.now()
}
