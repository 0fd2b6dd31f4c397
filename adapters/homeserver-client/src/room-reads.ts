import { Effect } from "effect"
import { type HomeserverError, matchesReadEventsQuery, pageCursors, type ReadEventsPage, type ReadEventsQuery, type RoomEvent } from "@widgethost/core"
import { tryPromise } from "./account-calls.ts"
import type { E2ee, RawEvent } from "./crypto.ts"
import { arrayOf, isObject } from "./json-shapes.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

/**
 * The port's reads of room history and state: they decrypt before they filter, so a widget's
 * filter sees what the event is, not its ciphertext, and an event that does not decrypt is
 * withheld (and counted), never handed over encrypted.
 */

// Our tokens are base64url JSON in both encodings, so tokens issued before this change still decode.
const cursors = pageCursors("whp1_")
const encodeCursor = cursors.encode
const decodeCursor = cursors.decode

export interface ReadLimits {
  /** `/messages` pages one `readEvents` may fetch. */
  readonly maxServerPages: number
  /** Events per `/messages` page. */
  readonly pageSize: number
}

export const roomReads = (http: MatrixHttp, e2ee: E2ee, limits: ReadLimits) => {
  const readEvents = (q: ReadEventsQuery): Effect.Effect<ReadEventsPage, HomeserverError> =>
    tryPromise("read events", async (signal) => {
      const out: Array<RoomEvent> = []
      // Encrypted events in the stretch read that did not decrypt: the widget is told (never a silent gap).
      let withheld = 0
      const answer = (end?: string): ReadEventsPage => ({ events: out, ...(end === undefined ? {} : { end }), ...(withheld > 0 ? { withheld } : {}) })
      let cursor = decodeCursor(q.from, Math.min(100, Math.max(limits.pageSize, q.limit)))
      if (q.limit <= 0) return { events: [] }
      // The server can only filter on the wire type; encrypted events must come too.
      const filter = JSON.stringify({ types: q.type === "m.room.encrypted" ? [q.type] : [q.type, "m.room.encrypted"] })
      for (let page = 0; page < limits.maxServerPages; page++) {
        const res = await http.request<Record<string, unknown>>({
          method: "GET",
          path: path`/_matrix/client/v3/rooms/${q.roomId}/messages`,
          query: { dir: q.dir, from: cursor.from, limit: cursor.n, filter },
          signal
        })
        const chunk = arrayOf(res["chunk"]).filter(isObject)
        let start = 0
        if (cursor.after !== undefined) start = chunk.findIndex((e) => e["event_id"] === cursor.after) + 1
        const end = typeof res["end"] === "string" && chunk.length > 0 ? res["end"] : undefined
        for (let i = start; i < chunk.length; i++) {
          const raw = chunk[i] as RawEvent
          const outcome = await e2ee.decryptRoomEvent(q.roomId, raw)
          if (outcome._tag !== "Clear" && outcome._tag !== "Decrypted") {
            if (raw["type"] === "m.room.encrypted") withheld++
            continue
          }
          if (!matchesReadEventsQuery(q, outcome.event)) continue
          out.push(outcome.event)
          if (out.length === q.limit) {
            const more = i + 1 < chunk.length ? encodeCursor({ ...(cursor.from === undefined ? {} : { from: cursor.from }), after: outcome.event.event_id, n: cursor.n }) : end === undefined ? undefined : encodeCursor({ from: end, n: cursor.n })
            return answer(more)
          }
        }
        if (end === undefined) return answer()
        cursor = { from: end, n: cursor.n }
      }
      // Page budget spent: hand back what we have and where to go on.
      return answer(encodeCursor(cursor))
    })

  const readState = (roomId: string, type: string, stateKey?: string): Effect.Effect<ReadonlyArray<RoomEvent>, HomeserverError> =>
    tryPromise("read state", async (signal) => {
      const res = await http.request<unknown>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/state`, signal })
      const out: Array<RoomEvent> = []
      for (const raw of arrayOf(res).filter(isObject)) {
        if (raw["type"] !== type || typeof raw["state_key"] !== "string" || (stateKey !== undefined && raw["state_key"] !== stateKey)) continue
        const outcome = await e2ee.decryptRoomEvent(roomId, raw)
        if (outcome._tag === "Clear" || outcome._tag === "Decrypted") out.push(outcome.event)
      }
      return out
    })

  return { readEvents, readState }
}
