import type { JsonObject } from "./decode.ts"
import { asObject, optArray, optBoolean, optObject, optString, queryInt, reqString } from "./decode.ts"
import { badJson, forbidden, invalidParam, MatrixError, notFound, roomInUse, unsupportedRoomVersion } from "./errors.ts"
import { clientEvent } from "./client-format.ts"
import { DEFAULT_ROOM_VERSION, ROOM_VERSIONS } from "./discovery.ts"
import { isRoomAlias, isUserId, newRoomId, serverNameOf } from "./ids.ts"
import type { JournalRecord } from "./records.ts"
import type { Proposal } from "./room-rules.ts"
import { eventRecord, readablePos, requireRoom, writeEvent } from "./room-rules.ts"
import type { Auth, Env, Route } from "./routing.ts"
import { authed, CLIENT, json, open } from "./routing.ts"
import type { Room } from "./rooms.ts"
import { eventLevel, userLevel } from "./rooms.ts"
import type { Store } from "./store.ts"
import { parseStreamToken } from "./stream-token.ts"

/**
 * Rooms and who is in them: creation (with the events Synapse creates for each preset),
 * joining, inviting, leaving, kicking and banning, member lists, aliases and the public room
 * directory. Every membership change is an `m.room.member` event that passes the auth rules in
 * `room-rules.ts`.
 */

const PRESETS = ["private_chat", "public_chat", "trusted_private_chat"]

/** The power levels Synapse gives a new room, before `power_level_content_override`. */
const defaultPowerLevels = (creator: string, preset: string, invitees: ReadonlyArray<string>): JsonObject => ({
  users: {
    [creator]: 100,
    ...(preset === "trusted_private_chat" ? Object.fromEntries(invitees.map((u) => [u, 100])) : {})
  },
  users_default: 0,
  events: {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100
  },
  events_default: 0,
  state_default: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: preset === "public_chat" ? 50 : 0,
  historical: 100,
  notifications: { room: 50 }
})

const memberContent = (store: Store, userId: string, membership: string, extra: JsonObject = {}): JsonObject => {
  const user = store.users.get(userId)
  return {
    membership,
    ...(membership === "join" && user?.displayname !== undefined && { displayname: user.displayname }),
    ...(membership === "join" && user?.avatar_url !== undefined && { avatar_url: user.avatar_url }),
    ...extra
  }
}

const reasonOf = (o: JsonObject): JsonObject => {
  const reason = optString(o, "reason")
  return reason === undefined ? {} : { reason }
}

const createRoom = async (env: Env, auth: Auth, o: JsonObject): Promise<string> => {
  const { store, serverName } = env
  const visibility = optString(o, "visibility") ?? "private"
  if (visibility !== "public" && visibility !== "private") throw badJson("'visibility' must be public or private.")
  const preset = optString(o, "preset") ?? (visibility === "public" ? "public_chat" : "private_chat")
  if (!PRESETS.includes(preset)) throw badJson(`Unknown preset '${preset}'.`)
  const version = optString(o, "room_version") ?? DEFAULT_ROOM_VERSION
  if (!ROOM_VERSIONS.includes(version)) throw unsupportedRoomVersion(`This server does not support room version ${version}.`)
  const aliasName = optString(o, "room_alias_name")
  const alias = aliasName === undefined ? undefined : `#${aliasName}:${serverName}`
  if (alias !== undefined) {
    if (aliasName === "" || /[\s:#]/.test(aliasName!) || !isRoomAlias(alias)) throw invalidParam("Invalid characters in room alias.")
    if (store.aliases.has(alias)) throw roomInUse("Room alias already taken")
  }
  const invitees = optArray(o, "invite") ?? []
  for (const u of invitees) {
    if (typeof u !== "string" || !isUserId(u)) throw badJson("'invite' must list user ids.")
    if (serverNameOf(u) === serverName && !store.users.has(u)) throw notFound(`Unknown user ${u}`)
  }
  const initialState = (optArray(o, "initial_state") ?? []).map((raw) => {
    const e = asObject(raw, "initial_state entry")
    const type = reqString(e, "type")
    // The server writes these itself (creation_content, the creator's join, `invite`).
    if (type === "m.room.create" || type === "m.room.member") throw invalidParam(`${type} cannot be part of initial_state.`)
    return { type, stateKey: optString(e, "state_key") ?? "", content: asObject(e.content, "initial_state content") }
  })
  const creationContent = optObject(o, "creation_content") ?? {}
  const override = optObject(o, "power_level_content_override") ?? {}
  const name = optString(o, "name")
  const topic = optString(o, "topic")
  const isDirect = optBoolean(o, "is_direct") === true

  const roomId = newRoomId(serverName)
  const sender = auth.userId
  const proposals: Array<Proposal> = []
  const state = (type: string, content: JsonObject, stateKey = "") => proposals.push({ roomId, sender, type, stateKey, content })
  const overridden = (type: string, stateKey = "") => initialState.some((s) => s.type === type && s.stateKey === stateKey)

  state("m.room.create", { ...creationContent, room_version: version, ...(version === "10" && { creator: sender }) })
  state("m.room.member", memberContent(store, sender, "join"), sender)
  state("m.room.power_levels", { ...defaultPowerLevels(sender, preset, invitees as Array<string>), ...override })
  if (alias !== undefined) state("m.room.canonical_alias", { alias })
  if (!overridden("m.room.join_rules")) state("m.room.join_rules", { join_rule: preset === "public_chat" ? "public" : "invite" })
  if (!overridden("m.room.history_visibility")) state("m.room.history_visibility", { history_visibility: "shared" })
  if (preset !== "public_chat" && !overridden("m.room.guest_access")) state("m.room.guest_access", { guest_access: "can_join" })
  for (const s of initialState) state(s.type, s.content, s.stateKey)
  if (name !== undefined) state("m.room.name", { name })
  if (topic !== undefined) state("m.room.topic", { topic, "m.topic": [{ mimetype: "text/plain", body: topic }] })
  for (const u of invitees as Array<string>) state("m.room.member", { membership: "invite", ...(isDirect && { is_direct: true }) }, u)

  // The room does not exist until these commit, so they are built, not authorized: the server
  // is the author of their shape, and the creator holds every power in a new room.
  const records: Array<JournalRecord> = proposals.map((p) => eventRecord(store, p).record)
  if (visibility === "public") records.push({ t: "room.visibility", roomId, visibility: "public" })
  if (alias !== undefined) records.push({ t: "alias", alias, roomId, creator: sender })
  await store.commit(records)
  return roomId
}

const resolveRoom = (store: Store, idOrAlias: string): Room => {
  if (idOrAlias.startsWith("#")) {
    const alias = store.aliases.get(idOrAlias)
    if (alias === undefined) throw notFound(`Room alias ${idOrAlias} not found`)
    return requireRoom(store, alias.roomId)
  }
  if (!idOrAlias.startsWith("!")) throw invalidParam(`${idOrAlias} is not a room id or alias`)
  return requireRoom(store, idOrAlias)
}

const join = async (env: Env, auth: Auth, idOrAlias: string, body: unknown): Promise<string> => {
  const room = resolveRoom(env.store, idOrAlias)
  if (room.membershipAt(auth.userId) === "join") return room.id
  await writeEvent(env.store, {
    roomId: room.id,
    sender: auth.userId,
    type: "m.room.member",
    stateKey: auth.userId,
    content: memberContent(env.store, auth.userId, "join", reasonOf(asObject(body)))
  })
  return room.id
}

/** invite / kick / ban / unban: one member event about `user_id`, sent by the requester. */
const aboutUser =
  (membership: "invite" | "leave" | "ban", precondition: (room: Room, target: string) => "skip" | "go") =>
  async ({ env, auth, params, body }: { env: Env; auth: Auth; params: Readonly<Record<"roomId", string>>; body: unknown }) => {
    const o = asObject(body)
    const target = reqString(o, "user_id")
    if (!isUserId(target)) throw invalidParam(`${target} is not a user id`)
    const room = requireRoom(env.store, params.roomId)
    if (membership === "invite" && serverNameOf(target) === env.serverName && !env.store.users.has(target)) throw notFound(`Unknown user ${target}`)
    if (precondition(room, target) === "skip") return json({})
    await writeEvent(env.store, { roomId: room.id, sender: auth.userId, type: "m.room.member", stateKey: target, content: { membership, ...reasonOf(o) } })
    return json({})
  }

const publicRoomEntry = (room: Room): JsonObject => {
  const str = (type: string, key: string) => {
    const v = room.stateEvent(type, "")?.event.content[key]
    return typeof v === "string" ? v : undefined
  }
  const name = str("m.room.name", "name")
  const topic = str("m.room.topic", "topic")
  const alias = str("m.room.canonical_alias", "alias")
  const avatar = str("m.room.avatar", "url")
  const roomType = str("m.room.create", "type")
  return {
    room_id: room.id,
    num_joined_members: room.membersAt(Infinity, "join").length,
    world_readable: room.historyVisibilityAt(Infinity) === "world_readable",
    guest_can_join: str("m.room.guest_access", "guest_access") === "can_join",
    join_rule: room.joinRuleAt(),
    ...(name !== undefined && { name }),
    ...(topic !== undefined && { topic }),
    ...(alias !== undefined && { canonical_alias: alias }),
    ...(avatar !== undefined && { avatar_url: avatar }),
    ...(roomType !== undefined && { room_type: roomType })
  }
}

const publicRooms = (store: Store, limit: number | undefined, since: string | null, term: string | undefined): JsonObject => {
  const all = [...store.publicRooms]
    .map((id) => publicRoomEntry(store.rooms.get(id)!))
    .filter((r) => term === undefined || [r.name, r.topic, r.canonical_alias].some((v) => typeof v === "string" && v.toLowerCase().includes(term.toLowerCase())))
    .sort((a, b) => (b.num_joined_members as number) - (a.num_joined_members as number) || String(a.room_id).localeCompare(String(b.room_id)))
  const offset = since === null || since === "" ? 0 : Number(/^p(\d{1,9})$/.exec(since)?.[1] ?? NaN)
  if (Number.isNaN(offset)) throw invalidParam("Unknown 'since' token.")
  const end = limit === undefined ? all.length : offset + limit
  return {
    chunk: all.slice(offset, end),
    total_room_count_estimate: all.length,
    ...(end < all.length && { next_batch: `p${end}` }),
    ...(offset > 0 && { prev_batch: `p${Math.max(0, offset - (limit ?? offset))}` })
  }
}

const mayManageDirectory = (room: Room, userId: string): boolean => {
  const pl = room.powerLevelsAt()
  return room.membershipAt(userId) === "join" && userLevel(pl, userId) >= eventLevel(pl, "m.room.canonical_alias", true)
}

export const routes: ReadonlyArray<Route> = [
  authed("POST", `${CLIENT}/createRoom`, async ({ env, auth, body }) => json({ room_id: await createRoom(env, auth, asObject(body)) })),
  authed("POST", `${CLIENT}/join/:roomIdOrAlias`, async ({ env, auth, params, body }) =>
    json({ room_id: await join(env, auth, params.roomIdOrAlias, body) })
  ),
  authed("POST", `${CLIENT}/rooms/:roomId/join`, async ({ env, auth, params, body }) =>
    json({ room_id: await join(env, auth, params.roomId, body) })
  ),
  authed("POST", `${CLIENT}/rooms/:roomId/leave`, async ({ env, auth, params, body }) => {
    const room = requireRoom(env.store, params.roomId)
    const current = room.membershipAt(auth.userId)
    if (current === "leave") return json({})
    await writeEvent(env.store, {
      roomId: room.id,
      sender: auth.userId,
      type: "m.room.member",
      stateKey: auth.userId,
      content: { membership: "leave", ...reasonOf(asObject(body)) }
    })
    return json({})
  }),
  authed("POST", `${CLIENT}/rooms/:roomId/forget`, ({ env, auth, params }) => {
    const room = requireRoom(env.store, params.roomId)
    if (room.membershipAt(auth.userId) === "join") throw new MatrixError({ status: 400, errcode: "M_UNKNOWN", error: "User is still in the room" })
    return json({})
  }),
  authed(
    "POST",
    `${CLIENT}/rooms/:roomId/invite`,
    aboutUser("invite", (room, target) => (room.membershipAt(target) === "invite" ? "skip" : "go"))
  ),
  authed(
    "POST",
    `${CLIENT}/rooms/:roomId/kick`,
    aboutUser("leave", (room, target) => {
      const m = room.membershipAt(target)
      if (m !== "join" && m !== "invite") throw forbidden(`${target} is not in the room.`)
      return "go"
    })
  ),
  authed("POST", `${CLIENT}/rooms/:roomId/ban`, aboutUser("ban", () => "go")),
  authed(
    "POST",
    `${CLIENT}/rooms/:roomId/unban`,
    aboutUser("leave", (room, target) => {
      if (room.membershipAt(target) !== "ban") throw forbidden(`${target} is not banned.`)
      return "go"
    })
  ),
  authed("GET", `${CLIENT}/joined_rooms`, ({ env, auth }) =>
    json({
      joined_rooms: [...(env.store.userRooms.get(auth.userId) ?? [])].filter((id) => env.store.rooms.get(id)!.membershipAt(auth.userId) === "join")
    })
  ),
  authed("GET", `${CLIENT}/rooms/:roomId/members`, ({ env, auth, params, query }) => {
    const room = requireRoom(env.store, params.roomId)
    let pos = readablePos(room, auth.userId)
    const at = query.get("at")
    if (at !== null && at !== "") pos = Math.min(pos, parseStreamToken(at, "at"))
    const only = query.get("membership")
    const not = query.get("not_membership")
    const viewer = { now: env.now(), tokenKey: auth.tokenKey }
    const chunk = [...room.stateAt(pos === Infinity ? room.lastPos : pos).values()]
      .filter((e) => e.event.type === "m.room.member")
      .filter((e) => (only === null || e.event.content.membership === only) && (not === null || e.event.content.membership !== not))
      .map((e) => clientEvent(e, viewer))
    return json({ chunk })
  }),
  authed("GET", `${CLIENT}/rooms/:roomId/joined_members`, ({ env, auth, params }) => {
    const room = requireRoom(env.store, params.roomId)
    if (room.membershipAt(auth.userId) !== "join") throw forbidden(`User ${auth.userId} not in room ${room.id}`)
    const joined: JsonObject = {}
    for (const userId of room.membersAt(Infinity, "join")) {
      const c = room.stateEvent("m.room.member", userId)!.event.content
      joined[userId] = {
        ...(typeof c.displayname === "string" && { display_name: c.displayname }),
        ...(typeof c.avatar_url === "string" && { avatar_url: c.avatar_url })
      }
    }
    return json({ joined })
  }),
  open("GET", `${CLIENT}/directory/room/:alias`, ({ env, params }) => {
    const alias = env.store.aliases.get(params.alias)
    if (alias === undefined) throw notFound(`Room alias ${params.alias} not found`)
    return json({ room_id: alias.roomId, servers: [env.serverName] })
  }),
  authed("PUT", `${CLIENT}/directory/room/:alias`, async ({ env, auth, params, body }) => {
    const alias = params.alias
    if (!isRoomAlias(alias) || serverNameOf(alias) !== env.serverName) throw invalidParam("Room alias must be local to this server.")
    if (env.store.aliases.has(alias)) throw new MatrixError({ status: 409, errcode: "M_UNKNOWN", error: "Room alias already exists" })
    const room = requireRoom(env.store, reqString(asObject(body), "room_id"))
    if (room.membershipAt(auth.userId) !== "join") throw forbidden(`User ${auth.userId} not in room ${room.id}`)
    await env.store.commit([{ t: "alias", alias, roomId: room.id, creator: auth.userId }])
    return json({})
  }),
  authed("DELETE", `${CLIENT}/directory/room/:alias`, async ({ env, auth, params }) => {
    const alias = env.store.aliases.get(params.alias)
    if (alias === undefined) throw notFound(`Room alias ${params.alias} not found`)
    const room = requireRoom(env.store, alias.roomId)
    if (alias.creator !== auth.userId && !mayManageDirectory(room, auth.userId)) throw forbidden("You may not delete this alias.")
    await env.store.commit([{ t: "alias", alias: params.alias, roomId: null, creator: alias.creator }])
    return json({})
  }),
  authed("GET", `${CLIENT}/rooms/:roomId/aliases`, ({ env, auth, params }) => {
    const room = requireRoom(env.store, params.roomId)
    readablePos(room, auth.userId)
    return json({ aliases: [...env.store.aliases].filter(([, a]) => a.roomId === room.id).map(([alias]) => alias) })
  }),
  open("GET", `${CLIENT}/directory/list/room/:roomId`, ({ env, params }) => {
    requireRoom(env.store, params.roomId)
    return json({ visibility: env.store.publicRooms.has(params.roomId) ? "public" : "private" })
  }),
  authed("PUT", `${CLIENT}/directory/list/room/:roomId`, async ({ env, auth, params, body }) => {
    const room = requireRoom(env.store, params.roomId)
    const visibility = optString(asObject(body), "visibility") ?? "public"
    if (visibility !== "public" && visibility !== "private") throw badJson("'visibility' must be public or private.")
    if (!mayManageDirectory(room, auth.userId)) throw forbidden("You may not change this room's directory visibility.")
    await env.store.commit([{ t: "room.visibility", roomId: room.id, visibility }])
    return json({})
  }),
  open("GET", `${CLIENT}/publicRooms`, ({ env, query }) => json(publicRooms(env.store, queryInt(query, "limit"), query.get("since"), undefined))),
  authed("POST", `${CLIENT}/publicRooms`, ({ env, body }) => {
    const o = asObject(body)
    const limit = o.limit
    if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 0)) throw badJson("'limit' must be a non-negative integer.")
    const filter = optObject(o, "filter")
    const term = filter === undefined ? undefined : optString(filter, "generic_search_term")
    return json(publicRooms(env.store, limit, optString(o, "since") ?? null, term))
  })
]

