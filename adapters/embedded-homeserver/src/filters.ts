import type { JsonObject } from "./decode.ts"
import { asObject, isObject, queryJson } from "./decode.ts"
import { badJson, forbidden, invalidParam, notFound } from "./errors.ts"
import type { Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"

/**
 * Event filters (`POST /user/{userId}/filter`, `?filter=` on `/sync` and `/messages`). Stored as
 * given (a client reads back what it wrote); interpreted through `EventFilter`, which honours
 * `limit`, `types`, `not_types`, `senders`, `not_senders`, `rooms` and `not_rooms`, with `*`
 * wildcards as the spec defines them.
 */
export interface EventFilter {
  readonly limit?: number
  readonly types?: ReadonlyArray<string>
  readonly notTypes: ReadonlyArray<string>
  readonly senders?: ReadonlyArray<string>
  readonly notSenders: ReadonlyArray<string>
  readonly rooms?: ReadonlyArray<string>
  readonly notRooms: ReadonlyArray<string>
}

export interface SyncFilter {
  readonly rooms?: ReadonlyArray<string>
  readonly notRooms: ReadonlyArray<string>
  readonly timeline: EventFilter
  readonly state: EventFilter
  readonly ephemeral: EventFilter
  readonly roomAccountData: EventFilter
  readonly accountData: EventFilter
  readonly includeLeave: boolean
}

const strings = (o: JsonObject, key: string): ReadonlyArray<string> | undefined => {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw badJson(`Filter '${key}' must be an array of strings.`)
  return v
}

export const eventFilter = (value: unknown): EventFilter => {
  const o = isObject(value) ? value : {}
  const limit = o.limit
  if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0))
    throw badJson("Filter 'limit' must be a non-negative integer.")
  const types = strings(o, "types")
  const senders = strings(o, "senders")
  const rooms = strings(o, "rooms")
  return {
    ...(typeof limit === "number" && { limit }),
    ...(types && { types }),
    notTypes: strings(o, "not_types") ?? [],
    ...(senders && { senders }),
    notSenders: strings(o, "not_senders") ?? [],
    ...(rooms && { rooms }),
    notRooms: strings(o, "not_rooms") ?? []
  }
}

export const syncFilter = (value: JsonObject): SyncFilter => {
  const room = isObject(value.room) ? value.room : {}
  const rooms = strings(room, "rooms")
  return {
    ...(rooms && { rooms }),
    notRooms: strings(room, "not_rooms") ?? [],
    timeline: eventFilter(room.timeline),
    state: eventFilter(room.state),
    ephemeral: eventFilter(room.ephemeral),
    roomAccountData: eventFilter(room.account_data),
    accountData: eventFilter(value.account_data),
    includeLeave: room.include_leave === true
  }
}

const globMatch = (pattern: string, value: string): boolean =>
  pattern.endsWith("*") ? value.startsWith(pattern.slice(0, -1)) : pattern === value

export const matchesType = (f: EventFilter, type: string): boolean =>
  (f.types === undefined || f.types.some((p) => globMatch(p, type))) && !f.notTypes.some((p) => globMatch(p, type))

export const matchesEvent = (f: EventFilter, e: { readonly type: string; readonly sender: string; readonly room_id: string }): boolean =>
  matchesType(f, e.type) &&
  (f.senders === undefined || f.senders.includes(e.sender)) &&
  !f.notSenders.includes(e.sender) &&
  (f.rooms === undefined || f.rooms.includes(e.room_id)) &&
  !f.notRooms.includes(e.room_id)

export const roomIncluded = (f: SyncFilter, roomId: string): boolean =>
  (f.rooms === undefined || f.rooms.includes(roomId)) && !f.notRooms.includes(roomId)

/** The `filter` query parameter of `/sync`: inline JSON or the id of a stored filter. */
export const resolveSyncFilter = (query: URLSearchParams, filters: ReadonlyMap<string, JsonObject>): SyncFilter => {
  const raw = query.get("filter")
  if (raw === null || raw === "") return NO_FILTER
  if (raw.trimStart().startsWith("{")) {
    // A client sends the same inline filter with every /sync: read it once. Only filters that
    // read cleanly are kept (a bad one throws each time), and only so many, of bounded size.
    const known = inlineFilters.get(raw)
    if (known !== undefined) return known
    const read = syncFilter(queryJson(query, "filter")!)
    if (raw.length <= MAX_CACHED_FILTER_CHARS) {
      if (inlineFilters.size >= MAX_CACHED_FILTERS) inlineFilters.delete(inlineFilters.keys().next().value!)
      inlineFilters.set(raw, read)
    }
    return read
  }
  const stored = filters.get(raw)
  if (stored === undefined) throw invalidParam(`Unknown filter '${raw.slice(0, 64)}'.`)
  let read = storedFilters.get(stored)
  if (read === undefined) storedFilters.set(stored, (read = syncFilter(stored)))
  return read
}

const NO_FILTER = syncFilter({})
const MAX_CACHED_FILTERS = 256
const MAX_CACHED_FILTER_CHARS = 4_096
/** Inline filters by their text, oldest forgotten first; what they read as is plain data, shared read-only. */
const inlineFilters = new Map<string, SyncFilter>()
/** Stored filters are never changed once written (a new one gets a new id). */
const storedFilters = new WeakMap<JsonObject, SyncFilter>()

export const routes: ReadonlyArray<Route> = [
  authed("POST", `${CLIENT}/user/:userId/filter`, async ({ env, auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot create filters for other users.")
    const filter = asObject(body)
    syncFilter(filter) // refuse what the filter reader would refuse later
    const user = env.store.users.get(auth.userId)!
    const filterId = String(user.filters.size)
    await env.store.commit([{ t: "filter", userId: auth.userId, filterId, filter }])
    return json({ filter_id: filterId })
  }),
  authed("GET", `${CLIENT}/user/:userId/filter/:filterId`, ({ env, auth, params }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot read filters of other users.")
    const filter = env.store.users.get(auth.userId)?.filters.get(params.filterId)
    if (filter === undefined) throw notFound("No such filter.")
    return json(filter)
  })
]
