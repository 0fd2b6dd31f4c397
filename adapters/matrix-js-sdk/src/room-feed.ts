/**
 * The live room events of a matrix-js-sdk client, as the engine needs them: decrypted, in
 * timeline order per room, each exactly once.
 *
 * The SDK adds an encrypted event to its timeline before its decryption finishes, so the feed
 * keeps each room's events in a queue and hands on its head once it is clear or decrypted.
 * Ordering choice (the HTTP port's, see homeserver-client's `DecryptingTimeline`): an event whose
 * key is missing holds back the later events of its room for at most `maxHoldMs` and at most
 * `maxHeldBehind` events; past a bound it is reported (`held-too-long`), the room moves on, and
 * the event waits in a bounded late set: when the SDK decrypts it after all (it retries as keys
 * arrive), it is handed on then, late and out of order, but once. Other rooms are never held up.
 * An id seen once is never handed on again (the SDK emits an event once per timeline set, and
 * again after some timeline resets).
 *
 * Cost: one queue per room with events in flight; an event handed on at once costs a set lookup
 * and an insertion in the bounded id memory.
 */
import type { RoomEvent } from "@widgethost/core"
import { decryptionState, roomEventOf, type SdkEvent } from "./sdk-event.ts"

export interface RoomFeedOptions {
  /** How long an undecryptable event may hold up its room's later events. Default 10 s. */
  readonly maxHoldMs?: number
  /** How many later events of its room it may hold up. Default 100. */
  readonly maxHeldBehind?: number
  /** Events past their hold bound kept for a late key (oldest dropped, reported `evicted`). Default 1000. */
  readonly maxLate?: number
  /** Event ids remembered to drop repeats. Default 5000. */
  readonly maxRemembered?: number
  /** An event that did not decrypt: reported, never handed on as ciphertext. */
  readonly onUndecryptable?: (report: UndecryptableEvent) => void
}

export interface UndecryptableEvent {
  readonly roomId: string
  readonly eventId: string
  /**
   * `held-too-long`: the room moved on without it (it may still come late); `evicted`: given up;
   * `redacted`: nothing left to decrypt; `no-crypto`: the client has no crypto to decrypt with.
   */
  readonly reason: "held-too-long" | "evicted" | "redacted" | "no-crypto"
  /** The SDK's reason, e.g. `MEGOLM_UNKNOWN_INBOUND_SESSION_ID`. */
  readonly code?: string
}

interface Held {
  readonly event: SdkEvent
  /** When it was first found undecryptable (the hold clock). */
  since: number | undefined
}

export class RoomFeed {
  private readonly rooms = new Map<string, Array<Held>>()
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>()
  /** Events that went past their hold bound, by id, oldest first. */
  private readonly late = new Map<string, SdkEvent>()
  /** Ids already taken in (queued, handed on or late), oldest first. */
  private readonly seen = new Set<string>()
  private readonly maxHoldMs: number
  private readonly maxHeldBehind: number
  private readonly maxLate: number
  private readonly maxRemembered: number

  constructor(
    private readonly deliver: (event: RoomEvent) => void,
    /** Starts the decryption of an event the SDK has not tried yet; false when it cannot (no crypto). */
    private readonly decrypt: (event: SdkEvent) => boolean,
    private readonly options: RoomFeedOptions = {}
  ) {
    this.maxHoldMs = options.maxHoldMs ?? 10_000
    this.maxHeldBehind = options.maxHeldBehind ?? 100
    this.maxLate = options.maxLate ?? 1_000
    this.maxRemembered = options.maxRemembered ?? 5_000
  }

  /** A live event of its room's timeline, in the order the SDK added them. Repeats are ignored. */
  push(event: SdkEvent): void {
    const id = event.getId()
    const roomId = event.getRoomId()
    if (id === undefined || roomId === undefined || this.seen.has(id)) return
    this.remember(id)
    let queue = this.rooms.get(roomId)
    if (queue === undefined) this.rooms.set(roomId, (queue = []))
    queue.push({ event, since: undefined })
    this.pump(roomId)
  }

  /** The SDK finished decrypting `event` (or failed to): whatever waited on it may go on. */
  decrypted(event: SdkEvent): void {
    const id = event.getId()
    if (id !== undefined && this.late.has(id)) {
      if (decryptionState(event) !== "ready") return
      this.late.delete(id)
      return this.handOn(event)
    }
    const roomId = event.getRoomId()
    if (roomId !== undefined && this.rooms.get(roomId)?.[0]?.event === event) this.pump(roomId)
  }

  /** Stops the hold timers; nothing more is handed on. */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    this.rooms.clear()
    this.late.clear()
  }

  /** Events held back in all rooms (an undecryptable head and those behind it). */
  get waiting(): number {
    let n = 0
    for (const queue of this.rooms.values()) n += queue.length
    return n
  }

  private pump(roomId: string): void {
    const queue = this.rooms.get(roomId)
    if (queue === undefined) return
    this.stopTimer(roomId)
    while (queue.length > 0) {
      const head = queue[0]!
      const state = decryptionState(head.event)
      if (state === "decrypting") {
        if (!head.event.shouldAttemptDecryption()) return // under way: its Decrypted event pumps again
        // Started (or even finished at once): look again. Not started: it never will be.
        if (this.decrypt(head.event) && !head.event.shouldAttemptDecryption()) continue
        queue.shift()
        this.report(head.event, "no-crypto")
        continue
      }
      if (state === "undecryptable") {
        const now = Date.now()
        head.since ??= now
        const left = head.since + this.maxHoldMs - now
        if (left > 0 && queue.length - 1 <= this.maxHeldBehind) {
          this.timers.set(
            roomId,
            setTimeout(() => this.pump(roomId), left)
          )
          return
        }
        queue.shift()
        this.report(head.event, "held-too-long")
        this.keepLate(head.event)
        continue
      }
      queue.shift()
      if (state === "never") this.report(head.event, "redacted")
      else this.handOn(head.event)
    }
    this.rooms.delete(roomId)
  }

  private handOn(event: SdkEvent): void {
    const roomEvent = roomEventOf(event)
    if (roomEvent !== undefined) this.deliver(roomEvent)
  }

  private keepLate(event: SdkEvent): void {
    this.late.set(event.getId()!, event)
    if (this.late.size <= this.maxLate) return
    const [oldestId, oldest] = this.late.entries().next().value!
    this.late.delete(oldestId)
    this.report(oldest, "evicted")
  }

  private report(event: SdkEvent, reason: UndecryptableEvent["reason"]): void {
    const code = event.decryptionFailureReason
    this.options.onUndecryptable?.({ roomId: event.getRoomId()!, eventId: event.getId()!, reason, ...(code === null ? {} : { code }) })
  }

  private remember(id: string): void {
    this.seen.add(id)
    if (this.seen.size > this.maxRemembered) this.seen.delete(this.seen.values().next().value!)
  }

  private stopTimer(roomId: string): void {
    const timer = this.timers.get(roomId)
    if (timer === undefined) return
    clearTimeout(timer)
    this.timers.delete(roomId)
  }
}
