/**
 * The simulation's plan: who sends which message, when it is due, which widgets watch TURN and
 * where each to-device message goes, as a pure function of the options and the seed.
 */
import { type SimulateOptions } from "./simulate-options.ts"



/** mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere. */
export const mulberry32 = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface PlannedMessage {
  /** 1-based; carried in `content.body` as `sim <seq>`. */
  readonly seq: number
  /** Due this many ms after the workload starts. */
  readonly atMs: number
  /** Index of the sending widget (account-major: account × widgets + widget). */
  readonly sender: number
  /** The sender also changes its state event right after. */
  readonly state: boolean
  /** The sender also sends a to-device message to this account (its `seq` among to-device messages). */
  readonly toDevice: { readonly account: number; readonly seq: number } | undefined
}

export interface Plan {
  /** Widget indices watching TURN, ascending. */
  readonly turnWatchers: ReadonlyArray<number>
  readonly messages: ReadonlyArray<PlannedMessage>
  readonly toDeviceCount: number
}

/**
 * The whole workload as data, from the options and the seed alone.
 *
 * @example planWorkload({ ...defaultSimulateOptions, until: { events: 3 } }).messages.map((m) => m.sender)
 */
export const planWorkload = (o: SimulateOptions): Plan => {
  const random = mulberry32(o.seed)
  const total = o.accounts * o.widgets
  const order = Array.from({ length: total }, (_, i) => i)
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const turnWatchers = order.slice(0, Math.round(o.turnWatchers * total)).sort((a, b) => a - b)
  const count = "events" in o.until ? o.until.events : Math.max(1, Math.floor(o.until.durationSeconds * o.rate))
  const messages: Array<PlannedMessage> = []
  let toDeviceCount = 0
  for (let seq = 1; seq <= count; seq++) {
    const sender = Math.floor(random() * total)
    const state = o.stateEvery > 0 && seq % o.stateEvery === 0
    let toDevice: PlannedMessage["toDevice"]
    if (o.toDeviceEvery > 0 && seq % o.toDeviceEvery === 0 && o.accounts > 1) {
      const own = Math.floor(sender / o.widgets)
      const other = Math.floor(random() * (o.accounts - 1))
      toDevice = { account: other >= own ? other + 1 : other, seq: ++toDeviceCount }
    }
    messages.push({ seq, atMs: ((seq - 1) * 1000) / o.rate, sender, state, toDevice })
  }
  return { turnWatchers, messages, toDeviceCount }
}
