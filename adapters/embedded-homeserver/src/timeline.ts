import type { JsonObject } from "./decode.ts"
import { asObject, isObject, optString, queryInt, queryJson } from "./decode.ts"
import { badJson, forbidden, invalidParam, missingParam, notFound } from "./errors.ts"
import { clientEvent } from "./client-format.ts"
import type { EventFilter } from "./filters.ts"
import { eventFilter, matchesEvent } from "./filters.ts"
import type { Proposal } from "./room-rules.ts"
import { readablePos, requireRoom, writeEvent } from "./room-rules.ts"
import type { Auth, Env, RequestContext, Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"
import type { Entry, Room } from "./rooms.ts"
import { parseStreamToken, streamToken } from "./stream-token.ts"

/**
 * Reading and writing a room's timeline: send (idempotent per access token and transaction
 * id), state, redaction, `/messages`, single events, context, relations, and the small
 * read-side signals (receipts, read markers, typing).
 */

const MAX_PAGE = 1000

/** The 2025 revision's delay parameter; a server of the endpoint revisions does not read it. */
const delayOf = (env: Env, query: URLSearchParams): number | undefined =>
  env.delayedEventsShape === "query-parameter" ? (queryInt(query, "org.matrix.msc4140.delay") ?? queryInt(query, "delay")) : undefined

/** Sends a proposal now or, with `?org.matrix.msc4140.delay=`, hands it to the scheduler. */
const sendOrDelay = async (ctx: RequestContext, p: Proposal, txnId: string | undefined): Promise<JsonObject> => {
  const { env, auth, query } = ctx
  const { store } = env
  const delay = delayOf(env, query)
  if (delay !== undefined) return { delay_id: await env.delayed.schedule(auth, p, delay, txnId) }
  if (txnId !== undefined) {
    const txn = { tokenKey: auth.tokenKey, scope: `send/${p.roomId}`, txnId }
    const earlier = store.txns.get(store.txnKey(txn))
    if (earlier !== undefined) {
      const entry = store.rooms.get(p.roomId)?.byId.get(earlier)
      if (entry !== undefined) await store.whenDurable(entry.pos)
      return { event_id: earlier }
    }
    return { event_id: await writeEvent(store, p, txn) }
  }
  return { event_id: await writeEvent(store, p) }
}

const redactionProposal = (room: Room, sender: string, eventId: string, content: JsonObject): Proposal => ({
  roomId: room.id,
  sender,
  type: "m.room.redaction",
  redacts: eventId,
  // Room version 11 moved `redacts` into the content; keeping both serves old and new clients.
  content: Number(room.version) >= 11 ? { ...content, redacts: eventId } : content
})

interface Page {
  readonly chunk: Array<Entry>
  /** Position to continue from, or undefined when nothing further is visible. */
  readonly next: number | undefined
}

/**
 * Walks the timeline from a token in one direction, keeping visible events that `keep`
 * accepts, until `limit` or the `to` bound; looks one event further to know whether to offer
 * a next token (the spec: omit `end` when there is nothing more).
 */
const paginate = (
  room: Room,
  userId: string,
  dir: "b" | "f",
  from: number,
  to: number | undefined,
  upper: number,
  limit: number,
  keep: (e: Entry) => boolean
): Page => {
  const chunk: Array<Entry> = []
  const accept = (e: Entry) => e.pos <= upper && keep(e) && room.canSee(userId, e)
  if (dir === "b") {
    for (let i = room.indexAfter(Math.min(from, upper)) - 1; i >= 0; i--) {
      const e = room.timeline[i]!
      if (to !== undefined && e.pos <= to) break
      if (!accept(e)) continue
      // With `limit` 0 the chunk is empty: the next page starts at this event.
      if (chunk.length === limit) return { chunk, next: (chunk.at(-1)?.pos ?? e.pos + 1) - 1 }
      chunk.push(e)
    }
  } else {
    for (let i = room.indexAfter(from); i < room.timeline.length; i++) {
      const e = room.timeline[i]!
      if (e.pos > upper || (to !== undefined && e.pos > to)) break
      if (!accept(e)) continue
      if (chunk.length === limit) return { chunk, next: chunk.at(-1)?.pos ?? e.pos - 1 }
      chunk.push(e)
    }
  }
  return { chunk, next: undefined }
}

const dirOf = (query: URLSearchParams, fallback?: "b" | "f"): "b" | "f" => {
  const dir = query.get("dir") ?? fallback
  if (dir === undefined) throw missingParam("Missing 'dir'.")
  if (dir !== "b" && dir !== "f") throw invalidParam("'dir' must be 'b' or 'f'.")
  return dir
}

const tokenParam = (query: URLSearchParams, key: string): number | undefined => {
  const v = query.get(key)
  return v === null || v === "" ? undefined : parseStreamToken(v, key)
}

const visibleEvent = (env: Env, auth: Auth, roomId: string, eventId: string): { room: Room; entry: Entry } => {
  const room = requireRoom(env.store, roomId)
  const entry = room.byId.get(eventId)
  // An event the user may not see is reported as missing, so ids cannot be probed.
  if (entry === undefined || !room.canSee(auth.userId, entry)) throw notFound("Event not found.")
  return { room, entry }
}

const relatesTo = (e: Entry): { eventId?: string; relType?: string } => {
  const rel = e.event.content["m.relates_to"]
  if (!isObject(rel)) return {}
  return {
    ...(typeof rel.event_id === "string" && { eventId: rel.event_id }),
    ...(typeof rel.rel_type === "string" && { relType: rel.rel_type })
  }
}

const relations = ({ env, auth, params, query }: RequestContext<Auth, "roomId" | "eventId", "relType" | "eventType">) => {
  const { room } = visibleEvent(env, auth, params.roomId, params.eventId)
  const upper = Math.min(readablePos(room, auth.userId), env.store.durablePos)
  const dir = dirOf(query, "b")
  const from = tokenParam(query, "from") ?? (dir === "b" ? upper : 0)
  const limit = Math.min(queryInt(query, "limit") ?? 50, MAX_PAGE)
  const page = paginate(room, auth.userId, dir, from, tokenParam(query, "to"), upper, limit, (e) => {
    const rel = relatesTo(e)
    return (
      rel.eventId === params.eventId &&
      (params.relType === undefined || rel.relType === params.relType) &&
      (params.eventType === undefined || e.event.type === params.eventType)
    )
  })
  const viewer = { now: env.now(), tokenKey: auth.tokenKey }
  return json({
    chunk: page.chunk.map((e) => clientEvent(e, viewer)),
    ...(page.next !== undefined && { next_batch: streamToken(page.next) }),
    ...(query.get("from") !== null && { prev_batch: query.get("from") })
  })
}

const receiptTypes = ["m.read", "m.read.private", "m.fully_read"]

/** Records a receipt (or, for `m.fully_read`, the read marker in room account data). */
const markRead = async (env: Env, auth: Auth, room: Room, receiptType: string, eventId: string, threadId: string | undefined) => {
  if (!receiptTypes.includes(receiptType)) throw invalidParam(`Unknown receipt type ${receiptType}.`)
  if (room.membershipAt(auth.userId) !== "join") throw forbidden(`User ${auth.userId} not in room ${room.id}`)
  const entry = room.byId.get(eventId)
  if (entry === undefined || !room.canSee(auth.userId, entry)) throw notFound("Event not found.")
  const { store } = env
  await store.commit([
    receiptType === "m.fully_read"
      ? { t: "account_data", pos: store.nextPos(), userId: auth.userId, roomId: room.id, type: "m.fully_read", content: { event_id: eventId } }
      : {
          t: "receipt",
          pos: store.nextPos(),
          roomId: room.id,
          userId: auth.userId,
          receiptType,
          eventId,
          ts: env.now(),
          ...(threadId !== undefined && { threadId })
        }
  ])
}

const putState = async (ctx: RequestContext<Auth, "roomId" | "eventType", "stateKey">) => {
  const { env, auth, params, body } = ctx
  const content = asObject(body)
  const stateKey = params.stateKey ?? ""
  const room = requireRoom(env.store, params.roomId)
  const p: Proposal = { roomId: room.id, sender: auth.userId, type: params.eventType, stateKey, content }
  if (delayOf(env, ctx.query) === undefined) {
    // Re-sending the state that is already there is a no-op, as in Synapse: widgets and
    // reconnecting clients re-assert state and should not flood the timeline.
    const current = room.stateEvent(p.type, stateKey)
    if (current !== undefined && current.event.sender === auth.userId && JSON.stringify(current.event.content) === JSON.stringify(content)) {
      await env.store.whenDurable(current.pos)
      return json({ event_id: current.event.event_id })
    }
  }
  return json(await sendOrDelay(ctx, p, undefined))
}

const getState = ({ env, auth, params, query }: RequestContext<Auth, "roomId" | "eventType", "stateKey">) => {
  const room = requireRoom(env.store, params.roomId)
  const pos = readablePos(room, auth.userId)
  const entry = room.stateEvent(params.eventType, params.stateKey ?? "", pos)
  if (entry === undefined) throw notFound("Event not found.")
  return json(query.get("format") === "event" ? clientEvent(entry, { now: env.now(), tokenKey: auth.tokenKey }) : entry.event.content)
}

export const routes: ReadonlyArray<Route> = [
  authed("PUT", `${CLIENT}/rooms/:roomId/send/:eventType/:txnId`, async (ctx) => {
    const { env, auth, params, body } = ctx
    const content = asObject(body)
    const room = requireRoom(env.store, params.roomId)
    if (params.eventType === "m.room.redaction") {
      const redacts = optString(content, "redacts")
      if (redacts === undefined) throw badJson("A redaction needs 'redacts' in its content.")
      return json(await sendOrDelay(ctx, redactionProposal(room, auth.userId, redacts, content), params.txnId))
    }
    return json(await sendOrDelay(ctx, { roomId: room.id, sender: auth.userId, type: params.eventType, content }, params.txnId))
  }),
  authed("PUT", `${CLIENT}/rooms/:roomId/state/:eventType/:stateKey`, putState),
  authed("PUT", `${CLIENT}/rooms/:roomId/state/:eventType`, putState),
  authed("GET", `${CLIENT}/rooms/:roomId/state/:eventType/:stateKey`, getState),
  authed("GET", `${CLIENT}/rooms/:roomId/state/:eventType`, getState),
  authed("GET", `${CLIENT}/rooms/:roomId/state`, ({ env, auth, params }) => {
    const room = requireRoom(env.store, params.roomId)
    const pos = readablePos(room, auth.userId)
    const viewer = { now: env.now(), tokenKey: auth.tokenKey }
    return json([...room.stateAt(pos === Infinity ? room.lastPos : pos).values()].map((e) => clientEvent(e, viewer)))
  }),
  authed("PUT", `${CLIENT}/rooms/:roomId/redact/:eventId/:txnId`, async ({ env, auth, params, body }) => {
    const { store } = env
    const room = requireRoom(store, params.roomId)
    const reason = optString(asObject(body), "reason")
    const txn = { tokenKey: auth.tokenKey, scope: `redact/${room.id}`, txnId: params.txnId }
    const earlier = store.txns.get(store.txnKey(txn))
    if (earlier !== undefined) {
      await store.whenDurable(room.byId.get(earlier)?.pos ?? 0)
      return json({ event_id: earlier })
    }
    const p = redactionProposal(room, auth.userId, params.eventId, reason === undefined ? {} : { reason })
    return json({ event_id: await writeEvent(store, p, txn) })
  }),
  authed("GET", `${CLIENT}/rooms/:roomId/messages`, ({ env, auth, params, query }) => {
    const room = requireRoom(env.store, params.roomId)
    const upper = Math.min(readablePos(room, auth.userId), env.store.durablePos)
    const dir = dirOf(query)
    const fromToken = tokenParam(query, "from")
    const from = fromToken ?? (dir === "b" ? upper : 0)
    const limit = Math.min(queryInt(query, "limit") ?? 10, MAX_PAGE)
    const filterJson = queryJson(query, "filter")
    const filter: EventFilter = eventFilter(filterJson)
    const page = paginate(room, auth.userId, dir, from, tokenParam(query, "to"), upper, limit, (e) => matchesEvent(filter, e.event))
    const viewer = { now: env.now(), tokenKey: auth.tokenKey }
    // With lazy-loaded members the client has no member list; send the senders' member events.
    const state =
      filterJson?.lazy_load_members === true
        ? [...new Set(page.chunk.map((e) => e.event.sender))].flatMap((u) => {
            const m = room.stateEvent("m.room.member", u, upper)
            return m === undefined ? [] : [clientEvent(m, viewer)]
          })
        : []
    return json({
      start: streamToken(from),
      ...(page.next !== undefined && { end: streamToken(page.next) }),
      chunk: page.chunk.map((e) => clientEvent(e, viewer)),
      state
    })
  }),
  authed("GET", `${CLIENT}/rooms/:roomId/event/:eventId`, ({ env, auth, params }) => {
    const { entry } = visibleEvent(env, auth, params.roomId, params.eventId)
    return json(clientEvent(entry, { now: env.now(), tokenKey: auth.tokenKey }))
  }),
  authed("GET", `${CLIENT}/rooms/:roomId/context/:eventId`, ({ env, auth, params, query }) => {
    const { room, entry } = visibleEvent(env, auth, params.roomId, params.eventId)
    const upper = Math.min(readablePos(room, auth.userId), env.store.durablePos)
    const limit = Math.min(queryInt(query, "limit") ?? 10, MAX_PAGE)
    const filter = eventFilter(queryJson(query, "filter"))
    const keep = (e: Entry) => matchesEvent(filter, e.event)
    const beforeCount = Math.floor(limit / 2)
    const before = paginate(room, auth.userId, "b", entry.pos - 1, undefined, upper, beforeCount, keep)
    const after = paginate(room, auth.userId, "f", entry.pos, undefined, upper, limit - beforeCount, keep)
    const viewer = { now: env.now(), tokenKey: auth.tokenKey }
    return json({
      event: clientEvent(entry, viewer),
      events_before: before.chunk.map((e) => clientEvent(e, viewer)),
      events_after: after.chunk.map((e) => clientEvent(e, viewer)),
      start: streamToken((before.chunk.at(-1) ?? entry).pos - 1),
      end: streamToken((after.chunk.at(-1) ?? entry).pos),
      state: [...room.stateAt(entry.pos).values()].map((e) => clientEvent(e, viewer))
    })
  }),
  authed("GET", "/_matrix/client/v1/rooms/:roomId/relations/:eventId", relations),
  authed("GET", "/_matrix/client/v1/rooms/:roomId/relations/:eventId/:relType", relations),
  authed("GET", "/_matrix/client/v1/rooms/:roomId/relations/:eventId/:relType/:eventType", relations),
  authed("POST", `${CLIENT}/rooms/:roomId/receipt/:receiptType/:eventId`, async ({ env, auth, params, body }) => {
    const room = requireRoom(env.store, params.roomId)
    await markRead(env, auth, room, params.receiptType, params.eventId, optString(asObject(body), "thread_id"))
    return json({})
  }),
  authed("POST", `${CLIENT}/rooms/:roomId/read_markers`, async ({ env, auth, params, body }) => {
    const room = requireRoom(env.store, params.roomId)
    const o = asObject(body)
    for (const type of receiptTypes) {
      const eventId = optString(o, type)
      if (eventId !== undefined) await markRead(env, auth, room, type, eventId, undefined)
    }
    return json({})
  }),
  // Typing notifications are accepted and dropped: they are ephemeral and nothing here needs them.
  authed("PUT", `${CLIENT}/rooms/:roomId/typing/:userId`, ({ env, auth, params, body }) => {
    if (params.userId !== auth.userId) throw forbidden("Cannot set another user's typing state.")
    const room = requireRoom(env.store, params.roomId)
    if (room.membershipAt(auth.userId) !== "join") throw forbidden(`User ${auth.userId} not in room ${room.id}`)
    if (typeof asObject(body).typing !== "boolean") throw badJson("'typing' must be a boolean.")
    return json({})
  })
]
