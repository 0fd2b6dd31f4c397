/**
 * The configuration's `rooms` as the service hosts them: aliases resolved to room ids through the
 * room directory, rooms the account is not in joined (the sync that keeps widgets live only
 * carries joined rooms), and each checked readable. It runs before anything is hosted, so a wrong
 * entry stops the start with one line naming it rather than a stack trace halfway through.
 */
import { HomeserverError } from "@widgethost/core"
import type { MatrixHttp } from "@widgethost/homeserver-client"

/** A configured room the service cannot host; the message names it and says why. */
export class RoomUnavailable extends Error {
  override readonly name = "RoomUnavailable"
}

export interface ResolvedRooms {
  /** Room ids, in the configuration's order, without duplicates. */
  readonly rooms: ReadonlyArray<string>
  /** Every room the account is in once the configured ones are joined. */
  readonly joined: ReadonlySet<string>
}

const CLIENT = "/_matrix/client/v3"

/** What the homeserver said, in one line: `404 M_NOT_FOUND: Room alias not found`. */
const said = (error: unknown): string => {
  if (error instanceof HomeserverError && error.http !== undefined) {
    const { status, body } = error.http
    return `${status} ${body.errcode}${body.error === undefined ? "" : `: ${body.error}`}`
  }
  return error instanceof Error ? error.message : String(error)
}

/**
 * Resolves, joins and checks the configured rooms; rejects with {@link RoomUnavailable} for the
 * first one that cannot be hosted (and with the homeserver's error when it cannot be asked at all).
 *
 * @example const { rooms } = await resolveRooms(homeserver.http, ["#demo:localhost", "!abc:localhost"])
 */
export const resolveRooms = async (http: Pick<MatrixHttp, "request">, configured: ReadonlyArray<string>): Promise<ResolvedRooms> => {
  const listed = (await http.request<{ joined_rooms?: unknown }>({ method: "GET", path: `${CLIENT}/joined_rooms` })).joined_rooms
  const joined = new Set(Array.isArray(listed) ? listed.filter((id): id is string => typeof id === "string") : [])
  const rooms: Array<string> = []
  for (const entry of configured) {
    let roomId = entry
    if (entry.startsWith("#")) {
      try {
        const found = await http.request<{ room_id?: unknown }>({ method: "GET", path: `${CLIENT}/directory/room/${encodeURIComponent(entry)}` })
        if (typeof found.room_id !== "string") throw new Error("the directory answered without a room_id")
        roomId = found.room_id
      } catch (error) {
        throw new RoomUnavailable(`room ${entry}: cannot resolve the alias (${said(error)})`)
      }
    }
    const named = roomId === entry ? entry : `${entry} (${roomId})`
    if (!joined.has(roomId)) {
      try {
        // By the configured name: for an alias the homeserver knows which servers to join through.
        await http.request({ method: "POST", path: `${CLIENT}/join/${encodeURIComponent(entry)}`, body: {} })
      } catch (error) {
        throw new RoomUnavailable(`room ${named}: cannot join it (${said(error)})`)
      }
      joined.add(roomId)
    }
    try {
      await http.request({ method: "GET", path: `${CLIENT}/rooms/${encodeURIComponent(roomId)}/state/m.room.create` })
    } catch (error) {
      throw new RoomUnavailable(`room ${named}: cannot read it (${said(error)})`)
    }
    if (!rooms.includes(roomId)) rooms.push(roomId)
  }
  return { rooms, joined }
}
