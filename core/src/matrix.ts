/**
 * The Matrix data the engine moves between homeserver and widgets, in the client-server API's
 * own JSON shapes (a widget receives exactly these objects, so no renaming happens here).
 */

/** A room event as a client sees it after decryption (`ClientEvent` in the client-server API). */
export interface RoomEvent {
  readonly type: string
  readonly event_id: string
  readonly room_id: string
  readonly sender: string
  readonly origin_server_ts: number
  readonly content: Readonly<Record<string, unknown>>
  readonly state_key?: string
  readonly redacts?: string
  readonly unsigned?: Readonly<Record<string, unknown>>
}

/** A to-device event after the homeserver adapter decrypted it (or found it in clear). */
export interface ToDeviceEvent {
  readonly type: string
  readonly sender: string
  readonly content: Readonly<Record<string, unknown>>
  /** Set by the engine from how the message really arrived, never from the payload. */
  readonly encrypted: boolean
}

/** The answer of `GET /voip/turnServer`; `ttl` is in seconds as the spec says. */
export interface TurnServers {
  readonly uris: ReadonlyArray<string>
  readonly username: string
  readonly password: string
  readonly ttl: number
}

/** A state event is a room event with a state key. */
export type StateEvent = RoomEvent & { readonly state_key: string }

export const isStateEvent = (event: RoomEvent): event is StateEvent => typeof event.state_key === "string"
