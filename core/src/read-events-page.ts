/**
 * What every homeserver port's `readEvents` shares: whether an event answers the query, and the
 * port's own pagination token (the server page it points into, the last event already returned),
 * opaque to the widget. Pure and browser-safe (no Buffer).
 */
import type { ReadEventsQuery } from "./homeserver-port.ts"
import type { RoomEvent } from "./matrix.ts"

export const matchesReadEventsQuery = (query: ReadEventsQuery, event: RoomEvent): boolean => {
  if (event.type !== query.type) return false
  if (query.stateKey === undefined) return event.state_key === undefined && (query.msgtype === undefined || event.content["msgtype"] === query.msgtype)
  return event.state_key !== undefined && (query.stateKey === true || event.state_key === query.stateKey)
}

export interface PageCursor {
  readonly from?: string
  readonly after?: string
  readonly n: number
}

const base64url = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")
}
const unbase64url = (token: string): string => new TextDecoder().decode(Uint8Array.from(atob(token.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0)))

/**
 * A port's cursor tokens under its own `prefix`; a token without it is the server's own (`from`).
 * A token that does not decode, or whose page size is not in 1..`maxPageSize`, starts afresh.
 */
export const pageCursors = (prefix: string, maxPageSize = Number.POSITIVE_INFINITY) => ({
  encode: (cursor: PageCursor): string => prefix + base64url(JSON.stringify(cursor)),
  decode: (token: string | undefined, n: number): PageCursor => {
    if (token === undefined) return { n }
    if (!token.startsWith(prefix)) return { from: token, n }
    try {
      const cursor = JSON.parse(unbase64url(token.slice(prefix.length))) as PageCursor
      return typeof cursor.n === "number" && cursor.n > 0 && cursor.n <= maxPageSize ? cursor : { n }
    } catch {
      return { n }
    }
  }
})
