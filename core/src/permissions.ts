/**
 * Approved capability strings compiled once into maps keyed by event type, so every question the
 * router and the session ask ("may this widget receive that event?") is a couple of map lookups,
 * whatever the number of capabilities.
 *
 * Matching rules (MSC2762, as matrix-widget-api applies them):
 * - an event with a string `state_key` is matched only by state capabilities, one without only by
 *   event capabilities;
 * - a state capability without `#` covers every state key, `#key` exactly `key` (`#` alone: `""`);
 * - `m.room.message` without `#` covers every msgtype, `#m.text` only `content.msgtype === "m.text"`
 *   (an absent or non-string msgtype matches only the unrestricted capability); every other
 *   message-like type, `m.room.redaction` included, is matched on its type alone;
 * - rooms are a separate axis (`mayUseRoom`): the home room always, others via `m.timeline:`.
 */
import * as Result from "./result.ts"
import { parseCapability } from "./capabilities.ts"
import { CORE_CACHE_LIMITS, type CoreCaches, remember } from "./core-caches.ts"

export interface EventShape {
  readonly type: string
  readonly state_key?: string
  readonly content?: unknown
}

export interface ReadQuery {
  readonly type: string
  /** Absent: message-like events; a string: that state key; `true`: state with any key. */
  readonly stateKey?: string | true
  readonly msgtype?: string
}

export interface Permissions {
  /** May a message-like or state event of this shape be sent? (type-level; rooms are checked by mayUseRoom) */
  readonly maySend: (event: EventShape) => boolean
  readonly mayReceive: (event: EventShape) => boolean
  /**
   * read_events queries: may the widget read events of `type` with this state-key filter
   * (undefined = message-like, true = any key) and msgtype? Asking for any key (or, for
   * `m.room.message`, for no particular msgtype) needs the unrestricted capability, as in
   * matrix-widget-api: a widget approved for one state key may not read all of them.
   */
  readonly mayRead: (query: ReadQuery) => boolean
  readonly maySendToDevice: (type: string) => boolean
  readonly mayReceiveToDevice: (type: string) => boolean
  /** `m.timeline:*` approved. */
  readonly allRooms: boolean
  /** Room ids approved with `m.timeline:<id>`. */
  readonly timelineRooms: ReadonlySet<string>
  /** The home room (the widget's own room, or for account widgets the viewed room) is always usable; others need m.timeline. */
  readonly mayUseRoom: (roomId: string, homeRoom: string | undefined) => boolean
  readonly turnServers: boolean
  /** `rtc_transports` (MSC4515). */
  readonly rtcTransports: boolean
  /** `rtc_livekit_get_token` (MSC4533). */
  readonly rtcLivekitGetToken: boolean
  /** `rtc_livekit_delegate_delayed_leave` (MSC4533). */
  readonly rtcLivekitDelegateDelayedLeave: boolean
  /** `m.user_directory_search` (MSC3973). */
  readonly userDirectorySearch: boolean
  /** `m.upload_file` (MSC4039): `upload_file` and `get_media_config`. */
  readonly uploadFile: boolean
  /** `m.download_file` (MSC4039). */
  readonly downloadFile: boolean
  readonly sendDelayedEvents: boolean
  readonly updateDelayedEvents: boolean
  /** `com.beeper.capabilities.receive.room_account_data:<type>`: room account data of exactly `type`. */
  readonly mayReadRoomAccountData: (type: string) => boolean
  /** The client-side capabilities (MSC2764, MSC2931, MSC2790): their actions reach the client's hooks. */
  readonly alwaysOnScreen: boolean
  readonly sticker: boolean
  readonly navigate: boolean
  readonly modals: boolean
  /** Event types this widget may receive (message-like or state); used to index subscriptions. */
  readonly receiveTypes: ReadonlySet<string>
  /** The message-like part of `receiveTypes` (some msgtype of it, for `m.room.message`). */
  readonly receiveMessageTypes: ReadonlySet<string>
  /** The state part of `receiveTypes` (some state key of it). */
  readonly receiveStateTypes: ReadonlySet<string>
  /** The (type, stateKey?) pairs of receivable state, for MSC2762 update_state. */
  readonly receivableState: ReadonlyArray<{ readonly type: string; readonly stateKey?: string }>
  /** To-device event types this widget may receive; used to index to-device subscriptions. */
  readonly receiveToDeviceTypes: ReadonlySet<string>
}

/** Per event type: everything (`any`), or only these msgtypes / state keys. */
interface Grant {
  any: boolean
  readonly keys: Set<string>
}

type Grants = Map<string, Grant>

const grant = (grants: Grants, type: string, key: string | undefined): void => {
  let g = grants.get(type)
  if (g === undefined) grants.set(type, (g = { any: false, keys: new Set() }))
  if (key === undefined) g.any = true
  else g.keys.add(key)
}

/** `key` is the msgtype or state key asked about; `true` or `undefined` need the unrestricted grant. */
const allows = (grants: Grants, type: string, key: string | true | undefined): boolean => {
  const g = grants.get(type)
  return g !== undefined && (g.any || (typeof key === "string" && g.keys.has(key)))
}

const msgtypeOf = (content: unknown): string | undefined => {
  if (typeof content !== "object" || content === null) return undefined
  const msgtype = (content as { readonly msgtype?: unknown }).msgtype
  return typeof msgtype === "string" ? msgtype : undefined
}

const allowsEvent = (events: Grants, states: Grants, event: EventShape): boolean =>
  typeof event.state_key === "string"
    ? allows(states, event.type, event.state_key)
    : allows(events, event.type, msgtypeOf(event.content))

/**
 * Compiles approved capability strings; strings that do not parse are ignored and grant nothing.
 * With `caches` (the engine's), sessions approved for the same set share one compiled value.
 *
 * @example
 * const p = compilePermissions(["m.receive.event:m.room.message#m.text", "m.timeline:*"])
 * p.mayReceive({ type: "m.room.message", content: { msgtype: "m.text" } }) // true
 */
export const compilePermissions = (approved: Iterable<string>, caches?: CoreCaches): Permissions => {
  const list = [...approved].sort()
  if (caches === undefined) return compile(list)
  // Compiled permissions are never written, so sharing one is safe: a thousand copies of the
  // same call widget cost one set of maps, not a thousand.
  const key = JSON.stringify(list)
  return caches.permissions.get(key) ?? remember(caches.permissions, key, compile(list), CORE_CACHE_LIMITS.permissions)
}

const compile = (approved: ReadonlyArray<string>): Permissions => {
  const sendEvents: Grants = new Map()
  const receiveEvents: Grants = new Map()
  const sendState: Grants = new Map()
  const receiveState: Grants = new Map()
  const sendToDevice = new Set<string>()
  const receiveToDevice = new Set<string>()
  const timelineRooms = new Set<string>()
  let allRooms = false
  let turnServers = false
  let rtcTransports = false
  let rtcLivekitGetToken = false
  let rtcLivekitDelegateDelayedLeave = false
  let userDirectorySearch = false
  let uploadFile = false
  let downloadFile = false
  let sendDelayedEvents = false
  let updateDelayedEvents = false
  const roomAccountData = new Set<string>()
  let alwaysOnScreen = false
  let sticker = false
  let navigate = false
  let modals = false

  for (const raw of approved) {
    const parsed = parseCapability(raw)
    if (Result.isFailure(parsed)) continue
    const c = parsed.success
    switch (c._tag) {
      case "RoomEvent":
        grant(c.op === "send" ? sendEvents : receiveEvents, c.eventType, c.msgtype)
        break
      case "StateEvent":
        grant(c.op === "send" ? sendState : receiveState, c.eventType, c.stateKey)
        break
      case "ToDevice":
        ;(c.op === "send" ? sendToDevice : receiveToDevice).add(c.eventType)
        break
      case "Timeline":
        if (c.room === "*") allRooms = true
        else timelineRooms.add(c.room)
        break
      case "TurnServers":
        turnServers = true
        break
      case "RtcTransports":
        rtcTransports = true
        break
      case "RtcLivekitGetToken":
        rtcLivekitGetToken = true
        break
      case "RtcLivekitDelegateDelayedLeave":
        rtcLivekitDelegateDelayedLeave = true
        break
      case "UserDirectorySearch":
        userDirectorySearch = true
        break
      case "UploadFile":
        uploadFile = true
        break
      case "DownloadFile":
        downloadFile = true
        break
      case "SendDelayedEvent":
        sendDelayedEvents = true
        break
      case "UpdateDelayedEvent":
        updateDelayedEvents = true
        break
      case "RoomAccountData":
        roomAccountData.add(c.eventType)
        break
      case "SendStickyEvent":
      case "ReceiveStickyEvent":
        // Never approved (the policy denies them as unsupported); should one be, it grants nothing.
        break
      case "AlwaysOnScreen":
        alwaysOnScreen = true
        break
      case "Sticker":
        sticker = true
        break
      case "Navigate":
        navigate = true
        break
      case "Modals":
        modals = true
        break
      case "Other":
        break
    }
  }

  const receivableState: Array<{ readonly type: string; readonly stateKey?: string }> = []
  for (const [type, g] of receiveState) {
    if (g.any) receivableState.push({ type })
    else for (const stateKey of g.keys) receivableState.push({ type, stateKey })
  }

  return {
    maySend: (event) => allowsEvent(sendEvents, sendState, event),
    mayReceive: (event) => allowsEvent(receiveEvents, receiveState, event),
    mayRead: (query) =>
      query.stateKey === undefined
        ? allows(receiveEvents, query.type, query.msgtype)
        : allows(receiveState, query.type, query.stateKey),
    maySendToDevice: (type) => sendToDevice.has(type),
    mayReceiveToDevice: (type) => receiveToDevice.has(type),
    allRooms,
    timelineRooms,
    mayUseRoom: (roomId, homeRoom) => roomId === homeRoom || allRooms || timelineRooms.has(roomId),
    turnServers,
    rtcTransports,
    rtcLivekitGetToken,
    rtcLivekitDelegateDelayedLeave,
    userDirectorySearch,
    uploadFile,
    downloadFile,
    sendDelayedEvents,
    updateDelayedEvents,
    mayReadRoomAccountData: (type) => roomAccountData.has(type),
    alwaysOnScreen,
    sticker,
    navigate,
    modals,
    receiveTypes: new Set([...receiveEvents.keys(), ...receiveState.keys()]),
    receiveMessageTypes: new Set(receiveEvents.keys()),
    receiveStateTypes: new Set(receiveState.keys()),
    receivableState,
    receiveToDeviceTypes: receiveToDevice
  }
}

/**
 * What a session may do before anything is approved: nothing. A constant every fresh session
 * shares: its collections are empty and reachable only through `Permissions`' read-only view.
 */
export const emptyPermissions: Permissions = compilePermissions([])
