/**
 * Capabilities in words, for the person asked to approve them. Each sentence names exactly what
 * the capability grants, as the parser reads it: event types and state keys are quoted as they
 * are matched, character for character, so `m.receive.event:m.room.message\#m.text` reads as the
 * literal type “m.room.message\#m.text” (MSC2762 does not unescape message types), never as
 * text messages.
 */
import * as Result from "./result.ts"
import { type Capability, formatCapability, parseCapability } from "./capabilities.ts"

const quote = (text: string): string => `“${text}”`

/** Sentences by capability kind; each optional feature's are apart (`SessionFeature.descriptions`), so a lean bundle carries only what its prompts can show. */
export type CapabilityDescriptions = { readonly [Tag in Capability["_tag"]]?: (capability: Extract<Capability, { _tag: Tag }>) => string }

/** The core proposals' capabilities, and those recognised but never served. */
export const coreCapabilityDescriptions: CapabilityDescriptions = {
  RoomEvent: (cap) => {
    const verb = cap.op === "send" ? "send" : "receive and read"
    const msgtype = cap.msgtype === undefined ? "" : ` with msgtype ${quote(cap.msgtype)}`
    return `${verb} ${quote(cap.eventType)} events${msgtype}`
  },
  StateEvent: (cap) => {
    const verb = cap.op === "send" ? "change" : "receive and read"
    const key = cap.stateKey === undefined ? "with any state key" : `with state key ${quote(cap.stateKey)}`
    return `${verb} ${quote(cap.eventType)} room state ${key}`
  },
  Timeline: (cap) => (cap.room === "*" ? "act in every room you have joined, not only the widget's own" : `act in room ${quote(cap.room)} as well as the widget's own`),
  TurnServers: () => "get TURN server credentials for calls",
  SendStickyEvent: () => "send sticky events (MSC4407): not supported by this host, always denied",
  ReceiveStickyEvent: () => "receive sticky events (MSC4407): not supported by this host, always denied",
  Other: (cap) => `${quote(cap.name)}: a capability served by the client, if the client knows it`
}

export const toDeviceDescriptions: CapabilityDescriptions = {
  ToDevice: (cap) => `${cap.op === "send" ? "send" : "receive"} ${quote(cap.eventType)} messages ${cap.op === "send" ? "to" : "from"} devices directly (to-device)`
}
export const delayedEventsDescriptions: CapabilityDescriptions = {
  SendDelayedEvent: () => "schedule events to be sent later (delayed events)",
  UpdateDelayedEvent: () => "cancel, restart or send its scheduled events"
}
export const rtcDescriptions: CapabilityDescriptions = {
  RtcTransports: () => "find the homeserver's media servers for calls (MatrixRTC transports)",
  RtcLivekitGetToken: () => "get tokens for the homeserver's LiveKit media servers for calls, as you",
  RtcLivekitDelegateDelayedLeave: () => "hand a call's scheduled leave over to the homeserver"
}
export const userDirectoryDescriptions: CapabilityDescriptions = {
  UserDirectorySearch: () => "search the homeserver's user directory"
}
export const mediaDescriptions: CapabilityDescriptions = {
  UploadFile: () => "upload files to your homeserver's media repository, as you",
  DownloadFile: () => "download files from your homeserver's media repository, as you"
}
export const roomAccountDataDescriptions: CapabilityDescriptions = {
  RoomAccountData: (cap) => `read your ${quote(cap.eventType)} account data of the rooms it may use`
}
export const clientActionsDescriptions: CapabilityDescriptions = {
  AlwaysOnScreen: () => "stay on screen while you move to other rooms (for calls)",
  Sticker: () => "send stickers to the room you are viewing",
  Navigate: () => "take you to rooms, users and events (matrix.to links)",
  Modals: () => "open dialogs of its own (modal widgets) inside the client"
}

/**
 * `capability` in words, from `descriptions` (a kind they lack is named, as not served here: an
 * engine asks its approver only about what it serves, so its prompts never show one).
 */
export const describeCapabilityWith = (capability: string, descriptions: CapabilityDescriptions): string => {
  const parsed = parseCapability(capability)
  if (Result.isFailure(parsed)) return `invalid capability (${parsed.failure.reason}): it grants nothing and is always denied`
  const describe = descriptions[parsed.success._tag] as ((capability: Capability) => string) | undefined
  return describe === undefined ? `${formatCapability(parsed.success)}: not served by this host` : describe(parsed.success)
}

/**
 * `capability` in words, whatever feature serves it.
 *
 * @example describeCapability("m.receive.event:m.room.message#m.text") // "receive and read “m.room.message” events with msgtype “m.text”"
 */
export const describeCapability = (capability: string): string =>
  describeCapabilityWith(capability, {
    ...coreCapabilityDescriptions,
    ...toDeviceDescriptions,
    ...delayedEventsDescriptions,
    ...rtcDescriptions,
    ...userDirectoryDescriptions,
    ...mediaDescriptions,
    ...roomAccountDataDescriptions,
    ...clientActionsDescriptions
  })
