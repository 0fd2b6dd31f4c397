/**
 * The router: knows every open session, and fans homeserver traffic out to exactly the sessions
 * whose permissions and room scope allow it. Work per event follows the matching sessions (the
 * routing index), not the number of sessions.
 *
 * Plain code, not a chart: it has no phases (every event is handled the same way whenever it
 * comes), so a statechart would add a step per event and nothing to model. It only hands inputs
 * to session inboxes, so a call never re-enters it.
 */
import { type CoreCaches, type Input, type Permissions, RoutingIndex, type RoomEvent, type ToDeviceEvent, type TurnServers } from "@widgethost/core"

export interface RouterOptions {
  /** Hands an input to a session's inbox (the engine batches what one session gets per turn). */
  readonly deliver: (key: string, input: Input) => void
  /** The engine's caches (the index shares bucket keys between sessions approved alike). */
  readonly caches: CoreCaches
  /** The open sessions, by key: the engine's own table, read here rather than mirrored in a set of the router's. */
  readonly sessions: ReadonlyMap<string, unknown>
}

export class Router {
  /**
   * Mutable on purpose: it is the router's private index, updated incrementally on every
   * subscription change; copying it per event would cost what the index exists to save.
   */
  private readonly index: RoutingIndex<string>

  constructor(private readonly options: RouterOptions) {
    this.index = new RoutingIndex<string>(options.caches)
  }

  /** The session closed (the engine has forgotten it already). */
  close(key: string): void {
    this.index.delete(key)
  }

  /** A session's receive permissions or home room changed. */
  subscribe(key: string, permissions: Permissions, homeRoom: string | undefined): void {
    if (this.options.sessions.has(key)) this.index.set(key, permissions, homeRoom)
  }

  roomEvent(event: RoomEvent): void {
    const input: Input = { _tag: "RoomEvent", event }
    for (const key of this.index.match(event)) this.options.deliver(key, input)
  }

  toDevice(event: ToDeviceEvent): void {
    const input: Input = { _tag: "ToDevice", event }
    for (const key of this.index.matchToDevice(event.type)) this.options.deliver(key, input)
  }

  /** Fresh TURN credentials for the sessions watching them (the TURN poller knows which). */
  turnServers(keys: ReadonlyArray<string>, servers: Pick<TurnServers, "uris" | "username" | "password">): void {
    const input: Input = { _tag: "TurnServers", servers }
    for (const key of keys) if (this.options.sessions.has(key)) this.options.deliver(key, input)
  }

  /** The user switched rooms: every session hears it (account widgets follow). */
  viewedRoom(roomId: string | undefined): void {
    const input: Input = { _tag: "ViewedRoomChanged", roomId }
    for (const key of this.options.sessions.keys()) this.options.deliver(key, input)
  }
}
