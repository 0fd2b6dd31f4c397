import { HomeserverError } from "@widgethost/core"
import type { RawEvent } from "./crypto.ts"
import { arrayOf, isObject } from "./json-shapes.ts"
import { type MatrixHttp, path } from "./matrix-http.ts"

/**
 * What the port knows of each room to send into it: whether it is encrypted (and how), and who
 * its members are. Learnt from sync (state and timeline events), else asked of the homeserver on
 * the first send. The encryption settings are saved with the sync token; members are not (they
 * are fetched again after a restart).
 */
export class RoomDirectory {
  readonly encrypted: Map<string, Readonly<Record<string, unknown>>>
  /** Rooms known not to be encrypted (memory only: re-asked after a restart). */
  private readonly clearRooms = new Set<string>()
  /** Joined and invited members per room, when known. */
  private readonly members = new Map<string, Set<string>>()
  /** Users already handed to the crypto machine's `updateTrackedUsers` in this run. */
  private readonly tracked = new Set<string>()

  constructor(
    private readonly http: MatrixHttp,
    private readonly userId: string,
    saved: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {}
  ) {
    this.encrypted = new Map(Object.entries(saved))
  }

  /** Takes in a room's state or timeline event (only state events change anything). */
  note(roomId: string, raw: RawEvent): void {
    const type = raw["type"]
    const content = raw["content"]
    if (typeof raw["state_key"] !== "string" || !isObject(content)) return
    if (type === "m.room.encryption" && typeof content["algorithm"] === "string") {
      this.encrypted.set(roomId, content)
      this.clearRooms.delete(roomId)
    } else if (type === "m.room.member") {
      const set = this.members.get(roomId) ?? new Set<string>()
      this.members.set(roomId, set)
      const m = content["membership"]
      if (m === "join" || m === "invite") set.add(raw["state_key"])
      else set.delete(raw["state_key"])
    }
  }

  /** Members of an encrypted room not yet tracked for device keys (and now counted as tracked). */
  untrackedMembers(roomId: string): Array<string> {
    if (!this.encrypted.has(roomId)) return []
    const untracked = Array.from(this.members.get(roomId) ?? []).filter((u) => !this.tracked.has(u))
    for (const u of untracked) this.tracked.add(u)
    return untracked
  }

  /** The room's `m.room.encryption` content, or undefined for a clear room (asked once, then remembered). */
  async encryption(roomId: string, signal: AbortSignal): Promise<Readonly<Record<string, unknown>> | undefined> {
    const known = this.encrypted.get(roomId)
    if (known !== undefined || this.clearRooms.has(roomId)) return known
    try {
      const content = await this.http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/state/m.room.encryption/`, signal })
      if (typeof content["algorithm"] === "string") {
        this.encrypted.set(roomId, content)
        return content
      }
    } catch (e) {
      if (!(e instanceof HomeserverError && e.http?.status === 404)) throw e
    }
    this.clearRooms.add(roomId)
    return undefined
  }

  /** Joined and invited members (ourselves included), from sync when we know them, else fetched. */
  async memberList(roomId: string, signal: AbortSignal): Promise<ReadonlyArray<string>> {
    const known = this.members.get(roomId)
    if (known !== undefined && known.has(this.userId)) return Array.from(known)
    const res = await this.http.request<{ chunk?: unknown }>({ method: "GET", path: path`/_matrix/client/v3/rooms/${roomId}/members`, signal })
    const set = new Set<string>()
    for (const raw of arrayOf(res.chunk).filter(isObject)) {
      const content = raw["content"]
      const m = isObject(content) ? content["membership"] : undefined
      if (typeof raw["state_key"] === "string" && (m === "join" || m === "invite")) set.add(raw["state_key"])
    }
    set.add(this.userId)
    this.members.set(roomId, set)
    return Array.from(set)
  }
}
