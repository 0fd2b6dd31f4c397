import type { RoomEvent } from "@widgethost/core"
import { type DecryptOutcome, isObject, type RawEvent, type UndecryptableReport } from "./crypto.ts"
import { type Clock, realClock, setTimer } from "@widgethost/core"

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

interface Entry {
  readonly raw: RawEvent
  /** When it first failed to decrypt (the hold clock), or undefined until then. */
  heldSince: number | undefined
  /** The key generation it was last tried at, so a retry happens only when new keys came. */
  triedAt: number
  sessionId: string
}

/** Held events, as saved beside the sync token so a restart neither loses nor repeats them. */
export interface TimelineState {
  readonly rooms: Readonly<Record<string, ReadonlyArray<{ readonly raw: RawEvent }>>>
  readonly late: ReadonlyArray<{ readonly roomId: string; readonly raw: RawEvent }>
}

export interface TimelineStats {
  delivered: number
  decrypted: number
  /** Delivered after their hold bound expired, when their key finally came. */
  lateDelivered: number
  /** Reports of `held-too-long`, `failed` and `evicted`. */
  undecryptable: number
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
 * @example
 * const timeline = new DecryptingTimeline(e2ee, (event) => route(event), { onUndecryptable: log })
 * await timeline.push("!room:example.org", syncTimelineEvents)
 */
export class DecryptingTimeline {
  readonly stats: TimelineStats = { delivered: 0, decrypted: 0, lateDelivered: 0, undecryptable: 0 }
  private readonly rooms = new Map<string, Array<Entry>>()
  private late: Array<{ readonly roomId: string; readonly entry: Entry }> = []
  private keyGeneration = 0
  private chain: Promise<void> = Promise.resolve()
  private cancelTimer: (() => void) | undefined
  private readonly maxHoldMs: number
  private readonly maxHeldBehind: number
  private readonly maxLate: number
  private readonly clock: Clock
  private readonly onUndecryptable: ((report: UndecryptableReport) => void) | undefined
  private readonly unsubscribe: () => void

  constructor(
    private readonly decrypter: RoomDecrypter,
    private readonly deliver: (event: RoomEvent, late: boolean) => void,
    options: HoldOptions & { readonly clock?: Clock; readonly onUndecryptable?: (report: UndecryptableReport) => void } = {}
  ) {
    this.maxHoldMs = options.maxHoldMs ?? 10_000
    this.maxHeldBehind = options.maxHeldBehind ?? 100
    this.maxLate = options.maxLate ?? 1000
    this.clock = options.clock ?? realClock
    this.onUndecryptable = options.onUndecryptable
    this.unsubscribe = decrypter.onRoomKeys((keys) => void this.keysArrived(keys))
  }

  /** Appends a room's new timeline events (oldest first) and delivers what can be. */
  push(roomId: string, events: ReadonlyArray<RawEvent>): Promise<void> {
    return this.serial(async () => {
      const queue = this.rooms.get(roomId) ?? []
      for (const raw of events) queue.push({ raw, heldSince: undefined, triedAt: -1, sessionId: "" })
      this.rooms.set(roomId, queue)
      await this.drain(roomId)
    })
  }

  /** Retries what waits on these keys (wired to the machine's room-key callback). */
  keysArrived(keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>): Promise<void> {
    this.keyGeneration += 1
    return this.serial(async () => {
      const rooms = new Set(keys.map((k) => k.roomId))
      for (const roomId of rooms) if (this.rooms.has(roomId)) await this.drain(roomId)
      const sessions = new Set(keys.map((k) => `${k.roomId}|${k.sessionId}`))
      const waiting = this.late.filter((l) => sessions.has(`${l.roomId}|${l.entry.sessionId}`))
      for (const l of waiting) {
        const outcome = await this.decrypter.decryptRoomEvent(l.roomId, l.entry.raw)
        if (outcome._tag === "Pending") continue
        this.late = this.late.filter((x) => x !== l)
        if (outcome._tag === "Failed") this.report(l.roomId, l.entry.raw, "failed", outcome.reason)
        else {
          this.stats.lateDelivered += 1
          this.emit(outcome, true)
        }
      }
    })
  }

  /** Applies the time bound now (also runs on its own timer). */
  expire(): Promise<void> {
    return this.serial(async () => {
      for (const roomId of Array.from(this.rooms.keys())) await this.drain(roomId)
    })
  }

  /** Events still waiting, in a form that survives a restart. */
  state(): TimelineState {
    const rooms: Record<string, Array<{ raw: RawEvent }>> = {}
    for (const [roomId, queue] of this.rooms) if (queue.length > 0) rooms[roomId] = queue.map((e) => ({ raw: e.raw }))
    return { rooms, late: this.late.map((l) => ({ roomId: l.roomId, raw: l.entry.raw })) }
  }

  /**
   * Re-adopts saved waiting events (before any new push) and tries them again. Their hold clock
   * starts afresh: keys cannot arrive while the process is down, so downtime does not count.
   */
  restore(state: TimelineState): Promise<void> {
    return this.serial(async () => {
      for (const [roomId, entries] of Object.entries(state.rooms))
        this.rooms.set(
          roomId,
          entries.map((e) => ({ raw: e.raw, heldSince: undefined, triedAt: -1, sessionId: "" }))
        )
      this.late = state.late.map((l) => ({ roomId: l.roomId, entry: { raw: l.raw, heldSince: undefined, triedAt: -1, sessionId: sessionIdOf(l.raw) } }))
      for (const roomId of Array.from(this.rooms.keys())) await this.drain(roomId)
    })
  }

  /** Number of events waiting (held heads and those behind them). */
  get waiting(): number {
    let n = 0
    for (const q of this.rooms.values()) n += q.length
    return n
  }

  /** Resolves when everything queued so far has been processed. */
  idle(): Promise<void> {
    return this.serial(async () => undefined)
  }

  close(): void {
    this.unsubscribe()
    this.cancelTimer?.()
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn)
    this.chain = next.catch(() => undefined)
    return next
  }

  private async drain(roomId: string): Promise<void> {
    const queue = this.rooms.get(roomId)
    if (queue === undefined) return
    while (queue.length > 0) {
      const head = queue[0]!
      if (head.triedAt !== this.keyGeneration || head.heldSince === undefined) {
        const generation = this.keyGeneration
        const outcome = await this.decrypter.decryptRoomEvent(roomId, head.raw)
        if (outcome._tag !== "Pending") {
          queue.shift()
          if (outcome._tag === "Failed") this.report(roomId, head.raw, "failed", outcome.reason)
          else this.emit(outcome)
          continue
        }
        head.triedAt = generation
        head.sessionId = outcome.sessionId
        head.heldSince ??= this.clock.now()
      }
      const overTime = this.clock.now() - (head.heldSince ?? 0) >= this.maxHoldMs
      const overCount = queue.length - 1 > this.maxHeldBehind
      if (!overTime && !overCount) break
      queue.shift()
      this.report(roomId, head.raw, "held-too-long", overTime ? `no room key after ${this.maxHoldMs} ms` : `more than ${this.maxHeldBehind} later events waiting`)
      this.late.push({ roomId, entry: head })
      while (this.late.length > this.maxLate) {
        const dropped = this.late.shift()
        if (dropped !== undefined) this.report(dropped.roomId, dropped.entry.raw, "evicted", "late set full")
      }
    }
    if (queue.length === 0) this.rooms.delete(roomId)
    this.armTimer()
  }

  private armTimer(): void {
    this.cancelTimer?.()
    this.cancelTimer = undefined
    let earliest = Infinity
    for (const q of this.rooms.values()) {
      const since = q[0]?.heldSince
      if (since !== undefined) earliest = Math.min(earliest, since + this.maxHoldMs)
    }
    if (earliest === Infinity) return
    this.cancelTimer = setTimer(this.clock, Math.max(0, earliest - this.clock.now()), () => {
      this.cancelTimer = undefined
      void this.expire()
    })
  }

  private emit(outcome: Extract<DecryptOutcome, { _tag: "Clear" | "Decrypted" }>, late = false): void {
    if (outcome._tag === "Decrypted") this.stats.decrypted += 1
    this.stats.delivered += 1
    this.deliver(outcome.event, late)
  }

  private report(roomId: string, raw: RawEvent, kind: UndecryptableReport["kind"], reason: string): void {
    this.stats.undecryptable += 1
    this.onUndecryptable?.({ roomId, eventId: typeof raw["event_id"] === "string" ? raw["event_id"] : "", kind, reason })
  }
}

const sessionIdOf = (raw: RawEvent): string => {
  const content = raw["content"]
  return isObject(content) && typeof content["session_id"] === "string" ? content["session_id"] : ""
}
