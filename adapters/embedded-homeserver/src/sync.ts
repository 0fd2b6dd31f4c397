import type { JsonObject } from "./decode.ts"
import { queryInt } from "./decode.ts"
import { clientEvent, strippedEvent } from "./client-format.ts"
import type { EventFilter, SyncFilter } from "./filters.ts"
import { matchesEvent, matchesType, resolveSyncFilter, roomIncluded } from "./filters.ts"
import type { Route } from "./routing.ts"
import type { Auth, Env } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"
import type { Entry, Room } from "./rooms.ts"
import type { Store, User } from "./store.ts"
import { parseStreamToken, streamToken } from "./stream-token.ts"

/**
 * `GET /sync`. A response is computed "as of" a stream position `upTo`, the last durable one,
 * and covers exactly the positions in `(since, upTo]`; its `next_batch` is `upTo`. Consecutive
 * syncs therefore partition the stream: each event is delivered once, none skipped (except
 * where a timeline limit cuts, which is flagged `limited` with a `prev_batch` to fetch the
 * rest). An empty answer to an incremental sync waits (long-polls) until the stream moves.
 */

/** Timelines default to Synapse's 10 events; a client asks for more through its filter. */
const DEFAULT_TIMELINE_LIMIT = 10
/** Long-polls are capped so a client's huge `timeout` cannot pin a request forever. */
const MAX_TIMEOUT_MS = 120_000

/** Stripped state an invitee gets, as the spec recommends. */
const INVITE_STATE_TYPES: ReadonlyArray<string> = [
  "m.room.create",
  "m.room.join_rules",
  "m.room.name",
  "m.room.avatar",
  "m.room.canonical_alias",
  "m.room.encryption",
  "m.room.topic"
]

interface Slice {
  readonly timeline: Array<Entry>
  readonly state: Array<Entry>
  readonly limited: boolean
  readonly prevBatch: number
}

/**
 * The part of one room's history a sync covers: visible events in `(from, to]` (all of history
 * up to `to` when `from` is undefined: a room new to this client), the last `limit` of them as
 * the timeline, and the state the client needs before the timeline starts.
 */
const roomSlice = (
  room: Room,
  userId: string,
  from: number | undefined,
  to: number,
  filter: SyncFilter,
  fullState: boolean
): Slice => {
  const limit = filter.timeline.limit ?? DEFAULT_TIMELINE_LIMIT
  const start = from === undefined ? 0 : room.indexAfter(from)
  const collected: Array<Entry> = []
  let limited = false
  for (let i = room.indexAfter(to) - 1; i >= start; i--) {
    const entry = room.timeline[i]!
    if (!matchesEvent(filter.timeline, entry.event) || !room.canSee(userId, entry)) continue
    if (collected.length === limit) {
      limited = true
      break
    }
    collected.push(entry)
  }
  const timeline = collected.reverse()
  const first = timeline[0]
  const before = first !== undefined ? first.pos - 1 : to
  const state: Array<Entry> = []
  if (from === undefined || fullState || limited) {
    for (const entry of room.stateAt(before).values()) {
      // Incremental and limited: only what changed in the gap the timeline skipped.
      if (from !== undefined && !fullState && entry.pos <= from) continue
      if (matchesEvent(filter.state, entry.event)) state.push(entry)
    }
  }
  return { timeline, state, limited, prevBatch: before }
}

const receiptsOf = (store: Store, room: Room, userId: string, from: number | undefined, to: number): JsonObject | undefined => {
  const content: Record<string, Record<string, Record<string, JsonObject>>> = {}
  let any = false
  for (const r of store.receipts.get(room.id) ?? []) {
    if (r.pos > to || (from !== undefined && r.pos <= from)) continue
    if (r.receiptType === "m.read.private" && r.userId !== userId) continue
    const byType = (content[r.eventId] ??= {})
    const byUser = (byType[r.receiptType] ??= {})
    byUser[r.userId] = { ts: r.ts, ...(r.threadId !== undefined && { thread_id: r.threadId }) }
    any = true
  }
  return any ? { type: "m.receipt", content } : undefined
}

const accountDataSince = (
  map: ReadonlyMap<string, { readonly pos: number; readonly value: JsonObject }> | undefined,
  from: number | undefined,
  to: number,
  filter: EventFilter
): Array<JsonObject> => {
  const out: Array<JsonObject> = []
  for (const [type, { pos, value }] of map ?? []) {
    if (pos > to || (from !== undefined && pos <= from) || !matchesType(filter, type)) continue
    out.push({ type, content: value })
  }
  return out
}

const summaryOf = (room: Room, userId: string, to: number): JsonObject => {
  const joined = room.membersAt(to, "join")
  const invited = room.membersAt(to, "invite")
  return {
    "m.heroes": [...joined, ...invited].filter((u) => u !== userId).slice(0, 5),
    "m.joined_member_count": joined.length,
    "m.invited_member_count": invited.length
  }
}

/** Do `a` and `b` share a room in which both are joined (as of `to`)? */
const shareRoom = (store: Store, a: string, b: string, to: number): boolean => {
  if (a === b) return true
  for (const roomId of store.userRooms.get(a) ?? []) {
    const room = store.rooms.get(roomId)!
    if (room.membershipAt(a, to) === "join" && room.membershipAt(b, to) === "join") return true
  }
  return false
}

/**
 * `device_lists` for `(from, to]`: users whose keys changed and with whom the user shares a room,
 * users who started sharing a room (they may have devices we never saw), and `left`: users who
 * no longer share any room.
 */
export const deviceListChanges = (store: Store, userId: string, from: number, to: number): { changed: Array<string>; left: Array<string> } => {
  const changed = new Set<string>()
  const left = new Set<string>()
  const log = store.deviceListLog
  let lo = 0
  let hi = log.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (log[mid]!.pos <= from) lo = mid + 1
    else hi = mid
  }
  for (let i = lo; i < log.length && log[i]!.pos <= to; i++) {
    const other = log[i]!.value
    if (shareRoom(store, userId, other, to)) changed.add(other)
  }
  for (const roomId of store.userRooms.get(userId) ?? []) {
    const room = store.rooms.get(roomId)!
    const mine = room.membershipAt(userId, to)
    const wasJoined = room.membershipAt(userId, from) === "join"
    if (mine === "join" && !wasJoined) {
      for (const other of room.membersAt(to, "join")) if (other !== userId) changed.add(other)
      continue
    }
    if (mine !== "join" && wasJoined) {
      for (const other of room.membersAt(from, "join")) if (!shareRoom(store, userId, other, to)) left.add(other)
      continue
    }
    if (mine !== "join") continue
    for (let i = room.indexAfter(from); i < room.timeline.length && room.timeline[i]!.pos <= to; i++) {
      const e = room.timeline[i]!.event
      if (e.type !== "m.room.member" || e.state_key === undefined || e.state_key === userId) continue
      if (e.content.membership === "join") changed.add(e.state_key)
      else if (!shareRoom(store, userId, e.state_key, to)) left.add(e.state_key)
    }
  }
  for (const u of changed) left.delete(u)
  changed.delete(userId)
  const ownChange = log.slice(lo).some((x) => x.pos <= to && x.value === userId)
  if (ownChange) changed.add(userId)
  return { changed: [...changed], left: [...left] }
}

export const oneTimeKeyCounts = (user: User | undefined, deviceId: string): Record<string, number> => {
  // signed_curve25519 is always reported, even at 0: matrix-sdk-crypto reads absence as "unknown"
  // and would not top its keys up.
  const counts: Record<string, number> = { signed_curve25519: 0 }
  for (const keyId of user?.devices.get(deviceId)?.oneTimeKeys.keys() ?? []) {
    const algorithm = keyId.slice(0, keyId.indexOf(":"))
    counts[algorithm] = (counts[algorithm] ?? 0) + 1
  }
  return counts
}

export const unusedFallbackKeyTypes = (user: User | undefined, deviceId: string): Array<string> =>
  [...(user?.devices.get(deviceId)?.fallbackKeys ?? [])].filter(([, fb]) => !fb.used).map(([algorithm]) => algorithm)

interface Built {
  readonly body: JsonObject
  readonly empty: boolean
}

const buildSync = (env: Env, auth: Auth, since: number | undefined, to: number, filter: SyncFilter, fullState: boolean): Built => {
  const { store } = env
  const viewer = { now: env.now(), tokenKey: auth.tokenKey }
  const user = store.users.get(auth.userId)
  const join: Record<string, JsonObject> = {}
  const invite: Record<string, JsonObject> = {}
  const leave: Record<string, JsonObject> = {}
  const serve = (entries: ReadonlyArray<Entry>) => entries.map((e) => clientEvent(e, viewer, false))

  for (const roomId of store.userRooms.get(auth.userId) ?? []) {
    if (!roomIncluded(filter, roomId)) continue
    const room = store.rooms.get(roomId)!
    const now = room.membershipChangeAt(auth.userId, to)
    if (now === undefined) continue
    const then = since === undefined ? undefined : room.membershipAt(auth.userId, since)
    const changedSince = since === undefined || now.pos > since

    if (now.membership === "join") {
      const fresh = then !== "join"
      const from = fresh ? undefined : since
      const slice = roomSlice(room, auth.userId, from, to, filter, fullState)
      const ephemeral = receiptsOf(store, room, auth.userId, from, to)
      const accountData = accountDataSince(user?.roomAccountData.get(roomId), from, to, filter.roomAccountData)
      if (!fresh && !fullState && slice.timeline.length === 0 && slice.state.length === 0 && ephemeral === undefined && accountData.length === 0)
        continue
      join[roomId] = {
        summary: summaryOf(room, auth.userId, to),
        state: { events: serve(slice.state) },
        timeline: { events: serve(slice.timeline), limited: slice.limited, prev_batch: streamToken(slice.prevBatch) },
        ephemeral: { events: ephemeral === undefined ? [] : [ephemeral] },
        account_data: { events: accountData },
        unread_notifications: { notification_count: 0, highlight_count: 0 }
      }
    } else if (now.membership === "invite") {
      if (!changedSince) continue
      const state = INVITE_STATE_TYPES.flatMap((type) => {
        const e = room.stateEvent(type, "", now.pos)
        return e === undefined ? [] : [strippedEvent(e)]
      })
      invite[roomId] = { invite_state: { events: [...state, strippedEvent(now.entry)] } }
    } else {
      // Left, kicked, banned or rejected: report it once, in the sync that covers the change.
      if (since === undefined ? !filter.includeLeave : !changedSince) continue
      const from = then === "join" ? since : undefined
      const slice = roomSlice(room, auth.userId, from, now.pos, filter, fullState)
      leave[roomId] = {
        state: { events: serve(slice.state) },
        timeline: { events: serve(slice.timeline), limited: slice.limited, prev_batch: streamToken(slice.prevBatch) },
        account_data: { events: [] }
      }
    }
  }

  const device = user?.devices.get(auth.deviceId)
  const toDevice = (device?.inbox ?? [])
    .filter((m) => m.pos <= to && (since === undefined || m.pos > since))
    .map((m) => ({ sender: m.sender, type: m.type, content: m.content }))
  const accountData = accountDataSince(user?.accountData, since, to, filter.accountData)
  const deviceLists = since === undefined ? { changed: [], left: [] } : deviceListChanges(store, auth.userId, since, to)
  const fallbackTypes = unusedFallbackKeyTypes(user, auth.deviceId)

  const body: JsonObject = {
    next_batch: streamToken(to),
    rooms: { join, invite, leave, knock: {} },
    presence: { events: [] },
    account_data: { events: accountData },
    to_device: { events: toDevice },
    device_lists: deviceLists,
    device_one_time_keys_count: oneTimeKeyCounts(user, auth.deviceId),
    device_unused_fallback_key_types: fallbackTypes,
    "org.matrix.msc2732.device_unused_fallback_key_types": fallbackTypes
  }
  const empty =
    Object.keys(join).length + Object.keys(invite).length + Object.keys(leave).length === 0 &&
    toDevice.length === 0 &&
    accountData.length === 0 &&
    deviceLists.changed.length + deviceLists.left.length === 0
  return { body, empty }
}

export const routes: ReadonlyArray<Route> = [
  authed("GET", `${CLIENT}/sync`, async ({ env, auth, query, signal }) => {
    const { store } = env
    const sinceRaw = query.get("since")
    const since = sinceRaw === null || sinceRaw === "" ? undefined : parseStreamToken(sinceRaw, "since")
    const filter = resolveSyncFilter(query, store.users.get(auth.userId)?.filters ?? new Map())
    const fullState = query.get("full_state") === "true"
    const timeout = Math.min(queryInt(query, "timeout") ?? 0, MAX_TIMEOUT_MS)

    // Syncing from `since` acknowledges every to-device message up to it: they may go. Losing
    // this record in a crash only means redelivery to a client that reuses an old token.
    const oldest = store.users.get(auth.userId)?.devices.get(auth.deviceId)?.inbox[0]
    if (since !== undefined && oldest !== undefined && oldest.pos <= since)
      store.commitLazily([{ t: "to_device.acked", userId: auth.userId, deviceId: auth.deviceId, upTo: since }])

    const deadline = Date.now() + timeout
    let to = store.durablePos
    let built = buildSync(env, auth, since, to, filter, fullState)
    while (built.empty && since !== undefined && !signal.aborted && !store.isClosed) {
      const remaining = deadline - Date.now()
      if (remaining <= 0) break
      await store.waitForChange(to, remaining, signal)
      to = Math.max(to, store.durablePos)
      built = buildSync(env, auth, since, to, filter, fullState)
    }
    return json(built.body)
  })
]
