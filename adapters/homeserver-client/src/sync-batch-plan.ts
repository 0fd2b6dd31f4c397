import type { RawEvent } from "./crypto.ts"
import { hasRecent, type RecentIds } from "./recent-event-ids.ts"
import type { SyncRoom } from "./sync-response.ts"

/**
 * What of a `/sync` batch is new, room by room (pure, for the sync loop machine): on the first
 * sync the timelines are history, passed over; afterwards a room's new events are its filled gap
 * (if any) then its timeline, oldest first, minus what the recent-id window holds and minus
 * repeats within the batch.
 */

/** One room of a batch, as the shell takes it in, in this order. */
export interface RoomIntake {
  readonly roomId: string
  /** The `state` and whole `timeline` sections, for what the shell keeps of rooms (encryption, members). */
  readonly state: ReadonlyArray<RawEvent>
  readonly timeline: ReadonlyArray<RawEvent>
  /** New events for the decrypting timeline, oldest first: a filled gap, then the timeline, without duplicates. */
  readonly fresh: ReadonlyArray<RawEvent>
  /** First sync passed over: the room's position becomes its newest event, nothing is delivered. */
  readonly passOverTo?: string
}

/** One `limited` room's walk back from `prev_batch` to the last event taken in. */
export interface GapWalk {
  readonly last: string
  /** Newest first, as `/messages?dir=b` gives them. */
  readonly missed: ReadonlyArray<RawEvent>
  readonly done: boolean
}

export interface PlannedRoom {
  readonly intake: RoomIntake
  /** Committed to the window and `lastSeen` once the room has been taken in. */
  readonly ids: ReadonlyArray<string>
  readonly newest: string | undefined
  readonly duplicates: number
}

/** Per room, what is new: a pass-over on the first sync, else the gap's events then the timeline's, minus the window. */
export const planRooms = (rooms: ReadonlyArray<SyncRoom>, passOver: boolean, gaps: ReadonlyMap<string, GapWalk>, recent: RecentIds): Array<PlannedRoom> => {
  const inBatch = new Set<string>()
  return rooms.map((room) => {
    const newest = room.timeline.findLast((raw) => typeof raw["event_id"] === "string")?.["event_id"] as string | undefined
    const base = { roomId: room.roomId, state: room.state, timeline: room.timeline }
    if (passOver) {
      const ids = room.timeline.flatMap((raw) => (typeof raw["event_id"] === "string" ? [raw["event_id"]] : []))
      return { intake: { ...base, fresh: [], ...(newest === undefined ? {} : { passOverTo: newest }) }, ids, newest, duplicates: 0 }
    }
    const gap = gaps.get(room.roomId)
    const events = gap === undefined ? room.timeline : [...gap.missed.slice().reverse(), ...room.timeline]
    const fresh: Array<RawEvent> = []
    const ids: Array<string> = []
    let duplicates = 0
    for (const raw of events) {
      const id = raw["event_id"]
      if (typeof id !== "string") continue
      if (inBatch.has(id) || hasRecent(recent, id)) {
        duplicates += 1
        continue
      }
      inBatch.add(id)
      ids.push(id)
      fresh.push(raw)
    }
    return { intake: { ...base, fresh }, ids, newest, duplicates }
  })
}
