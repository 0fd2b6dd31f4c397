import type { RoomEvent } from "@widgethost/core"
import type { E2ee, RawEvent } from "./crypto.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

/**
 * Reads what a widget missed in one room: the events after its position up to and including
 * `upTo` (the homeserver port's position when the widget's new session became ready), oldest
 * first and decrypted, over the plain client-server API (`/context` for a token at `upTo`, then
 * `/messages` backwards until an event the widget already has).
 *
 * Cost: at most `maxScan` events are fetched (pages of 100) and decrypted, whatever the widget
 * may receive: this is what bounds catching up in a busy room. Events that do not decrypt now are
 * left out and counted: the live path gave up on them too (it reports them), and if their key
 * still comes it delivers them late, as it does for every widget.
 */

export interface MissedEventsRequest {
  readonly roomId: string
  /** The newest event to return (inclusive). */
  readonly upTo: string
  /** Events the widget already has: the walk stops at the first it meets. */
  readonly seen: (eventId: string) => boolean
  /** Which decrypted events count (the widget's capabilities). */
  readonly keep: (event: RoomEvent) => boolean
  /** Events kept at most; older ones beyond it are skipped. Default 1000. */
  readonly maxEvents?: number
  /** Events fetched at most. Default 2000. */
  readonly maxScan?: number
  readonly signal?: AbortSignal
}

export interface MissedEvents {
  /** Oldest first. */
  readonly events: ReadonlyArray<RoomEvent>
  /**
   * Events the widget would receive that are not in `events`: the oldest, over `maxEvents`. `null`
   * when the walk stopped at `maxScan` before reaching what the widget has (then it is unknown).
   */
  readonly skipped: number | null
  /** Events left out because they did not decrypt. */
  readonly undecryptable: number
}

const PAGE = 100

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)
const chunkOf = (v: unknown): Array<RawEvent> => (Array.isArray(v) ? v.filter(isObject) : [])

/**
 * Walks back from `upTo` to what the widget has and returns what lies between, oldest first.
 *
 * @example
 * const missed = await readMissedEvents(port, { roomId, upTo: port.roomPositions().get(roomId)!, seen: (id) => journal.has(widget, roomId, id), keep: () => true })
 */
export const readMissedEvents = async (port: { readonly http: MatrixHttp; readonly e2ee: E2ee }, request: MissedEventsRequest): Promise<MissedEvents> => {
  const { roomId, upTo, seen, signal } = request
  const maxEvents = request.maxEvents ?? 1000
  const maxScan = request.maxScan ?? 2000
  if (seen(upTo)) return { events: [], skipped: 0, undecryptable: 0 }

  const signalOption = signal === undefined ? {} : { signal }
  // The context's first page: the event and those before it (newest first), and a token before them.
  const context = await port.http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/context/${upTo}`, query: { limit: 2 * PAGE }, ...signalOption })
  const newestFirst: Array<RawEvent> = []
  let page: Array<RawEvent> = [...(isObject(context["event"]) ? [context["event"]] : []), ...chunkOf(context["events_before"])]
  let from = page.length > 1 && typeof context["start"] === "string" ? context["start"] : undefined
  // Reached what the widget has, or the room's first event: nothing in between is unaccounted for.
  let complete = false
  walk: for (;;) {
    for (const raw of page) {
      const id = raw["event_id"]
      if (typeof id === "string" && seen(id)) {
        complete = true
        break walk
      }
      if (newestFirst.length === maxScan) break walk
      newestFirst.push(raw)
    }
    if (from === undefined) {
      complete = true
      break
    }
    const res = await port.http.request<Record<string, unknown>>({
      method: "GET",
      path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
      query: { dir: "b", from, limit: PAGE },
      ...signalOption
    })
    page = chunkOf(res["chunk"])
    from = page.length > 0 && typeof res["end"] === "string" ? res["end"] : undefined
  }

  const kept: Array<RoomEvent> = []
  let undecryptable = 0
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    signal?.throwIfAborted()
    const outcome = await port.e2ee.decryptRoomEvent(roomId, newestFirst[i]!)
    if (outcome._tag !== "Clear" && outcome._tag !== "Decrypted") {
      undecryptable++
      continue
    }
    if (request.keep(outcome.event)) kept.push(outcome.event)
  }
  const over = Math.max(0, kept.length - maxEvents)
  return { events: over === 0 ? kept : kept.slice(over), skipped: complete ? over : null, undecryptable }
}
