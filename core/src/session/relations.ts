/**
 * MSC3869 `read_relations` (also `org.matrix.msc3869.read_relations`): one page of an event's
 * relations, `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`
 * on the widget's behalf. The proposal adds no capability: the room must be one the widget may use
 * (its own, or one granted by `m.timeline:`, as for `read_events`), and the chunk holds only events
 * the widget may receive, by the MSC2762 rules `read_events` applies (state or message-like, state
 * keys, msgtypes; decrypted by the port). The others are dropped, as the text says ("silently
 * dropped"), so a page may hold fewer than `limit` events; its tokens still lead on.
 */
import { ProtocolError } from "../protocol-error.ts"
import type { RelationsQuery } from "../homeserver-port.ts"
import { quoteFields, unservedFields } from "./fields.ts"
import type { CallResult } from "./input.ts"
import type { PendingCall, RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

/** The request's fields, exactly MSC3869's (`direction`, not `/relations`'s own `dir`). */
const FIELDS: ReadonlySet<string> = new Set(["event_id", "room_id", "rel_type", "event_type", "limit", "from", "to", "direction"])

const optionalString = (value: unknown): value is string | undefined => value === undefined || (typeof value === "string" && value.length > 0)

/** Validates `data` into a query (less the room), or says what is wrong. */
const relationsQuery = (data: Readonly<Record<string, unknown>>, maxLimit: number): Omit<RelationsQuery, "roomId"> | string => {
  const { event_id: eventId, rel_type: relType, event_type: eventType, limit, from, to, direction } = data
  if (typeof eventId !== "string" || eventId.length === 0) return "event_id must be a non-empty string"
  if (!optionalString(relType)) return "rel_type must be a non-empty string when present"
  if (!optionalString(eventType)) return "event_type must be a non-empty string when present"
  if (limit !== undefined && !(typeof limit === "number" && Number.isSafeInteger(limit) && limit > 0)) return "limit must be a positive integer when present"
  if (!optionalString(from)) return "from must be a pagination token string when present"
  if (!optionalString(to)) return "to must be a pagination token string when present"
  if (direction !== undefined && direction !== "b" && direction !== "f") return 'direction must be "b" or "f" when present'
  return {
    eventId,
    ...(relType === undefined ? {} : { relType }),
    ...(eventType === undefined ? {} : { eventType }),
    // Every event may cost a decryption: a page is bounded, and its next_batch leads on.
    limit: Math.min(limit ?? maxLimit, maxLimit),
    ...(from === undefined ? {} : { from }),
    ...(to === undefined ? {} : { to }),
    ...(direction === undefined ? {} : { dir: direction })
  }
}

/** fromWidget `read_relations`. */
export const readRelations = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const extra = unservedFields(data, FIELDS)
  if (extra.length > 0) return s.fail(raw, ProtocolError.Unsupported({ what: `read_relations has no field ${quoteFields(extra)}; nothing was read` }))
  const query = relationsQuery(data, s.state.config.limits.readEventsMaxLimit)
  if (typeof query === "string") return s.fail(raw, ProtocolError.Malformed({ issue: query }))
  const roomIdField = data.room_id
  if (!optionalString(roomIdField)) return s.fail(raw, ProtocolError.Malformed({ issue: "room_id must be a non-empty string when present" }))
  const { permissions, homeRoom } = s.state
  // MSC3869: "When undefined, the client should look in the user's currently viewed room".
  const roomId = roomIdField ?? homeRoom
  if (roomId === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "no room_id given and the user is viewing no room" }))
  if (!permissions.mayUseRoom(roomId, homeRoom)) return s.fail(raw, ProtocolError.NotAllowed({ what: `reading relations in room ${roomId} (needs m.timeline:${roomId})` }))
  s.start(raw)
  s.call({ _tag: "ReadRelations", query: { roomId, ...query } }, { _tag: "Relations", raw, roomId, ...(query.eventType === undefined ? {} : { eventType: query.eventType }) })
}

/** The homeserver's page: keep what the widget may receive, pass the tokens on as they came. */
export const onRelations = (s: Stepper, pending: Extract<PendingCall, { _tag: "Relations" }>, result: CallResult): void => {
  const { raw, roomId, eventType } = pending
  if (result._tag === "Failed") return s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
  if (result._tag !== "Relations") return s.fail(raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
  const { permissions, homeRoom } = s.state
  // The port filters too; we check again, as the port is not the guard. The room is checked now,
  // not only when asked: an account widget may have followed the user to another room meanwhile.
  const chunk = !permissions.mayUseRoom(roomId, homeRoom)
    ? []
    : result.value.events.filter((event) => event.room_id === roomId && (eventType === undefined || event.type === eventType) && permissions.mayReceive(event))
  const { nextBatch, prevBatch } = result.value
  s.reply(raw, { chunk, ...(nextBatch === undefined ? {} : { next_batch: nextBatch }), ...(prevBatch === undefined ? {} : { prev_batch: prevBatch }) })
}
