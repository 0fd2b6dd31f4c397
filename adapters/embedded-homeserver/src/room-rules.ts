import type { JsonObject } from "./decode.ts"
import { forbidden, MatrixError, notFound, tooLarge } from "./errors.ts"
import { newEventId } from "./ids.ts"
import type { JournalRecord, StoredEvent, Txn } from "./records.ts"
import type { Room } from "./rooms.ts"
import { eventLevel, powerLevelsOf, userLevel } from "./rooms.ts"
import type { Store } from "./store.ts"

/**
 * The authorization rules, enforced when a local user proposes an event, against the room's
 * current state. They are the spec's auth rules in the part a single-server deployment can
 * reach: membership transitions (join rules, invites, kicks, bans), power levels for events and
 * for changing power levels, and the `@user` state key rule. Every event in a room passes here,
 * whoever asks for it (HTTP handler, delayed-event timer, profile propagation).
 */
export interface Proposal {
  readonly roomId: string
  readonly sender: string
  readonly type: string
  readonly stateKey?: string
  readonly content: JsonObject
  readonly redacts?: string
}

/** The spec's limit on a whole event (PDU) in bytes: bigger ones would not federate. */
const MAX_EVENT_BYTES = 65_536

export const requireRoom = (store: Store, roomId: string): Room => {
  const room = store.rooms.get(roomId)
  if (room === undefined) throw notFound(`Unknown room ${roomId}`)
  return room
}

export const authorize = (room: Room, p: Proposal): void => {
  const senderMembership = room.membershipAt(p.sender)
  if (p.type === "m.room.create") throw forbidden("The room already has an m.room.create event.")
  if (p.type === "m.room.member" && p.stateKey !== undefined) return authorizeMembership(room, p)
  if (senderMembership !== "join") throw forbidden(`User ${p.sender} not in room ${room.id}`)
  const pl = room.powerLevelsAt()
  const isState = p.stateKey !== undefined
  const needed = eventLevel(pl, p.type, isState)
  const has = userLevel(pl, p.sender)
  if (has < needed) throw forbidden(`You don't have permission to post that to the room. user_level (${has}) < send_level (${needed})`)
  if (isState && p.stateKey.startsWith("@") && p.stateKey !== p.sender)
    throw forbidden("You are not allowed to set others' state.")
  if (p.type === "m.room.power_levels" && isState) authorizePowerLevels(room, p)
  if (p.type === "m.room.redaction") {
    // Anyone may redact their own events; others' need the `redact` level.
    const target = p.redacts === undefined ? undefined : room.byId.get(p.redacts)
    if (target === undefined) throw notFound("Event to redact not found.")
    if (target.event.sender !== p.sender && has < pl.redact)
      throw forbidden(`You don't have permission to redact events. user_level (${has}) < redact_level (${pl.redact})`)
  }
}

/**
 * The position up to which `userId` may read a room: everything if joined now; up to their
 * departure if they were joined once; nothing if they never were.
 */
export const readablePos = (room: Room, userId: string): number => {
  const change = room.membershipChangeAt(userId)
  if (change?.membership === "join") return Infinity
  if (change !== undefined && room.joinedAfter(userId, 0)) return change.pos
  throw forbidden(`User ${userId} not in room ${room.id}`)
}

const authorizeMembership = (room: Room, p: Proposal): void => {
  const target = p.stateKey!
  const membership = p.content.membership
  const current = room.membershipAt(target)
  const senderMembership = room.membershipAt(p.sender)
  const pl = room.powerLevelsAt()
  const senderLevel = userLevel(pl, p.sender)
  const targetLevel = userLevel(pl, target)
  switch (membership) {
    case "join": {
      if (p.sender !== target) throw forbidden("Cannot force another user to join.")
      if (current === "ban") throw forbidden("You are banned from this room.")
      if (current === "join" || current === "invite") return
      const rule = room.joinRuleAt()
      if (rule === "public") return
      throw forbidden("You are not invited to this room.")
    }
    case "invite":
      if (senderMembership !== "join") throw forbidden(`User ${p.sender} not in room ${room.id}`)
      if (current === "join") throw forbidden(`${target} is already in the room.`)
      if (current === "ban") throw forbidden(`${target} is banned from the room.`)
      if (senderLevel < pl.invite) throw forbidden("You don't have permission to invite users.")
      return
    case "leave":
      if (p.sender === target) {
        if (current === "ban") throw forbidden("You are banned from this room.")
        if (current === undefined) throw forbidden(`User ${p.sender} not in room ${room.id}`)
        return
      }
      if (senderMembership !== "join") throw forbidden(`User ${p.sender} not in room ${room.id}`)
      if (current === "ban") {
        if (senderLevel < pl.ban) throw forbidden("You don't have permission to unban users.")
        return
      }
      if (senderLevel < pl.kick || targetLevel >= senderLevel) throw forbidden("You don't have permission to kick this user.")
      return
    case "ban":
      if (senderMembership !== "join") throw forbidden(`User ${p.sender} not in room ${room.id}`)
      if (senderLevel < pl.ban || targetLevel >= senderLevel) throw forbidden("You don't have permission to ban this user.")
      return
    default:
      throw forbidden(`Membership '${String(membership)}' is not supported here.`)
  }
}

/**
 * Changing power levels: nobody may grant more than they have, nor touch a level (a user's or an
 * action's) that is already above their own, except lowering their own.
 */
const authorizePowerLevels = (room: Room, p: Proposal): void => {
  const before = room.powerLevelsAt()
  const after = powerLevelsOf(p.content, room.creator)
  const mine = userLevel(before, p.sender)
  const check = (what: string, old: number | undefined, next: number | undefined) => {
    if (old === next) return
    if ((old !== undefined && old > mine) || (next !== undefined && next > mine))
      throw forbidden(`You don't have permission to change '${what}' beyond your own level (${mine}).`)
  }
  for (const key of ["usersDefault", "eventsDefault", "stateDefault", "ban", "kick", "redact", "invite"] as const)
    check(key, before[key], after[key])
  for (const type of new Set([...Object.keys(before.events), ...Object.keys(after.events)]))
    check(`events.${type}`, before.events[type], after.events[type])
  for (const user of new Set([...Object.keys(before.users), ...Object.keys(after.users)])) {
    const old = before.users[user]
    const next = after.users[user]
    if (old === next) continue
    if (user !== p.sender && old !== undefined && old >= mine)
      throw forbidden(`You cannot change the level of ${user}, whose level is not below yours.`)
    check(`users.${user}`, old, next)
  }
}

/**
 * Turns a proposal into a positioned journal record. The caller commits it (alone or with
 * others) before any `await`.
 */
export const eventRecord = (store: Store, p: Proposal, txn?: Txn): { record: JournalRecord; event: StoredEvent } => {
  const event: StoredEvent = {
    event_id: newEventId(),
    room_id: p.roomId,
    type: p.type,
    sender: p.sender,
    origin_server_ts: store.now(),
    content: p.content,
    ...(p.stateKey !== undefined && { state_key: p.stateKey }),
    ...(p.redacts !== undefined && { redacts: p.redacts })
  }
  if (Buffer.byteLength(JSON.stringify(event)) > MAX_EVENT_BYTES) throw tooLarge(`Event too large (limit ${MAX_EVENT_BYTES} bytes).`)
  return { record: { t: "event", pos: store.nextPos(), event, ...(txn && { txn }) }, event }
}

/**
 * Authorizes, records and commits one event; resolves to its id once durable.
 *
 * @example await writeEvent(store, { roomId, sender, type: "m.room.message", content: { msgtype: "m.text", body: "hi" } })
 */
export const writeEvent = async (store: Store, p: Proposal, txn?: Txn): Promise<string> => {
  const room = requireRoom(store, p.roomId)
  authorize(room, p)
  const { record, event } = eventRecord(store, p, txn)
  await store.commit([record])
  return event.event_id
}

/** A `MatrixError` as the JSON object the delayed-event list reports failures with. */
export const errorBody = (e: unknown): JsonObject =>
  e instanceof MatrixError ? e.body() : { errcode: "M_UNKNOWN", error: e instanceof Error ? e.message : String(e) }
