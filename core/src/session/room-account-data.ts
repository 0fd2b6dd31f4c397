/**
 * `com.beeper.read_room_account_data`: the user's room account data of one type, as
 * matrix-widget-api defines it (no proposal text exists). Needs
 * `com.beeper.capabilities.receive.room_account_data:<type>` for exactly that type. `data` is
 * `{ type, room_ids? }` and the answer `{ events: [{ type, room_id, content }] }`, one entry per
 * room that has the data set (none is not an error).
 *
 * Rooms follow `read_events`: without `room_ids` the widget's own (or viewed) room; a list needs
 * `m.timeline:` for each room; `"*"` means every room the widget may use (with `m.timeline:*`,
 * every joined room). matrix-widget-api's host reads only the viewed room whatever `room_ids`
 * says; its widget side sends `room_ids`, so honouring them serves what the widget asked.
 */
import { ROOM_ACCOUNT_DATA_PREFIX } from "../capabilities.ts"
import { ProtocolError } from "../protocol-error.ts"
import { quoteFields, unservedFields } from "./fields.ts"
import type { CallResult } from "./input.ts"
import type { Gather, RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

const FIELDS: ReadonlySet<string> = new Set(["type", "room_ids"])

type AccountDataGather = Extract<Gather, { _tag: "AccountData" }>

export const readRoomAccountData = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const extra = unservedFields(data, FIELDS)
  if (extra.length > 0) return s.fail(raw, ProtocolError.Unsupported({ what: `read_room_account_data has no field ${quoteFields(extra)}; nothing was read` }))
  const { type, room_ids: roomIds } = data
  if (typeof type !== "string" || type.length === 0) return s.fail(raw, ProtocolError.Malformed({ issue: "type must be a non-empty string" }))
  if (roomIds !== undefined && roomIds !== "*" && !(Array.isArray(roomIds) && roomIds.every((r) => typeof r === "string"))) {
    return s.fail(raw, ProtocolError.Malformed({ issue: 'room_ids must be an array of room ids or "*"' }))
  }
  const { permissions, homeRoom } = s.state
  if (!permissions.mayReadRoomAccountData(type)) return s.fail(raw, ProtocolError.NotAllowed({ what: `reading room account data of type ${type} (needs ${ROOM_ACCOUNT_DATA_PREFIX}${type})` }))

  let rooms: ReadonlyArray<string>
  if (roomIds === "*") {
    rooms = [...new Set([...(homeRoom === undefined ? [] : [homeRoom]), ...permissions.timelineRooms])]
  } else if (roomIds === undefined || roomIds.length === 0) {
    if (homeRoom === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "no room_ids given and the user is viewing no room" }))
    rooms = [homeRoom]
  } else {
    const refused = (roomIds as ReadonlyArray<string>).filter((room) => !permissions.mayUseRoom(room, homeRoom))
    if (refused.length > 0) return s.fail(raw, ProtocolError.NotAllowed({ what: `reading rooms ${refused.join(", ")} (needs m.timeline)` }))
    rooms = [...new Set(roomIds as ReadonlyArray<string>)]
  }
  const everyRoom = roomIds === "*" && permissions.allRooms
  if (!everyRoom && rooms.length === 0) return s.reply(raw, { events: [] })

  s.start(raw)
  const gather = s.nextSeq()
  if (everyRoom) {
    s.putGather(gather, { _tag: "AccountData", raw, type, rooms: [], remaining: 1, parts: [], failed: false })
    s.call({ _tag: "JoinedRooms" }, { _tag: "AccountDataRooms", gather })
    return
  }
  readIn(s, gather, raw, type, rooms)
}

const readIn = (s: Stepper, gather: number, raw: RawRequest, type: string, rooms: ReadonlyArray<string>): void => {
  s.putGather(gather, { _tag: "AccountData", raw, type, rooms, remaining: rooms.length, parts: rooms.map(() => undefined), failed: false })
  if (rooms.length === 0) return finish(s, gather)
  rooms.forEach((roomId, roomIndex) => s.call({ _tag: "ReadRoomAccountData", roomId, type }, { _tag: "AccountDataPart", gather, roomIndex }))
}

const pendingGather = (s: Stepper, gather: number): AccountDataGather | undefined => {
  const pending = s.state.gathers.get(gather)
  return pending?._tag === "AccountData" ? pending : undefined
}

/** The joined rooms of an `m.timeline:*` widget arrived: read each one. */
export const onAccountDataRooms = (s: Stepper, gather: number, result: CallResult): void => {
  const pending = pendingGather(s, gather)
  if (pending === undefined) return
  if (result._tag !== "Rooms") {
    s.putGather(gather, undefined)
    if (result._tag === "Failed") return s.fail(pending.raw, ProtocolError.Homeserver({ error: result.error }))
    return s.fail(pending.raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
  }
  const { permissions, homeRoom } = s.state
  readIn(s, gather, pending.raw, pending.type, [...new Set(result.value)].filter((room) => permissions.mayUseRoom(room, homeRoom)))
}

export const onAccountDataPart = (s: Stepper, gather: number, roomIndex: number, result: CallResult): void => {
  const pending = pendingGather(s, gather)
  if (pending === undefined) return
  const failed = result._tag !== "AccountData"
  if (failed && !pending.failed) {
    // The first failure answers the widget; the other parts are ignored when they come in.
    if (result._tag === "Failed") s.fail(pending.raw, ProtocolError.Homeserver({ error: result.error }))
    else s.fail(pending.raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
  }
  const parts = [...pending.parts]
  if (result._tag === "AccountData") parts[roomIndex] = result.value
  s.putGather(gather, { ...pending, parts, remaining: pending.remaining - 1, failed: pending.failed || failed })
  if (pending.remaining === 1) finish(s, gather)
}

const finish = (s: Stepper, gather: number): void => {
  const pending = pendingGather(s, gather)
  s.putGather(gather, undefined)
  if (pending === undefined || pending.failed) return
  const { permissions, homeRoom } = s.state
  const events = pending.rooms.flatMap((roomId, index) => {
    const content = pending.parts[index]
    // Checked again at answer time: an account widget may have moved on to another room.
    return content === undefined || !permissions.mayUseRoom(roomId, homeRoom) ? [] : [{ type: pending.type, room_id: roomId, content }]
  })
  s.reply(pending.raw, { events })
}
