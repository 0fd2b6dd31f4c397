import type { JsonObject } from "./decode.ts"
import type { StoredEvent, Txn } from "./records.ts"

/**
 * One room: its timeline in stream order and indexes that answer "what was true at stream
 * position p" (state, membership, power levels). Every read the server serves is "as of" some
 * position: `/sync` reads as of the last durable position, so an event still waiting for its
 * fsync is never handed out with a token that a crash could invalidate.
 */
export interface Entry {
  readonly pos: number
  /** Replaced (never mutated) when redacted. */
  event: StoredEvent
  /** The state event this one replaced, for `unsigned.prev_content` / `replaces_state`. */
  readonly replaces?: Entry
  redactedBy?: Entry
  readonly txn?: Txn
}

export type Membership = "join" | "invite" | "leave" | "ban" | "knock"

const MEMBERSHIPS: ReadonlyArray<string> = ["join", "invite", "leave", "ban", "knock"]

interface MembershipChange {
  readonly pos: number
  readonly membership: Membership
  readonly entry: Entry
}

export const stateKeyOf = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`

export class Room {
  readonly timeline: Array<Entry> = []
  readonly byId = new Map<string, Entry>()
  readonly current = new Map<string, Entry>()
  private readonly stateHistory = new Map<string, Array<Entry>>()
  private readonly memberHistory = new Map<string, Array<MembershipChange>>()

  constructor(readonly id: string) {}

  get version(): string {
    const v = this.current.get(stateKeyOf("m.room.create", ""))?.event.content.room_version
    return typeof v === "string" ? v : "1"
  }

  get creator(): string {
    const create = this.current.get(stateKeyOf("m.room.create", ""))?.event
    const c = create?.content.creator
    return typeof c === "string" ? c : (create?.sender ?? "")
  }

  get lastPos(): number {
    return this.timeline.at(-1)?.pos ?? 0
  }

  /** Appends an event that the store has already authorized and positioned. */
  append(entry: Entry): void {
    this.timeline.push(entry)
    this.byId.set(entry.event.event_id, entry)
    const { type, state_key } = entry.event
    if (state_key === undefined) return
    const key = stateKeyOf(type, state_key)
    this.current.set(key, entry)
    const history = this.stateHistory.get(key)
    if (history === undefined) this.stateHistory.set(key, [entry])
    else history.push(entry)
    if (type === "m.room.member") {
      const raw = entry.event.content.membership
      const membership = (MEMBERSHIPS.includes(raw as string) ? raw : "leave") as Membership
      const changes = this.memberHistory.get(state_key)
      const change = { pos: entry.pos, membership, entry }
      if (changes === undefined) this.memberHistory.set(state_key, [change])
      else changes.push(change)
    }
  }

  /** State as of position `pos` (after applying every event at or before it). */
  stateAt(pos: number): Map<string, Entry> {
    if (pos >= this.lastPos) return this.current
    const state = new Map<string, Entry>()
    for (const [key, history] of this.stateHistory) {
      const e = lastAtOrBefore(history, pos, (x) => x.pos)
      if (e !== undefined) state.set(key, e)
    }
    return state
  }

  stateEvent(type: string, stateKey: string, pos = Infinity): Entry | undefined {
    const history = this.stateHistory.get(stateKeyOf(type, stateKey))
    return history === undefined ? undefined : lastAtOrBefore(history, pos, (x) => x.pos)
  }

  membershipAt(userId: string, pos = Infinity): Membership | undefined {
    return this.membershipChangeAt(userId, pos)?.membership
  }

  membershipChangeAt(userId: string, pos = Infinity): MembershipChange | undefined {
    const changes = this.memberHistory.get(userId)
    return changes === undefined ? undefined : lastAtOrBefore(changes, pos, (x) => x.pos)
  }

  /** Users who ever had a member event here. */
  knownUsers(): Iterable<string> {
    return this.memberHistory.keys()
  }

  membersAt(pos: number, membership: Membership): Array<string> {
    const out: Array<string> = []
    for (const userId of this.memberHistory.keys()) if (this.membershipAt(userId, pos) === membership) out.push(userId)
    return out
  }

  /** Did the user join at any position after `pos`? (The `shared` history visibility rule.) */
  joinedAfter(userId: string, pos: number): boolean {
    const changes = this.memberHistory.get(userId) ?? []
    return changes.some((c) => c.pos > pos && c.membership === "join")
  }

  powerLevelsAt(pos = Infinity): PowerLevels {
    const content = this.stateEvent("m.room.power_levels", "", pos)?.event.content
    if (content === undefined) return powerLevelsOf(undefined, this.creator)
    // Read once per power-levels event, not once per send: a stored event's content is never
    // changed in place (a redaction stores a new event object), so its reading stays true.
    let read = readLevels.get(content)
    if (read === undefined) {
      read = powerLevelsOf(content, this.creator)
      readLevels.set(content, read)
    }
    return read
  }

  joinRuleAt(pos = Infinity): string {
    const r = this.stateEvent("m.room.join_rules", "", pos)?.event.content.join_rule
    return typeof r === "string" ? r : "invite"
  }

  historyVisibilityAt(pos: number): string {
    const v = this.stateEvent("m.room.history_visibility", "", pos)?.event.content.history_visibility
    return typeof v === "string" ? v : "shared"
  }

  /**
   * The spec's history visibility algorithm: may `userId` see this event? A user always sees
   * their own membership events (as Synapse does), or a user who rejects an invite would never
   * see the room go.
   */
  canSee(userId: string, entry: Entry): boolean {
    if (entry.event.type === "m.room.member" && entry.event.state_key === userId) return true
    const visibility = this.historyVisibilityAt(entry.pos - 1)
    if (visibility === "world_readable") return true
    const membership = this.membershipAt(userId, entry.pos)
    if (membership === "join") return true
    if (visibility === "invited" && membership === "invite") return true
    if (visibility === "shared") return this.joinedAfter(userId, entry.pos)
    return false
  }

  /** Index of the first timeline entry whose position is greater than `pos`. */
  indexAfter(pos: number): number {
    let lo = 0
    let hi = this.timeline.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.timeline[mid]!.pos <= pos) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const lastAtOrBefore = <A>(sorted: ReadonlyArray<A>, pos: number, posOf: (a: A) => number): A | undefined => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (posOf(sorted[mid]!) <= pos) lo = mid + 1
    else hi = mid
  }
  return lo === 0 ? undefined : sorted[lo - 1]
}

export interface PowerLevels {
  readonly users: Readonly<Record<string, number>>
  readonly usersDefault: number
  readonly events: Readonly<Record<string, number>>
  readonly eventsDefault: number
  readonly stateDefault: number
  readonly ban: number
  readonly kick: number
  readonly redact: number
  readonly invite: number
}

/** `powerLevelsOf` of each stored `m.room.power_levels` content (the creator does not enter into it then). */
const readLevels = new WeakMap<JsonObject, PowerLevels>()

/** Power levels tolerate the integer-in-a-string values old clients wrote. */
const level = (value: unknown, fallback: number): number => {
  if (typeof value === "number" && Number.isInteger(value)) return value
  if (typeof value === "string" && /^[+-]?\d+$/.test(value.trim())) return Number(value)
  return fallback
}

const levels = (value: unknown): Record<string, number> => {
  const out: Record<string, number> = {}
  if (typeof value === "object" && value !== null && !Array.isArray(value))
    for (const [k, v] of Object.entries(value)) {
      const n = level(v, NaN)
      if (!Number.isNaN(n)) out[k] = n
    }
  return out
}

/**
 * Reads `m.room.power_levels` content with the spec's defaults. Without the event at all the
 * creator has 100, everyone else 0, and state needs 0 (the auth rules' "no power levels" case).
 */
export const powerLevelsOf = (content: JsonObject | undefined, creator: string): PowerLevels =>
  content === undefined
    ? { users: { [creator]: 100 }, usersDefault: 0, events: {}, eventsDefault: 0, stateDefault: 0, ban: 50, kick: 50, redact: 50, invite: 0 }
    : {
        users: levels(content.users),
        usersDefault: level(content.users_default, 0),
        events: levels(content.events),
        eventsDefault: level(content.events_default, 0),
        stateDefault: level(content.state_default, 50),
        ban: level(content.ban, 50),
        kick: level(content.kick, 50),
        redact: level(content.redact, 50),
        invite: level(content.invite, 0)
      }

export const userLevel = (pl: PowerLevels, userId: string): number => pl.users[userId] ?? pl.usersDefault

export const eventLevel = (pl: PowerLevels, type: string, isState: boolean): number =>
  pl.events[type] ?? (isState ? pl.stateDefault : pl.eventsDefault)
