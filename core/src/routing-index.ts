/**
 * Who may receive a room event or a to-device message, answered in work proportional to the
 * subscribers that match rather than to all of them.
 *
 * Subscribers are bucketed by (room, kind, event type), kind being state or message-like: a
 * subscriber with `m.timeline:*` sits in the any-room bucket of each type it may receive, the
 * others in the bucket of their home room and of each `m.timeline:<id>` room. The buckets settle
 * room scope, kind and type exactly; the msgtype and state-key filters are then confirmed with
 * `mayReceive` on the few candidates.
 */
import type { CoreCaches } from "./core-caches.ts"
import type { Permissions } from "./permissions.ts"

export interface RoutableEvent {
  readonly type: string
  readonly room_id: string
  readonly state_key?: string
  readonly content?: unknown
}

/**
 * What a subscriber was indexed with; its buckets follow from these (see `roomsOf`, `bucketKeys`).
 * Immutable: with the engine's caches, subscribers indexed alike share one (`entryFor`).
 */
export interface RoutingEntry {
  readonly permissions: Permissions
  readonly homeRoom: string | undefined
}

type Buckets<K> = Map<string, Set<K>>

/** The bucket key of a (kind, type) pair; the leading letter keeps the two kinds apart. */
const messageKey = (type: string) => `m${type}`
const stateKey = (type: string) => `s${type}`

/**
 * Every bucket key a subscriber with these permissions belongs to. With the engine's caches, one
 * list per permissions object: sessions with the same approvals share one (`compilePermissions`
 * with the same caches), and so one key list.
 */
const bucketKeys = (permissions: Permissions, caches: CoreCaches | undefined): ReadonlyArray<string> => {
  let keys = caches?.bucketKeys.get(permissions)
  if (keys === undefined) {
    keys = [...Array.from(permissions.receiveMessageTypes, messageKey), ...Array.from(permissions.receiveStateTypes, stateKey)]
    caches?.bucketKeys.set(permissions, keys)
  }
  return keys
}

/** The rooms a subscriber is bucketed under, or "any" for `m.timeline:*`. */
const roomsOf = ({ permissions, homeRoom }: RoutingEntry): Iterable<string> | "any" => {
  if (permissions.allRooms) return "any"
  const rooms = permissions.timelineRooms
  if (homeRoom === undefined || rooms.has(homeRoom)) return rooms
  return rooms.size === 0 ? [homeRoom] : [homeRoom, ...rooms]
}

/** Rooms per permissions object whose entries are shared; past it the oldest is forgotten (its holders keep it). */
const SHARED_ENTRY_ROOMS = 256

/** The entry for (permissions, homeRoom): with caches, one frozen entry shared by every subscriber indexed alike. */
const entryFor = (permissions: Permissions, homeRoom: string | undefined, caches: CoreCaches | undefined): RoutingEntry => {
  if (caches === undefined) return { permissions, homeRoom }
  let byRoom = caches.routingEntries.get(permissions)
  if (byRoom === undefined) caches.routingEntries.set(permissions, (byRoom = new Map<string | undefined, RoutingEntry>()))
  let entry = byRoom.get(homeRoom)
  if (entry === undefined) {
    if (byRoom.size >= SHARED_ENTRY_ROOMS) byRoom.delete(byRoom.keys().next().value)
    byRoom.set(homeRoom, (entry = Object.freeze({ permissions, homeRoom })))
  }
  return entry
}

const add = <K>(buckets: Buckets<K>, type: string, key: K): void => {
  let set = buckets.get(type)
  if (set === undefined) buckets.set(type, (set = new Set()))
  set.add(key)
}

/** Removes and drops empty sets so that churn (widgets coming and going) leaks nothing. */
const remove = <K>(buckets: Buckets<K>, type: string, key: K): void => {
  const set = buckets.get(type)
  if (set === undefined) return
  set.delete(key)
  if (set.size === 0) buckets.delete(type)
}

/**
 * An index of subscribers (widget sessions) by what they may receive. `caches` (the engine's)
 * let subscribers with the same permissions share their bucket key list, and those with the same
 * permissions and home room their entry.
 *
 * @example
 * const index = new RoutingIndex<string>(createCoreCaches())
 * index.set("w1", compilePermissions(["m.receive.event:m.reaction"]), "!home:example.org")
 * index.match({ type: "m.reaction", room_id: "!home:example.org" }) // ["w1"]
 */
export class RoutingIndex<K> {
  readonly #entries = new Map<K, RoutingEntry>()
  /** room id → bucket key → subscribers whose room scope names that room. */
  readonly #byRoom = new Map<string, Buckets<K>>()
  /** bucket key → subscribers with `m.timeline:*`. */
  readonly #anyRoom: Buckets<K> = new Map()
  /** to-device event type → subscribers. */
  readonly #toDevice: Buckets<K> = new Map()

  constructor(private readonly caches?: CoreCaches) {}

  /** Number of indexed subscribers. */
  get size(): number {
    return this.#entries.size
  }

  /** (Re)index a subscriber: its permissions and its home room (undefined when it has none yet). */
  set(key: K, permissions: Permissions, homeRoom: string | undefined): void {
    this.delete(key)
    const entry = entryFor(permissions, homeRoom, this.caches)
    const rooms = roomsOf(entry)
    const keys = bucketKeys(permissions, this.caches)
    this.#entries.set(key, entry)
    for (const type of permissions.receiveToDeviceTypes) add(this.#toDevice, type, key)
    if (keys.length === 0) return
    if (rooms === "any") {
      for (const k of keys) add(this.#anyRoom, k, key)
      return
    }
    for (const room of rooms) {
      let buckets = this.#byRoom.get(room)
      if (buckets === undefined) this.#byRoom.set(room, (buckets = new Map<string, Set<K>>()))
      for (const k of keys) add(buckets, k, key)
    }
  }

  delete(key: K): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    const { permissions } = entry
    const rooms = roomsOf(entry)
    const keys = bucketKeys(permissions, this.caches)
    for (const type of permissions.receiveToDeviceTypes) remove(this.#toDevice, type, key)
    if (rooms === "any") {
      for (const k of keys) remove(this.#anyRoom, k, key)
      return
    }
    for (const room of rooms) {
      const buckets = this.#byRoom.get(room)
      if (buckets === undefined) continue
      for (const k of keys) remove(buckets, k, key)
      if (buckets.size === 0) this.#byRoom.delete(room)
    }
  }

  /** Subscribers whose permissions AND room scope allow receiving this event; exactly the ones that may. */
  match(event: RoutableEvent): K[] {
    const out: K[] = []
    // Same test as mayReceive: a string state key makes it a state event.
    const k = typeof event.state_key === "string" ? stateKey(event.type) : messageKey(event.type)
    // The two bucket families are disjoint (a subscriber is either any-room or room-scoped).
    this.#confirm(this.#anyRoom.get(k), event, out)
    this.#confirm(this.#byRoom.get(event.room_id)?.get(k), event, out)
    return out
  }

  /** Subscribers that may receive a to-device message of this type (to-device has no room). */
  matchToDevice(type: string): K[] {
    const set = this.#toDevice.get(type)
    return set === undefined ? [] : [...set]
  }

  #confirm(candidates: ReadonlySet<K> | undefined, event: RoutableEvent, out: K[]): void {
    if (candidates === undefined) return
    // Sessions approved alike share one permissions object (`compilePermissions` with the engine's
    // caches): each object is asked once per event, not once per session. The answers are kept
    // in a map only once a second object turns up (usually all candidates share one).
    let asked: Permissions | undefined
    let answer = false
    let answers: Map<Permissions, boolean> | undefined
    for (const key of candidates) {
      const { permissions } = this.#entries.get(key)!
      if (permissions !== asked) {
        if (asked !== undefined) (answers ??= new Map()).set(asked, answer)
        asked = permissions
        const known = answers?.get(permissions)
        answer = known ?? permissions.mayReceive(event)
      }
      if (answer) out.push(key)
    }
  }
}
