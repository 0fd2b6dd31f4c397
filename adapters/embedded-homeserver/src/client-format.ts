import type { JsonObject } from "./decode.ts"
import type { Entry } from "./rooms.ts"

/**
 * Serves a stored event in the client-server "ClientEvent" format. `unsigned` is computed here,
 * at read time: `age` depends on when it is read, `transaction_id` only goes back to the access
 * token that sent it (that is how a client matches its local echo), and `redacted_because`
 * appears once a redaction exists.
 */
export interface Viewer {
  readonly now: number
  readonly tokenKey?: string
}

export const clientEvent = (entry: Entry, viewer: Viewer, withRoomId = true): JsonObject => {
  const e = entry.event
  const unsigned: JsonObject = { age: Math.max(0, viewer.now - e.origin_server_ts) }
  if (entry.txn !== undefined && entry.txn.tokenKey === viewer.tokenKey) unsigned.transaction_id = entry.txn.txnId
  if (entry.replaces !== undefined) {
    unsigned.prev_content = entry.replaces.event.content
    unsigned.replaces_state = entry.replaces.event.event_id
    unsigned.prev_sender = entry.replaces.event.sender
  }
  if (entry.redactedBy !== undefined) unsigned.redacted_because = clientEvent(entry.redactedBy, viewer, true)
  return {
    type: e.type,
    content: e.content,
    sender: e.sender,
    origin_server_ts: e.origin_server_ts,
    event_id: e.event_id,
    ...(withRoomId && { room_id: e.room_id }),
    ...(e.state_key !== undefined && { state_key: e.state_key }),
    ...(e.redacts !== undefined && { redacts: e.redacts }),
    unsigned
  }
}

/** The "stripped state" of invites and room previews: enough to render, nothing more. */
export const strippedEvent = (entry: Entry): JsonObject => ({
  type: entry.event.type,
  state_key: entry.event.state_key ?? "",
  content: entry.event.content,
  sender: entry.event.sender
})
