/**
 * MSC2762 room events: `send_event` and `read_events` from the widget, and delivery of new room
 * events to it. Every path checks type-level permission and room scope; a `send_event` field the
 * host does not serve (`sender`, `event_id`, MSC4407's `sticky_duration_ms`, …) is refused, so
 * nothing of it reaches the homeserver and the widget is never told it was sent.
 */
import { type HomeserverRequest, WITHHELD_FIELD } from "../homeserver-port.ts"
import { isStateEvent, type RoomEvent } from "../matrix.ts"
import { ProtocolError } from "../protocol-error.ts"
import { quoteFields, unservedFields } from "./fields.ts"
import type { CallResult } from "./input.ts"
import { deliverStateChange } from "./state-sync.ts"
import { isServing, type Gather, type RawRequest, type ReadRequest } from "./state.ts"
import type { Stepper } from "./step.ts"
import { isObject } from "../is-object.ts"


const describeEvent = (type: string, stateKey: string | undefined) =>
  stateKey === undefined ? `sending ${type} events` : `sending ${type} state events with state key "${stateKey}"`

/**
 * The `send_event` fields this host serves: MSC2762's `type`, `content`, `state_key`, `room_id`,
 * and MSC4157's `delay` with matrix-widget-api's `parent_delay_id`. Any other field is refused
 * before anything is sent, so a widget is never told "sent" for a request that was only partly
 * carried out: MSC4407's `sticky_duration_ms` above all (a sticky event sent as a plain one would
 * not reach clients across a gappy sync), and fields such as `sender` or `event_id` that a widget
 * cannot set.
 */
const SEND_EVENT_FIELDS: ReadonlySet<string> = new Set(["type", "content", "state_key", "room_id", "delay", "parent_delay_id"])

/** Why the first unserved field of a `send_event` cannot be served. */
const unservedSendField = (fields: ReadonlyArray<string>): string =>
  fields.includes("sticky_duration_ms")
    ? "sticky_duration_ms (MSC4407 sticky events): no homeserver here supports MSC4354 sticky events; nothing was sent"
    : `send_event has no field ${quoteFields(fields)}; nothing was sent`

/** fromWidget `send_event`, with and without `state_key`, optional `room_id` and `delay` (MSC4157). */
export const sendEvent = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const unserved = unservedFields(data, SEND_EVENT_FIELDS)
  if (unserved.length > 0) return s.fail(raw, ProtocolError.Unsupported({ what: unservedSendField(unserved) }))
  const { type, content, state_key: stateKey, room_id: roomIdField, delay, parent_delay_id: parentDelayId } = data
  if (typeof type !== "string" || type.length === 0) return s.fail(raw, ProtocolError.Malformed({ issue: "type must be a non-empty string" }))
  if (!isObject(content)) return s.fail(raw, ProtocolError.Malformed({ issue: "content must be an object" }))
  if (stateKey !== undefined && typeof stateKey !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "state_key must be a string when present" }))
  if (roomIdField !== undefined && typeof roomIdField !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "room_id must be a string when present" }))
  if (delay !== undefined && !(typeof delay === "number" && Number.isSafeInteger(delay) && delay >= 0)) return s.fail(raw, ProtocolError.Malformed({ issue: "delay must be a non-negative integer of milliseconds" }))
  if (parentDelayId !== undefined && typeof parentDelayId !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "parent_delay_id must be a string when present" }))

  const { permissions, homeRoom } = s.state
  const roomId = roomIdField ?? homeRoom
  if (roomId === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "no room_id given and the user is viewing no room" }))
  if (!permissions.mayUseRoom(roomId, homeRoom)) return s.fail(raw, ProtocolError.NotAllowed({ what: `using room ${roomId} (needs m.timeline:${roomId})` }))
  if (!permissions.maySend(stateKey === undefined ? { type, content } : { type, content, state_key: stateKey })) {
    return s.fail(raw, ProtocolError.NotAllowed({ what: describeEvent(type, stateKey) }))
  }
  if ((delay !== undefined || parentDelayId !== undefined) && !permissions.sendDelayedEvents) {
    return s.fail(raw, ProtocolError.NotAllowed({ what: "sending delayed events (needs m.send.delayed_event)" }))
  }
  if (type === "m.room.redaction" && stateKey === undefined) {
    // MSC2762: `redacts` in a redaction's content means "call /redact". Nowhere else does it.
    const redacts = content.redacts
    if (typeof redacts !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "an m.room.redaction needs content.redacts (the event id)" }))
    if (delay !== undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "redactions cannot be delayed" }))
    s.start(raw)
    s.call({ _tag: "Redact", roomId, eventId: redacts, ...(typeof content.reason === "string" ? { reason: content.reason } : {}) }, { _tag: "Answer", raw, format: "event" })
    return
  }
  s.start(raw)
  // The plain message, by far the most common, is built as a literal: the spreads cost more than the rest of the request.
  const request: SendEventCall =
    stateKey === undefined && delay === undefined && parentDelayId === undefined
      ? { _tag: "SendEvent", roomId, type, content }
      : {
          _tag: "SendEvent",
          roomId,
          type,
          content,
          ...(stateKey === undefined ? {} : { stateKey }),
          ...(delay === undefined ? {} : { delayMs: delay }),
          ...(parentDelayId === undefined ? {} : { parentDelayId })
        }
  s.call(request, { _tag: "Answer", raw, format: "event" })
}

type SendEventCall = Extract<HomeserverRequest, { _tag: "SendEvent" }>

/** Validates a `read_events` request into a query, or says what is wrong. */
const readQuery = (data: Readonly<Record<string, unknown>>, maxLimit: number): ReadRequest | string => {
  const { type, state_key: stateKey, msgtype, limit, room_ids: roomIds, from, dir } = data
  if (typeof type !== "string" || type.length === 0) return "type must be a non-empty string"
  if (stateKey !== undefined && typeof stateKey !== "string" && stateKey !== true) return "state_key must be a string or true when present"
  if (msgtype !== undefined && typeof msgtype !== "string") return "msgtype must be a string when present"
  if (msgtype !== undefined && stateKey !== undefined) return "msgtype and state_key cannot be combined"
  if (limit !== undefined && !(typeof limit === "number" && Number.isSafeInteger(limit))) return "limit must be an integer"
  if (typeof limit === "number" && limit < 0) return "limit must not be negative"
  if (roomIds !== undefined && roomIds !== "*" && !(Array.isArray(roomIds) && roomIds.every((r) => typeof r === "string"))) return 'room_ids must be an array of room ids or "*"'
  if (from !== undefined && typeof from !== "string") return "from must be a pagination token string"
  if (dir !== undefined && dir !== "b" && dir !== "f") return 'dir must be "b" or "f"'
  return {
    type,
    ...(stateKey === undefined ? {} : { stateKey }),
    ...(msgtype === undefined ? {} : { msgtype }),
    limit: Math.min(typeof limit === "number" ? limit : maxLimit, maxLimit),
    rooms: roomIds === "*" ? "*" : (roomIds ?? []),
    ...(from === undefined ? {} : { from }),
    dir: dir ?? "b"
  }
}

/** fromWidget `read_events` (also `org.matrix.msc2876.read_events`). */
export const readEvents = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const query = readQuery(data, s.state.config.limits.readEventsMaxLimit)
  if (typeof query === "string") return s.fail(raw, ProtocolError.Malformed({ issue: query }))
  const { permissions, homeRoom } = s.state
  if (!permissions.mayRead(query)) return s.fail(raw, ProtocolError.NotAllowed({ what: `reading ${query.type} events` }))

  let rooms: ReadonlyArray<string>
  if (query.rooms === "*") {
    rooms = [...new Set([...(homeRoom === undefined ? [] : [homeRoom]), ...permissions.timelineRooms])]
  } else if (query.rooms.length === 0) {
    if (homeRoom === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "no room_ids given and the user is viewing no room" }))
    rooms = [homeRoom]
  } else {
    const refused = query.rooms.filter((room) => !permissions.mayUseRoom(room, homeRoom))
    if (refused.length > 0) return s.fail(raw, ProtocolError.NotAllowed({ what: `reading rooms ${refused.join(", ")} (needs m.timeline)` }))
    rooms = [...new Set(query.rooms)]
  }
  const everyRoom = query.rooms === "*" && permissions.allRooms
  if (query.from !== undefined && (everyRoom || rooms.length !== 1)) {
    return s.fail(raw, ProtocolError.Malformed({ issue: "from (pagination) needs exactly one room" }))
  }
  if (query.limit === 0 || (!everyRoom && rooms.length === 0)) return s.reply(raw, { events: [] })

  s.start(raw)
  const gather = s.nextSeq()
  if (everyRoom) {
    s.putGather(gather, { _tag: "Read", raw, query, remaining: 1, parts: [], failed: false })
    s.call({ _tag: "JoinedRooms" }, { _tag: "ReadRooms", gather })
    return
  }
  readIn(s, gather, raw, query, rooms)
}

const readIn = (s: Stepper, gather: number, raw: RawRequest, query: ReadRequest, rooms: ReadonlyArray<string>): void => {
  s.putGather(gather, { _tag: "Read", raw, query, remaining: rooms.length, parts: rooms.map(() => undefined), failed: false })
  if (rooms.length === 0) return finishRead(s, gather)
  rooms.forEach((roomId, roomIndex) => {
    s.call(
      {
        _tag: "ReadEvents",
        query: {
          roomId,
          type: query.type,
          limit: query.limit,
          dir: query.dir,
          ...(query.stateKey === undefined ? {} : { stateKey: query.stateKey }),
          ...(query.msgtype === undefined ? {} : { msgtype: query.msgtype }),
          ...(query.from === undefined ? {} : { from: query.from })
        }
      },
      { _tag: "ReadPart", gather, roomIndex }
    )
  })
}

export const onReadRooms = (s: Stepper, gather: number, result: CallResult): void => {
  const pending = s.state.gathers.get(gather)
  if (pending?._tag !== "Read") return
  if (result._tag !== "Rooms") {
    s.putGather(gather, undefined)
    return failCall(s, pending.raw, result)
  }
  const { permissions, homeRoom } = s.state
  readIn(s, gather, pending.raw, pending.query, [...new Set(result.value)].filter((room) => permissions.mayUseRoom(room, homeRoom)))
}

export const onReadPart = (s: Stepper, gather: number, roomIndex: number, result: CallResult): void => {
  const pending = s.state.gathers.get(gather)
  if (pending?._tag !== "Read") return
  if (result._tag === "Failed" && !pending.failed) {
    // The first failure answers the widget; the other parts are ignored when they come in.
    s.fail(pending.raw, ProtocolError.Homeserver({ error: result.error }))
  }
  const parts = [...pending.parts]
  if (result._tag === "Page") parts[roomIndex] = result.value
  const next: Gather = { ...pending, parts, remaining: pending.remaining - 1, failed: pending.failed || result._tag === "Failed" }
  s.putGather(gather, next)
  if (next.remaining === 0) finishRead(s, gather)
}

/** Does this event answer the query? The port filters too; we check again, as the port is not the guard. */
const answers = (query: ReadRequest, event: RoomEvent): boolean => {
  if (event.type !== query.type) return false
  if (query.stateKey === undefined) return event.state_key === undefined && (query.msgtype === undefined || event.content.msgtype === query.msgtype)
  return event.state_key !== undefined && (query.stateKey === true || event.state_key === query.stateKey)
}

const finishRead = (s: Stepper, gather: number): void => {
  const pending = s.state.gathers.get(gather)
  s.putGather(gather, undefined)
  if (pending?._tag !== "Read" || pending.failed) return
  const { permissions, homeRoom } = s.state
  const { query } = pending
  const keep = (event: RoomEvent) => answers(query, event) && permissions.mayReceive(event) && permissions.mayUseRoom(event.room_id, homeRoom)
  const present = pending.parts.filter((p) => p !== undefined)
  // Never a silent gap: what could not be decrypted in the stretch read is counted for the widget.
  const withheld = present.reduce((n, p) => n + (p.withheld !== undefined && p.withheld > 0 ? p.withheld : 0), 0)
  const told = withheld > 0 ? { [WITHHELD_FIELD]: withheld } : {}
  if (present.length === 1 && pending.parts.length === 1) {
    const page = present[0]!
    const events = page.events.filter(keep).slice(0, query.limit)
    return s.reply(pending.raw, page.end === undefined ? { events, ...told } : { events, end: page.end, ...told })
  }
  // Across rooms: newest first for "b", oldest first for "f"; ties keep room order, then page order.
  const merged = present.flatMap((page) => page.events.filter(keep))
  const order = query.dir === "b" ? -1 : 1
  const events = merged
    .map((event, index) => ({ event, index }))
    .sort((a, b) => order * (a.event.origin_server_ts - b.event.origin_server_ts) || a.index - b.index)
    .slice(0, query.limit)
    .map(({ event }) => event)
  s.reply(pending.raw, { events, ...told })
}

const failCall = (s: Stepper, raw: RawRequest, result: CallResult): void => {
  if (result._tag === "Failed") s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
  else s.fail(raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
}

/** A homeserver answer for a single-call request: shape the response for the widget. */
export const onAnswer = (s: Stepper, raw: RawRequest, format: "event" | "empty" | "body", result: CallResult): void => {
  if (result._tag === "Failed") return failCall(s, raw, result)
  if (format === "empty") return s.reply(raw, {})
  if (format === "body") return result._tag === "Body" ? s.reply(raw, result.value) : failCall(s, raw, result)
  if (result._tag !== "Sent") return failCall(s, raw, result)
  const { roomId, eventId, delayId } = result.value
  s.reply(raw, { room_id: roomId, ...(eventId === undefined ? {} : { event_id: eventId }), ...(delayId === undefined ? {} : { delay_id: delayId }) })
}

/**
 * A new room event from the homeserver; the router already picked this session, we check again.
 *
 * The widget's own events arrive here too (the homeserver echoes what it accepted to the
 * account's sync) and are delivered like anyone's: a message-like event as `send_event`, a state
 * event as a state change (`update_state`, or `send_event` to a widget without it), each once.
 * matrix-widget-api's host feeds state events through both `feedEvent` and `feedStateUpdate`, so
 * an update_state widget gets its own state event twice there; here once. The echo and the answer
 * to the widget's `send_event` race; the widget matches them by `event_id`
 * (test/conformance/own-echo.test.ts).
 */
export const deliverRoomEvent = (s: Stepper, event: RoomEvent): void => {
  if (!isServing(s.phase)) return // MSC2762: only events received after the session is established
  const { permissions, homeRoom } = s.state
  if (!permissions.mayUseRoom(event.room_id, homeRoom) || !permissions.mayReceive(event)) return
  if (isStateEvent(event)) return deliverStateChange(s, event)
  s.sendRequest("send_event", event, "delivery")
}
