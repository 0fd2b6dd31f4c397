/**
 * `readEvents` through a matrix-js-sdk client: the room's `/messages` (the client's own request,
 * with its auth), each event decrypted by the client's crypto before the query's filter sees it
 * (the server can only filter on the wire type, so `m.room.encrypted` events come too). An
 * event the client already holds in its room is taken from there, decrypted as it is (the
 * account's own encrypted sends included).
 *
 * Pagination: a page may end inside a server page, so our `end` token names the server page and
 * the last event already returned (opaque to widgets; a plain server token is taken too). At most
 * `maxServerPages` server pages are read per call; then what was found is answered with an `end`
 * to go on from.
 */
import { matchesReadEventsQuery, pageCursors, type ReadEventsPage, type ReadEventsQuery, type RoomEvent } from "@widgethost/core"
import { Direction, Filter, type MatrixClient, type MatrixEvent } from "matrix-js-sdk"
import { viaSdk } from "./sdk-errors.ts"
import { decryptionState, roomEventOf } from "./sdk-event.ts"

export interface ReadEventsOptions {
  /** `/messages` pages one `readEvents` may read (default 10). */
  readonly maxServerPages?: number
  /** Events per `/messages` page (default 50, at most 100). */
  readonly pageSize?: number
}

const cursors = pageCursors("wjs1_", 100)
const encodeCursor = cursors.encode
const decodeCursor = cursors.decode

export const readEvents = async (client: MatrixClient, query: ReadEventsQuery, options: ReadEventsOptions = {}): Promise<ReadEventsPage> => {
  if (query.limit <= 0) return { events: [] }
  const maxServerPages = options.maxServerPages ?? 10
  let cursor = decodeCursor(query.from, Math.min(100, Math.max(options.pageSize ?? 50, query.limit)))
  const filter = new Filter(client.getUserId())
  filter.setDefinition({ room: { timeline: { types: query.type === "m.room.encrypted" ? [query.type] : [query.type, "m.room.encrypted"] } } })
  const mapper = client.getEventMapper({ preventReEmit: true, decrypt: false })
  const room = client.getRoom(query.roomId)
  const out: Array<RoomEvent> = []
  // Encrypted events in the stretch read that the client could not decrypt: told, never a silent gap.
  let withheld = 0
  const answer = (end?: string): ReadEventsPage => ({ events: out, ...(end === undefined ? {} : { end }), ...(withheld > 0 ? { withheld } : {}) })
  for (let page = 0; page < maxServerPages; page++) {
    const res = await viaSdk(() => client.createMessagesRequest(query.roomId, cursor.from ?? null, cursor.n, query.dir === "f" ? Direction.Forward : Direction.Backward, filter))
    const chunk = Array.isArray(res.chunk) ? res.chunk : []
    const start = cursor.after === undefined ? 0 : chunk.findIndex((e) => e.event_id === cursor.after) + 1
    const end = typeof res.end === "string" && chunk.length > 0 ? res.end : undefined
    for (let i = start; i < chunk.length; i++) {
      const sdkEvent = room?.findEventById(chunk[i]!.event_id) ?? mapper({ ...chunk[i]!, room_id: query.roomId })
      const event = await decrypted(client, sdkEvent)
      if (event === undefined && sdkEvent.isEncrypted()) withheld++
      if (event === undefined || !matchesReadEventsQuery(query, event)) continue
      out.push(event)
      if (out.length === query.limit) {
        const more = i + 1 < chunk.length ? encodeCursor({ ...(cursor.from === undefined ? {} : { from: cursor.from }), after: event.event_id, n: cursor.n }) : end === undefined ? undefined : encodeCursor({ from: end, n: cursor.n })
        return answer(more)
      }
    }
    if (end === undefined) return answer()
    cursor = { from: end, n: cursor.n }
  }
  // Page budget spent: what was found, and where to go on.
  return answer(encodeCursor(cursor))
}

/** The event decrypted by the client (without telling the client's listeners), or undefined when it cannot be. */
export const decrypted = async (client: MatrixClient, event: MatrixEvent): Promise<RoomEvent | undefined> => {
  if (decryptionState(event) === "decrypting") await client.decryptEventIfNeeded(event, { emit: false })
  return decryptionState(event) === "ready" ? roomEventOf(event) : undefined
}
