/**
 * Capabilities in words, for the person asked to approve them. Each sentence names exactly what
 * the capability grants, as the parser reads it: event types and state keys are quoted as they
 * are matched, character for character, so `m.receive.event:m.room.message\#m.text` reads as the
 * literal type “m.room.message\#m.text” (MSC2762 does not unescape message types), never as
 * text messages.
 */
import * as Result from "./result.ts"
import { parseCapability } from "./capabilities.ts"

const quote = (text: string): string => `“${text}”`

/**
 * @example describeCapability("m.receive.event:m.room.message#m.text") // "receive and read “m.room.message” events with msgtype “m.text”"
 */
export const describeCapability = (capability: string): string => {
  const parsed = parseCapability(capability)
  if (Result.isFailure(parsed)) return `invalid capability (${parsed.failure.reason}): it grants nothing and is always denied`
  const cap = parsed.success
  switch (cap._tag) {
    case "RoomEvent": {
      const verb = cap.op === "send" ? "send" : "receive and read"
      const msgtype = cap.msgtype === undefined ? "" : ` with msgtype ${quote(cap.msgtype)}`
      return `${verb} ${quote(cap.eventType)} events${msgtype}`
    }
    case "StateEvent": {
      const verb = cap.op === "send" ? "change" : "receive and read"
      const key = cap.stateKey === undefined ? "with any state key" : `with state key ${quote(cap.stateKey)}`
      return `${verb} ${quote(cap.eventType)} room state ${key}`
    }
    case "Timeline":
      return cap.room === "*" ? "act in every room you have joined, not only the widget's own" : `act in room ${quote(cap.room)} as well as the widget's own`
    case "ToDevice":
      return `${cap.op === "send" ? "send" : "receive"} ${quote(cap.eventType)} messages ${cap.op === "send" ? "to" : "from"} devices directly (to-device)`
    case "TurnServers":
      return "get TURN server credentials for calls"
    case "SendDelayedEvent":
      return "schedule events to be sent later (delayed events)"
    case "RtcTransports":
      return "find the homeserver's media servers for calls (MatrixRTC transports)"
    case "RtcLivekitGetToken":
      return "get tokens for the homeserver's LiveKit media servers for calls, as you"
    case "RtcLivekitDelegateDelayedLeave":
      return "hand a call's scheduled leave over to the homeserver"
    case "UserDirectorySearch":
      return "search the homeserver's user directory"
    case "UploadFile":
      return "upload files to your homeserver's media repository, as you"
    case "DownloadFile":
      return "download files from your homeserver's media repository, as you"
    case "UpdateDelayedEvent":
      return "cancel, restart or send its scheduled events"
    case "RoomAccountData":
      return `read your ${quote(cap.eventType)} account data of the rooms it may use`
    case "SendStickyEvent":
      return "send sticky events (MSC4407): not supported by this host, always denied"
    case "ReceiveStickyEvent":
      return "receive sticky events (MSC4407): not supported by this host, always denied"
    case "AlwaysOnScreen":
      return "stay on screen while you move to other rooms (for calls)"
    case "Sticker":
      return "send stickers to the room you are viewing"
    case "Navigate":
      return "take you to rooms, users and events (matrix.to links)"
    case "Modals":
      return "open dialogs of its own (modal widgets) inside the client"
    case "Other":
      return `${quote(cap.name)}: a capability served by the client, if the client knows it`
  }
}
