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
import type { ReadEventsPage, ReadEventsQuery, RoomEvent } from "@widgethost/core"
import { Direction, Filter, type MatrixClient, type MatrixEvent } from "matrix-js-sdk"
import { viaSdk } from "./sdk-errors.ts"
import { decryptionState, roomEventOf } from "./sdk-event.ts"

export interface ReadEventsOptions {
  /** `/messages` pages one `readEvents` may read (default 10). */
  readonly maxServerPages?: number
  /** Events per `/messages` page (default 50, at most 100). */
  readonly pageSize?: number
}

/** Our pagination token: the server page it points into and the last event already returned. */
interface PageCursor {
  readonly from?: string
  readonly after?: string
  readonly n: number
}
const TOKEN_PREFIX = "wjs1_"

const base64url = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
}
const unbase64url = (token: string): string => new TextDecoder().decode(Uint8Array.from(atob(token.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)))

const encodeCursor = (cursor: PageCursor): string => TOKEN_PREFIX + base64url(JSON.stringify(cursor))
const decodeCursor = (token: string | undefined, n: number): PageCursor => {
  if (token === undefined) return { n }
  if (!token.startsWith(TOKEN_PREFIX)) return { from: token, n }
  try {
    const cursor = JSON.parse(unbase64url(token.slice(TOKEN_PREFIX.length))) as PageCursor
    return typeof cursor.n === "number" && cursor.n > 0 && cursor.n <= 100 ? cursor : { n }
  } catch {
    return { n }
  }
}

const matchesQuery = (query: ReadEventsQuery, event: RoomEvent): boolean => {
  if (event.type !== query.type) return false
  if (query.stateKey === undefined) return event.state_key === undefined && (query.msgtype === undefined || event.content["msgtype"] === query.msgtype)
  return event.state_key !== undefined && (query.stateKey === true || event.state_key === query.stateKey)
}

export const readEvents = async (client: MatrixClient, query: ReadEventsQuery, options: ReadEventsOptions = {}): Promise<ReadEventsPage> => {
  if (query.limit <= 0) return { events: [] }
  const maxServerPages = options.maxServerPages ?? 10
  let cursor = decodeCursor(query.from, Math.min(100, Math.max(options.pageSize ?? 50, query.limit)))
  const filter = new Filter(client.getUserId())
  filter.setDefinition({ room: { timeline: { types: query.type === "m.room.encrypted" ? [query.type] : [query.type, "m.room.encrypted"] } } })
  const mapper = client.getEventMapper({ preventReEmit: true, decrypt: false })
  const room = client.getRoom(query.roomId)
  const out: Array<RoomEvent> = []
  for (let page = 0; page < maxServerPages; page++) {
    const res = await viaSdk(() => client.createMessagesRequest(query.roomId, cursor.from ?? null, cursor.n, query.dir === "f" ? Direction.Forward : Direction.Backward, filter))
    const chunk = Array.isArray(res.chunk) ? res.chunk : []
    const start = cursor.after === undefined ? 0 : chunk.findIndex((e) => e.event_id === cursor.after) + 1
    const end = typeof res.end === "string" && chunk.length > 0 ? res.end : undefined
    for (let i = start; i < chunk.length; i++) {
      const event = await decrypted(client, room?.findEventById(chunk[i]!.event_id) ?? mapper({ ...chunk[i]!, room_id: query.roomId }))
      if (event === undefined || !matchesQuery(query, event)) continue
      out.push(event)
      if (out.length === query.limit) {
        const more = i + 1 < chunk.length ? encodeCursor({ ...(cursor.from === undefined ? {} : { from: cursor.from }), after: event.event_id, n: cursor.n }) : end === undefined ? undefined : encodeCursor({ from: end, n: cursor.n })
        return more === undefined ? { events: out } : { events: out, end: more }
      }
    }
    if (end === undefined) return { events: out }
    cursor = { from: end, n: cursor.n }
  }
  // Page budget spent: what was found, and where to go on.
  return { events: out, end: encodeCursor(cursor) }
}

/** The event decrypted by the client (without telling the client's listeners), or undefined when it cannot be. */
export const decrypted = async (client: MatrixClient, event: MatrixEvent): Promise<RoomEvent | undefined> => {
  if (decryptionState(event) === "decrypting") await client.decryptEventIfNeeded(event, { emit: false })
  return decryptionState(event) === "ready" ? roomEventOf(event) : undefined
}
