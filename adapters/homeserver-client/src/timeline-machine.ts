/**
 * The decrypting timeline's policy as a pure machine: which event of a room to try next, how long
 * an undecryptable one may hold its room up, when it gives up, and what becomes of it afterwards.
 * `stepTimeline` takes the state and one event and returns the next state with the effects the
 * shell (decrypting-timeline.ts) carries out, in order. No decrypter, clock or callbacks here: the
 * shell stamps each event with the time, runs the decryptions it is asked for and feeds their
 * outcomes back in. timeline-machine.test.ts walks random sequences against an oracle.
 *
 * The rules:
 * - A room's events are tried in order, one decryption at a time for the whole timeline. An event
 *   whose key is missing (`Pending`) becomes the room's held head: nothing behind it is delivered.
 * - A held head gives up when it has held for `maxHoldMs`, or when more than `maxHeldBehind`
 *   events wait behind it: it is reported `held-too-long` and goes to the late set, and the room
 *   moves on. The late set keeps at most `maxLate` (oldest reported `evicted` and dropped).
 * - New keys retry the held heads of their rooms and the late events of their sessions. A late
 *   event that then decrypts is delivered, marked late; one that `Failed` is reported `failed`.
 * - Every event is delivered at most once; one that can never decrypt is reported, never delivered.
 * - At most one hold timer is armed, for the earliest deadline of a room at rest; it is cancelled
 *   when that deadline goes away, and none is armed once closed.
 */
import type { RoomEvent } from "@widgethost/core"
import { type DecryptOutcome, isObject, type RawEvent, type UndecryptableReport } from "./crypto.ts"

export interface TimelineConfig {
  readonly maxHoldMs: number
  readonly maxHeldBehind: number
  readonly maxLate: number
}

/** Held events, as saved beside the sync token so a restart neither loses nor repeats them. */
export interface TimelineState {
  readonly rooms: Readonly<Record<string, ReadonlyArray<{ readonly raw: RawEvent }>>>
  readonly late: ReadonlyArray<{ readonly roomId: string; readonly raw: RawEvent }>
}

/** An event not yet delivered nor given up on. */
export interface Waiting {
  /** The machine's own number for it, so an outcome finds the event it was asked for. */
  readonly seq: number
  readonly raw: RawEvent
  /** When it first failed to decrypt (the hold clock); undefined until then. */
  readonly heldSince: number | undefined
  /** The key generation it was last tried at, so a retry happens only when new keys came. */
  readonly triedAt: number
  readonly sessionId: string
}

export interface LateEvent {
  readonly roomId: string
  readonly entry: Waiting
}

export interface TimelineMachineState {
  /** Each room's waiting events, oldest first; a room with none is absent. */
  readonly rooms: ReadonlyMap<string, ReadonlyArray<Waiting>>
  /** Events past their hold bound, oldest first, kept in case their key still comes. */
  readonly late: ReadonlyArray<LateEvent>
  /** Counts key arrivals: a held head tried before the latest one is worth trying again. */
  readonly keyGeneration: number
  readonly nextSeq: number
  /** Rooms whose head must be tried or checked against the bounds, in turn. */
  readonly dirty: ReadonlyArray<string>
  /** Late events (by seq) whose key may just have come. */
  readonly retryLate: ReadonlyArray<number>
  /** The one decryption asked for and not yet answered. */
  readonly decrypting: { readonly seq: number; readonly roomId: string; readonly from: "room" | "late"; readonly generation: number } | undefined
  /** When the armed hold timer falls due; undefined when none is armed. */
  readonly timerAt: number | undefined
  readonly closed: boolean
}

export const initialTimeline: TimelineMachineState = {
  rooms: new Map(),
  late: [],
  keyGeneration: 0,
  nextSeq: 0,
  dirty: [],
  retryLate: [],
  decrypting: undefined,
  timerAt: undefined,
  closed: false
}

/** Every event carries the time it happened at (the shell's clock). */
export type TimelineEvent =
  /** A room's new timeline events, oldest first. */
  | { readonly _tag: "Pushed"; readonly now: number; readonly roomId: string; readonly events: ReadonlyArray<RawEvent> }
  | { readonly _tag: "KeysArrived"; readonly now: number; readonly keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }> }
  /** The answer to `Decrypt` number `seq`. */
  | { readonly _tag: "Outcome"; readonly now: number; readonly seq: number; readonly outcome: DecryptOutcome }
  /** `Decrypt` number `seq` threw (see `threwAt` for what becomes of its room). */
  | { readonly _tag: "DecryptThrew"; readonly now: number; readonly seq: number }
  | { readonly _tag: "TimerFired"; readonly now: number }
  /** Apply the time bound now (the shell's `expire()`). */
  | { readonly _tag: "Expire"; readonly now: number }
  /** Saved waiting events, re-adopted with fresh hold clocks (downtime does not count). */
  | { readonly _tag: "Restored"; readonly now: number; readonly saved: TimelineState }
  | { readonly _tag: "Closed"; readonly now: number }

export type TimelineEffect =
  /** Decrypt this event and answer with `Outcome` (or `DecryptThrew`) for `seq`. */
  | { readonly _tag: "Decrypt"; readonly seq: number; readonly roomId: string; readonly raw: RawEvent }
  /** Hand the event on; `late` when it comes after later events of its room went ahead. */
  | { readonly _tag: "Deliver"; readonly event: RoomEvent; readonly late: boolean; readonly decrypted: boolean }
  | { readonly _tag: "Report"; readonly report: UndecryptableReport }
  /** Arm the hold timer (at most one is armed: a `CancelTimer` comes first when one is). */
  | { readonly _tag: "ArmTimer"; readonly delayMs: number }
  | { readonly _tag: "CancelTimer" }

export interface TimelineStep {
  readonly state: TimelineMachineState
  readonly effects: ReadonlyArray<TimelineEffect>
}

/** Nothing asked of the shell and nothing left to do: every event so far has been dealt with. */
export const isSettled = (state: TimelineMachineState): boolean => state.decrypting === undefined && state.dirty.length === 0 && state.retryLate.length === 0

/** Events waiting in rooms (held heads and those behind them). */
export const waitingCount = (state: TimelineMachineState): number => {
  let n = 0
  for (const queue of state.rooms.values()) n += queue.length
  return n
}

/** What to save for a restart. */
export const savedTimeline = (state: TimelineMachineState): TimelineState => {
  const rooms: Record<string, ReadonlyArray<{ readonly raw: RawEvent }>> = {}
  for (const [roomId, queue] of state.rooms) rooms[roomId] = queue.map((e) => ({ raw: e.raw }))
  return { rooms, late: state.late.map((l) => ({ roomId: l.roomId, raw: l.entry.raw })) }
}

export const eventIdOf = (raw: RawEvent): string => (typeof raw["event_id"] === "string" ? raw["event_id"] : "")

const sessionIdOf = (raw: RawEvent): string => {
  const content = raw["content"]
  return isObject(content) && typeof content["session_id"] === "string" ? content["session_id"] : ""
}

/** The raw events of a saved room queue (`[{ raw }]`), skipping anything else. */
const rawsOf = (entries: unknown): Array<RawEvent> => {
  const out: Array<RawEvent> = []
  if (Array.isArray(entries)) for (const e of entries as ReadonlyArray<unknown>) if (isObject(e) && isObject(e["raw"])) out.push(e["raw"])
  return out
}

export const stepTimeline = (state: TimelineMachineState, event: TimelineEvent, config: TimelineConfig): TimelineStep => {
  const effects: Array<TimelineEffect> = []
  const now = event.now
  const rooms = new Map(state.rooms)
  // Room queues are copied the first time this step changes them, so a step costs what it touches.
  const owned = new Set<string>()
  const queueOf = (roomId: string): Array<Waiting> | undefined => {
    const queue = rooms.get(roomId)
    if (queue === undefined) return undefined
    if (owned.has(roomId)) return queue as Array<Waiting>
    const copy = queue.slice()
    rooms.set(roomId, copy)
    owned.add(roomId)
    return copy
  }
  let late = state.late
  const dirty = state.dirty.slice()
  const retryLate = state.retryLate.slice()
  let { keyGeneration, nextSeq, decrypting, closed } = state

  const fresh = (raw: RawEvent, sessionId = ""): Waiting => ({ seq: nextSeq++, raw, heldSince: undefined, triedAt: -1, sessionId })
  const markDirty = (roomId: string) => {
    if (rooms.has(roomId) && !dirty.includes(roomId)) dirty.push(roomId)
  }
  const report = (roomId: string, raw: RawEvent, kind: UndecryptableReport["kind"], reason: string) =>
    effects.push({ _tag: "Report", report: { roomId, eventId: eventIdOf(raw), kind, reason } })
  const deliver = (outcome: Extract<DecryptOutcome, { _tag: "Clear" | "Decrypted" }>, isLate: boolean) =>
    effects.push({ _tag: "Deliver", event: outcome.event, late: isLate, decrypted: outcome._tag === "Decrypted" })
  const ask = (roomId: string, entry: Waiting, from: "room" | "late") => {
    decrypting = { seq: entry.seq, roomId, from, generation: keyGeneration }
    effects.push({ _tag: "Decrypt", seq: entry.seq, roomId, raw: entry.raw })
  }

  const giveUp = (roomId: string, queue: Array<Waiting>, reason: string) => {
    const head = queue.shift()!
    report(roomId, head.raw, "held-too-long", reason)
    const kept = [...late, { roomId, entry: head }]
    while (kept.length > config.maxLate) {
      const dropped = kept.shift()!
      report(dropped.roomId, dropped.entry.raw, "evicted", "late set full")
    }
    late = kept
  }

  /** Moves the room on as far as it goes; false when it waits for a decryption. */
  const drain = (roomId: string): boolean => {
    for (;;) {
      const queue = queueOf(roomId)
      const head = queue?.[0]
      if (queue === undefined || head === undefined) {
        rooms.delete(roomId)
        return true
      }
      if (head.heldSince === undefined || head.triedAt !== keyGeneration) {
        ask(roomId, head, "room")
        return false
      }
      const overTime = now - head.heldSince >= config.maxHoldMs
      const overCount = queue.length - 1 > config.maxHeldBehind
      if (!overTime && !overCount) return true
      giveUp(roomId, queue, overTime ? `no room key after ${config.maxHoldMs} ms` : `more than ${config.maxHeldBehind} later events waiting`)
    }
  }

  /** Works through the dirty rooms, then the late retries, until a decryption is needed. */
  const run = () => {
    while (decrypting === undefined) {
      const roomId = dirty[0]
      if (roomId !== undefined) {
        if (drain(roomId)) dirty.shift()
        continue
      }
      const seq = retryLate.shift()
      if (seq === undefined) return
      const waiting = late.find((l) => l.entry.seq === seq)
      if (waiting !== undefined) ask(waiting.roomId, waiting.entry, "late")
    }
  }

  const settleRoomHead = (roomId: string, seq: number, generation: number, outcome: DecryptOutcome) => {
    const queue = queueOf(roomId)
    const head = queue?.[0]
    // Restored over while it was being decrypted: the room's drain tries its new head.
    if (queue === undefined || head?.seq !== seq) return
    if (outcome._tag === "Pending") {
      queue[0] = { ...head, triedAt: generation, sessionId: outcome.sessionId, heldSince: head.heldSince ?? now }
      return
    }
    queue.shift()
    if (outcome._tag === "Failed") report(roomId, head.raw, "failed", outcome.reason)
    else deliver(outcome, false)
  }

  // Retrying at once would spin on a decrypter that keeps throwing. A head already held counts
  // as tried (its bounds still apply, new keys retry it); one never tried waits for the room's
  // next push, key or expiry.
  const threwAt = (roomId: string, seq: number, generation: number) => {
    const queue = queueOf(roomId)
    const head = queue?.[0]
    if (queue === undefined || head?.seq !== seq) return
    if (head.heldSince !== undefined) queue[0] = { ...head, triedAt: generation }
    else if (dirty.includes(roomId)) dirty.splice(dirty.indexOf(roomId), 1)
  }

  const settleLate = (seq: number, outcome: DecryptOutcome) => {
    const waiting = late.find((l) => l.entry.seq === seq)
    // Evicted while it was being decrypted: given up on for good, whatever the answer.
    if (waiting === undefined || outcome._tag === "Pending") return
    late = late.filter((l) => l !== waiting)
    if (outcome._tag === "Failed") report(waiting.roomId, waiting.entry.raw, "failed", outcome.reason)
    else deliver(outcome, true)
  }

  switch (event._tag) {
    case "Pushed": {
      if (event.events.length === 0) break
      const queue = queueOf(event.roomId) ?? []
      for (const raw of event.events) queue.push(fresh(raw))
      rooms.set(event.roomId, queue)
      owned.add(event.roomId)
      markDirty(event.roomId)
      break
    }
    case "KeysArrived": {
      keyGeneration += 1
      for (const key of event.keys) markDirty(key.roomId)
      const sessions = new Set(event.keys.map((k) => `${k.roomId}|${k.sessionId}`))
      for (const l of late) if (sessions.has(`${l.roomId}|${l.entry.sessionId}`) && !retryLate.includes(l.entry.seq)) retryLate.push(l.entry.seq)
      break
    }
    case "Outcome":
    case "DecryptThrew": {
      const asked = decrypting
      if (asked === undefined || asked.seq !== event.seq) break
      decrypting = undefined
      if (event._tag === "DecryptThrew") {
        if (asked.from === "room") threwAt(asked.roomId, asked.seq, asked.generation)
      } else if (asked.from === "room") settleRoomHead(asked.roomId, asked.seq, asked.generation, event.outcome)
      else settleLate(asked.seq, event.outcome)
      break
    }
    case "TimerFired":
    case "Expire":
      for (const roomId of rooms.keys()) markDirty(roomId)
      break
    case "Restored": {
      // The saved state is read back from a file: whatever is not an event in its place is skipped.
      const saved: unknown = event.saved
      const savedRooms = isObject(saved) && isObject(saved["rooms"]) ? saved["rooms"] : {}
      for (const [roomId, entries] of Object.entries(savedRooms)) {
        const queue = rawsOf(entries).map((raw) => fresh(raw))
        if (queue.length === 0) continue
        rooms.set(roomId, queue)
        owned.add(roomId)
        markDirty(roomId)
      }
      const restored: Array<LateEvent> = []
      for (const l of isObject(saved) && Array.isArray(saved["late"]) ? (saved["late"] as ReadonlyArray<unknown>) : [])
        if (isObject(l) && typeof l["roomId"] === "string" && isObject(l["raw"])) restored.push({ roomId: l["roomId"], entry: fresh(l["raw"], sessionIdOf(l["raw"])) })
      late = restored
      break
    }
    case "Closed":
      closed = true
      break
  }
  run()

  // The timer covers the rooms at rest; a dirty room is checked when its turn comes.
  let due: number | undefined
  if (!closed)
    for (const [roomId, queue] of rooms) {
      const since = queue[0]?.heldSince
      if (since !== undefined && !dirty.includes(roomId)) due = Math.min(due ?? Infinity, since + config.maxHoldMs)
    }
  // A timer that fired is no longer armed.
  const armed = event._tag === "TimerFired" ? undefined : state.timerAt
  if (due !== armed) {
    if (armed !== undefined) effects.push({ _tag: "CancelTimer" })
    if (due !== undefined) effects.push({ _tag: "ArmTimer", delayMs: Math.max(0, due - now) })
  }
  return { state: { rooms, late, keyGeneration, nextSeq, dirty, retryLate, decrypting, timerAt: due, closed }, effects }
}
