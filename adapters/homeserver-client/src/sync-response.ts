import type { RawEvent } from "./crypto.ts"
import { eventsOf, isObject } from "./json-shapes.ts"

/**
 * What the sync loop reads of a `/sync` answer: the next token and, per joined or left room, its
 * state and timeline sections. The device part (to-device, device lists, key counts) stays in
 * `body` for the crypto machine. Malformed parts read as empty: an answer never throws.
 */
export interface SyncResponse {
  readonly body: Readonly<Record<string, unknown>>
  readonly nextBatch: string | undefined
  /** Joined rooms first, then left ones, each in the answer's order. */
  readonly rooms: ReadonlyArray<SyncRoom>
}

export interface SyncRoom {
  readonly roomId: string
  readonly joined: boolean
  readonly state: ReadonlyArray<RawEvent>
  readonly timeline: ReadonlyArray<RawEvent>
  /** The server left events out before `timeline`: a gap to fill from `prevBatch` back. */
  readonly limited: boolean
  readonly prevBatch: string | undefined
}

export const readSyncResponse = (body: unknown): SyncResponse => {
  const res = isObject(body) ? body : {}
  const rooms: Array<SyncRoom> = []
  const byState = isObject(res["rooms"]) ? res["rooms"] : {}
  for (const [section, joined] of [
    ["join", true],
    ["leave", false]
  ] as const) {
    const byRoom = isObject(byState[section]) ? byState[section] : {}
    for (const [roomId, room] of Object.entries(byRoom)) {
      if (!isObject(room)) continue
      const timeline = isObject(room["timeline"]) ? room["timeline"] : {}
      const prevBatch = timeline["prev_batch"]
      rooms.push({
        roomId,
        joined,
        state: eventsOf(room["state"]),
        timeline: eventsOf(timeline),
        limited: timeline["limited"] === true,
        prevBatch: typeof prevBatch === "string" ? prevBatch : undefined
      })
    }
  }
  return { body: res, nextBatch: typeof res["next_batch"] === "string" ? res["next_batch"] : undefined, rooms }
}
