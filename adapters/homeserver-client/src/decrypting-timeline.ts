import type { RoomEvent } from "@widgethost/core"
import type { DecryptOutcome, RawEvent, UndecryptableReport } from "./crypto.ts"
import { type Clock, realClock, setTimer } from "@widgethost/core"
import {
  initialTimeline,
  isSettled,
  savedTimeline,
  stepTimeline,
  type TimelineConfig,
  type TimelineEffect,
  type TimelineEvent,
  type TimelineMachineState,
  type TimelineState,
  waitingCount
} from "./timeline-machine.ts"

export type { TimelineState } from "./timeline-machine.ts"

/** What {@link DecryptingTimeline} needs of {@link E2ee}. */
export interface RoomDecrypter {
  readonly decryptRoomEvent: (roomId: string, raw: RawEvent) => Promise<DecryptOutcome>
  readonly onRoomKeys: (listener: (keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>) => void) => () => void
}

export interface HoldOptions {
  /** How long an undecryptable event may hold up its room's later events. Default 10 s. */
  readonly maxHoldMs?: number
  /** How many later events of its room it may hold up. Default 100. */
  readonly maxHeldBehind?: number
  /** Events that went past their hold bound are kept this many (oldest dropped) for late keys. Default 1000. */
  readonly maxLate?: number
}

export interface TimelineStats {
  delivered: number
  decrypted: number
  /** Delivered after their hold bound expired, when their key finally came. */
  lateDelivered: number
  /** Reports of `held-too-long`, `failed` and `evicted`. */
  undecryptable: number
}

interface Waiter {
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
  /** The first error while this waiter waited: its operation rejects with it. */
  failure?: { readonly error: unknown }
}

/**
 * Each room's timeline in order, decrypted: the only path by which room events reach widgets.
 *
 * Ordering choice: an event whose room key is missing holds back the later events of its room
 * (head-of-line), for at most `maxHoldMs` and at most `maxHeldBehind` later events. Keys usually
 * arrive in the same or the next sync, so this keeps the widget's view in order in the common
 * case. When a bound is hit the event is reported (`held-too-long`), the room moves on, and the
 * event waits in a bounded late set: if its key still comes it is delivered then, late and out of
 * order but exactly once. An event that can never decrypt is reported (`failed`), never delivered.
 * Clear events of other rooms are never held up. `deliver` is told which events come late (out
 * of timeline order), so a reader of positions can keep to the in-order ones.
 *
 * The policy is the pure machine of timeline-machine.ts; this class only carries out its effects
 * (decryptions, deliveries, reports, the hold timer) and feeds the answers back.
 *
 * @example
 * const timeline = new DecryptingTimeline(e2ee, (event) => route(event), { onUndecryptable: log })
 * await timeline.push("!room:example.org", syncTimelineEvents)
 */
export class DecryptingTimeline {
  readonly stats: TimelineStats = { delivered: 0, decrypted: 0, lateDelivered: 0, undecryptable: 0 }
  private machine: TimelineMachineState = initialTimeline
  private readonly config: TimelineConfig
  private readonly inbox: Array<TimelineEvent> = []
  private stepping = false
  private waiters: Array<Waiter> = []
  private cancelTimer: (() => void) | undefined
  /** Counts armings and cancellations, so a timer knows whether it is still the armed one. */
  private timerArmings = 0
  private readonly clock: Clock
  private readonly onUndecryptable: ((report: UndecryptableReport) => void) | undefined
  private readonly unsubscribe: () => void

  constructor(
    private readonly decrypter: RoomDecrypter,
    private readonly deliver: (event: RoomEvent, late: boolean) => void,
    options: HoldOptions & { readonly clock?: Clock; readonly onUndecryptable?: (report: UndecryptableReport) => void } = {}
  ) {
    this.config = { maxHoldMs: options.maxHoldMs ?? 10_000, maxHeldBehind: options.maxHeldBehind ?? 100, maxLate: options.maxLate ?? 1000 }
    this.clock = options.clock ?? realClock
    this.onUndecryptable = options.onUndecryptable
    this.unsubscribe = decrypter.onRoomKeys((keys) => this.send({ _tag: "KeysArrived", now: this.clock.now(), keys }))
  }

  /** Appends a room's new timeline events (oldest first); resolves when what can be is delivered. */
  push(roomId: string, events: ReadonlyArray<RawEvent>): Promise<void> {
    return this.operate({ _tag: "Pushed", now: this.clock.now(), roomId, events })
  }

  /** Retries what waits on these keys (wired to the machine's room-key callback). */
  keysArrived(keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>): Promise<void> {
    return this.operate({ _tag: "KeysArrived", now: this.clock.now(), keys })
  }

  /** Applies the time bound now (also runs on its own timer). */
  expire(): Promise<void> {
    return this.operate({ _tag: "Expire", now: this.clock.now() })
  }

  /** Events still waiting, in a form that survives a restart. */
  state(): TimelineState {
    return savedTimeline(this.machine)
  }

  /**
   * Re-adopts saved waiting events (before any new push) and tries them again. Their hold clock
   * starts afresh: keys cannot arrive while the process is down, so downtime does not count.
   */
  restore(state: TimelineState): Promise<void> {
    return this.operate({ _tag: "Restored", now: this.clock.now(), saved: state })
  }

  /** Number of events waiting (held heads and those behind them). */
  get waiting(): number {
    return waitingCount(this.machine)
  }

  /** Resolves when everything queued so far has been processed. */
  idle(): Promise<void> {
    const done = this.waitForSettled()
    this.settleWaiters()
    return done
  }

  close(): void {
    this.unsubscribe()
    this.send({ _tag: "Closed", now: this.clock.now() })
  }

  private operate(event: TimelineEvent): Promise<void> {
    const done = this.waitForSettled()
    this.send(event)
    return done
  }

  private waitForSettled(): Promise<void> {
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /**
   * Steps the machine through the event and whatever its effects send back synchronously (a
   * callback may push, a clock may fire): one step at a time, in order.
   */
  private send(event: TimelineEvent): void {
    this.inbox.push(event)
    if (this.stepping) return
    this.stepping = true
    try {
      for (let next = this.inbox.shift(); next !== undefined; next = this.inbox.shift()) {
        const step = stepTimeline(this.machine, next, this.config)
        this.machine = step.state
        for (const effect of step.effects) this.carryOut(effect)
      }
    } finally {
      this.stepping = false
    }
    this.settleWaiters()
  }

  private carryOut(effect: TimelineEffect): void {
    switch (effect._tag) {
      case "Decrypt": {
        const { seq, roomId, raw } = effect
        new Promise<DecryptOutcome>((resolve) => resolve(this.decrypter.decryptRoomEvent(roomId, raw))).then(
          (outcome) => this.send({ _tag: "Outcome", now: this.clock.now(), seq, outcome }),
          (error: unknown) => {
            this.fail(error)
            this.send({ _tag: "DecryptThrew", now: this.clock.now(), seq })
          }
        )
        return
      }
      case "Deliver":
        this.stats.delivered += 1
        if (effect.decrypted) this.stats.decrypted += 1
        if (effect.late) this.stats.lateDelivered += 1
        return this.guarded(() => this.deliver(effect.event, effect.late))
      case "Report":
        this.stats.undecryptable += 1
        return this.guarded(() => this.onUndecryptable?.(effect.report))
      case "ArmTimer": {
        const armed = ++this.timerArmings
        this.cancelTimer = setTimer(this.clock, effect.delayMs, () => {
          // Only the timer armed last speaks: one cancelled but already due stays silent.
          if (armed !== this.timerArmings) return
          this.cancelTimer = undefined
          this.timerArmings += 1
          this.send({ _tag: "TimerFired", now: this.clock.now() })
        })
        return
      }
      case "CancelTimer":
        this.cancelTimer?.()
        this.cancelTimer = undefined
        this.timerArmings += 1
        return
    }
  }

  /** A callback that throws fails the operations waiting now; the timeline itself goes on. */
  private guarded(fn: () => void): void {
    try {
      fn()
    } catch (error) {
      this.fail(error)
    }
  }

  private fail(error: unknown): void {
    for (const w of this.waiters) w.failure ??= { error }
  }

  private settleWaiters(): void {
    if (this.stepping || !isSettled(this.machine)) return
    for (const w of this.waiters.splice(0)) {
      if (w.failure === undefined) w.resolve()
      else w.reject(w.failure.error)
    }
  }
}
