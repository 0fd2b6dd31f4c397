/**
 * The HTTP port's `readRelations` (MSC3869 behind it): one page of
 * `GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`, each
 * event decrypted before it is matched, as `readEvents` does. Undecryptable events are left out
 * (never ciphertext); the page's tokens are the server's, passed on unchanged.
 *
 * The server matches `eventType` on the wire type, and in an encrypted room every child is
 * `m.room.encrypted` on the wire: there the type is left off the path and matched here, after
 * decryption. The same happens when `eventType` comes without `relType`, which the path cannot
 * express (matrix-js-sdk drops the type then; we keep the widget's filter). Either way a page
 * may hold fewer than `limit` events; `nextBatch` still leads on.
 */
import type { Effect } from "effect"
import type { HomeserverError } from "@widgethost/core"
import type { RelationsPage, RelationsQuery } from "@widgethost/core"
import type { RoomEvent } from "@widgethost/core"
import { tryPromise } from "./account-calls.ts"
import type { E2ee } from "./crypto.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

export interface RelationsReaderDeps {
  readonly http: MatrixHttp
  readonly e2ee: Pick<E2ee, "decryptRoomEvent">
  /** The room's `m.room.encryption` content, or undefined when the room is not encrypted. */
  readonly roomEncryption: (roomId: string, signal: AbortSignal) => Promise<unknown>
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * The port method over `deps`.
 *
 * @example
 * const readRelations = relationsReader({ http, e2ee, roomEncryption })
 * await Effect.runPromise(readRelations({ roomId, eventId, relType: "m.annotation", limit: 20 }))
 */
export const relationsReader =
  (deps: RelationsReaderDeps) =>
  (q: RelationsQuery): Effect.Effect<RelationsPage, HomeserverError> =>
    tryPromise("read relations", async (signal) => {
      let serverType = q.relType === undefined ? undefined : q.eventType
      if (serverType !== undefined && (await deps.roomEncryption(q.roomId, signal)) !== undefined) serverType = undefined
      const base = path`/_matrix/client/v1/rooms/${q.roomId}/relations/${q.eventId}`
      const route = q.relType === undefined ? base : serverType === undefined ? base + path`/${q.relType}` : base + path`/${q.relType}/${serverType}`
      const res = await deps.http.request<Record<string, unknown>>({
        method: "GET",
        path: route,
        query: { from: q.from, to: q.to, limit: q.limit, dir: q.dir },
        signal
      })
      const events: Array<RoomEvent> = []
      for (const raw of (Array.isArray(res["chunk"]) ? res["chunk"] : []).filter(isObject)) {
        const outcome = await deps.e2ee.decryptRoomEvent(q.roomId, raw)
        if (outcome._tag !== "Clear" && outcome._tag !== "Decrypted") continue
        if (q.eventType !== undefined && outcome.event.type !== q.eventType) continue
        events.push(outcome.event)
      }
      const next = res["next_batch"]
      const prev = res["prev_batch"]
      return { events, ...(typeof next === "string" ? { nextBatch: next } : {}), ...(typeof prev === "string" ? { prevBatch: prev } : {}) }
    })
