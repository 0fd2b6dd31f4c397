/**
 * The capability grammar: the strings widgets request (MSC2762, MSC3819, MSC3846, MSC4157, the
 * MSC4039, the client-side ones of MSC2764, MSC2931 and MSC2790, and the opaque rest) parsed into values, and
 * printed back in one canonical form.
 *
 * Stable (`m.`) and unstable (`org.matrix.msc2762.`, `org.matrix.msc3819.`, `town.robin.msc3846.`,
 * `org.matrix.msc4157.`, `org.matrix.msc4039.`, `org.matrix.msc2931.`, `org.matrix.msc2790.`) spellings parse to the same
 * value; `formatCapability` picks one naming.
 *
 * The `#` rules, read exactly as MSC2762 states them:
 * - state events (`send.state_event`, `receive.state_event`) take `#<state key>`, and only they
 *   take escapes: `\#` is a literal `#` and `\\` a literal `\` in the type; any other `\` sequence,
 *   or a lone `\` at the end, makes the capability invalid (rejected, never half-parsed). The first
 *   unescaped `#` ends the type and the rest is the state key, taken literally
 *   (`m.room.name##test` is type `m.room.name`, state key `#test`);
 * - message events (`send.event`, `receive.event`): only `m.room.message` takes a `#<msgtype>`,
 *   so only a segment that starts with `m.room.message#` is split. "Other non-state event types
 *   with `#` in them do not get parsed in any special way, and do not need escaping": every other
 *   segment is the event type exactly as written, backslashes included
 *   (`m.receive.event:org.example.\#hash` is the type `org.example.\#hash`, and
 *   `m.receive.event:m.room.message\#m.text` is the type `m.room.message\#m.text`, which is not
 *   `m.room.message`);
 * - to-device types (MSC3819) have no separator and no escapes: the segment is the type.
 * `formatCapability` escapes `\` and `#` in state types only, which makes it the exact inverse of
 * `parseCapability` on every value `parseCapability` can produce.
 *
 * `m.read.event:` / `org.matrix.msc2762.read.*` (MSC2876) are deliberately `Other`: reading is
 * governed by the receive capabilities, as in matrix-widget-api.
 *
 * Room account data (`com.beeper.capabilities.receive.room_account_data:<type>`) has only the one
 * spelling matrix-widget-api reads (no proposal gives it an `m.` name), receive only, and its type
 * is taken exactly as written: no `#`, no escapes. The MSC4407 sticky event capabilities parse so
 * that the policy can deny them for what they are (unsupported), not as unknown names.
 */
import * as Result from "./result.ts"
import { TaggedError } from "./tagged-error.ts"

export type Direction = "send" | "receive"

export type Capability =
  /** `m.send.event:<type>[#<msgtype>]`; a msgtype only ever exists for `m.room.message`. */
  | { readonly _tag: "RoomEvent"; readonly op: Direction; readonly eventType: string; readonly msgtype?: string }
  /** `m.send.state_event:<type>[#<state key>]`; no `#` means every state key. */
  | { readonly _tag: "StateEvent"; readonly op: Direction; readonly eventType: string; readonly stateKey?: string }
  /** `m.timeline:<room id>`, or `m.timeline:*` (room `"*"`) for every room. */
  | { readonly _tag: "Timeline"; readonly room: string }
  /** `m.send.to_device:<type>` (MSC3819). */
  | { readonly _tag: "ToDevice"; readonly op: Direction; readonly eventType: string }
  /** `m.turn_servers` (MSC3846). */
  | { readonly _tag: "TurnServers" }
  /** `m.send.delayed_event` (MSC4157). */
  | { readonly _tag: "SendDelayedEvent" }
  /** `m.update_delayed_event` (MSC4157). */
  | { readonly _tag: "UpdateDelayedEvent" }
  /** `rtc_transports` (MSC4515): the homeserver's MatrixRTC transports, for call widgets. */
  | { readonly _tag: "RtcTransports" }
  /** `rtc_livekit_get_token` (MSC4533): a LiveKit JWT from the homeserver (MSC4195). */
  | { readonly _tag: "RtcLivekitGetToken" }
  /** `rtc_livekit_delegate_delayed_leave` (MSC4533): the homeserver keeps a call's delayed leave alive (MSC4195). */
  | { readonly _tag: "RtcLivekitDelegateDelayedLeave" }
  /** `m.user_directory_search` (MSC3973). */
  | { readonly _tag: "UserDirectorySearch" }
  /** `m.upload_file` (MSC4039): `upload_file` and `get_media_config`. */
  | { readonly _tag: "UploadFile" }
  /** `m.download_file` (MSC4039): `download_file`. */
  | { readonly _tag: "DownloadFile" }
  /** `com.beeper.capabilities.receive.room_account_data:<type>`: read the user's room account data of that type. */
  | { readonly _tag: "RoomAccountData"; readonly eventType: string }
  /** `m.send.sticky_event` (MSC4407): recognised, never granted (see `policy.ts`). */
  | { readonly _tag: "SendStickyEvent" }
  /** `m.receive.sticky_event` (MSC4407): recognised, never granted (see `policy.ts`). */
  | { readonly _tag: "ReceiveStickyEvent" }
  /** `m.always_on_screen` (MSC2764): `set_always_on_screen`, served by the embedding client. */
  | { readonly _tag: "AlwaysOnScreen" }
  /** `m.sticker` (MSC2764): the `m.sticker` action, served by the embedding client. */
  | { readonly _tag: "Sticker" }
  /** `m.navigate` (MSC2931): `navigate`, served by the embedding client. */
  | { readonly _tag: "Navigate" }
  /** `m.modals` (MSC2790): `open_modal`, served by the embedding client. */
  | { readonly _tag: "Modals" }
  /** Anything else (`m.capability.screenshot`, custom names): compared as an opaque string. */
  | { readonly _tag: "Other"; readonly name: string }

export class InvalidCapability extends TaggedError("InvalidCapability")<{
  readonly capability: string
  readonly reason: string
}> {}

export type Naming = "stable" | "unstable"

type Family =
  | { readonly _tag: "RoomEvent" | "StateEvent" | "ToDevice"; readonly op: Direction }
  | { readonly _tag: "Timeline" }

const MESSAGE = "m.room.message"

/** Prefixes end at their first `:`, so a parse is one `indexOf` and one map lookup. */
const prefixes: ReadonlyArray<readonly [stable: string, unstable: string, family: Family]> = [
  ["m.send.event:", "org.matrix.msc2762.send.event:", { _tag: "RoomEvent", op: "send" }],
  ["m.receive.event:", "org.matrix.msc2762.receive.event:", { _tag: "RoomEvent", op: "receive" }],
  ["m.send.state_event:", "org.matrix.msc2762.send.state_event:", { _tag: "StateEvent", op: "send" }],
  ["m.receive.state_event:", "org.matrix.msc2762.receive.state_event:", { _tag: "StateEvent", op: "receive" }],
  ["m.send.to_device:", "org.matrix.msc3819.send.to_device:", { _tag: "ToDevice", op: "send" }],
  ["m.receive.to_device:", "org.matrix.msc3819.receive.to_device:", { _tag: "ToDevice", op: "receive" }],
  ["m.timeline:", "org.matrix.msc2762.timeline:", { _tag: "Timeline" }]
]

const byPrefix = new Map<string, Family>(prefixes.flatMap(([s, u, f]) => [[s, f] as const, [u, f] as const]))

const familyKey = (family: Family): string => (family._tag === "Timeline" ? family._tag : `${family._tag}/${family.op}`)

const namesByFamily = new Map(prefixes.map(([stable, unstable, f]) => [familyKey(f), [stable, unstable] as const]))

const prefixOf = (family: Family, naming: Naming): string => {
  const [stable, unstable] = namesByFamily.get(familyKey(family))!
  return naming === "stable" ? stable : unstable
}

/** Capabilities without arguments: [stable, unstable] names. */
const exactNames = {
  TurnServers: ["m.turn_servers", "town.robin.msc3846.turn_servers"],
  SendDelayedEvent: ["m.send.delayed_event", "org.matrix.msc4157.send.delayed_event"],
  UpdateDelayedEvent: ["m.update_delayed_event", "org.matrix.msc4157.update_delayed_event"],
  // MSC4515 names the capability `rtc_transports`, without an `m.` prefix.
  RtcTransports: ["rtc_transports", "org.matrix.msc4515.rtc_transports"],
  // MSC4533 names its capabilities as its actions, without an `m.` prefix.
  RtcLivekitGetToken: ["rtc_livekit_get_token", "org.matrix.msc4533.rtc_livekit_get_token"],
  RtcLivekitDelegateDelayedLeave: ["rtc_livekit_delegate_delayed_leave", "org.matrix.msc4533.rtc_livekit_delegate_delayed_leave"],
  UserDirectorySearch: ["m.user_directory_search", "org.matrix.msc3973.user_directory_search"],
  UploadFile: ["m.upload_file", "org.matrix.msc4039.upload_file"],
  DownloadFile: ["m.download_file", "org.matrix.msc4039.download_file"],
  SendStickyEvent: ["m.send.sticky_event", "org.matrix.msc4407.send.sticky_event"],
  ReceiveStickyEvent: ["m.receive.sticky_event", "org.matrix.msc4407.receive.sticky_event"],
  // MSC2764 names these with `m.` and defines no unstable spelling.
  AlwaysOnScreen: ["m.always_on_screen", "m.always_on_screen"],
  Sticker: ["m.sticker", "m.sticker"],
  Navigate: ["m.navigate", "org.matrix.msc2931.navigate"],
  // MSC2790: "`org.matrix.msc2790.` should be used instead of `m.`".
  Modals: ["m.modals", "org.matrix.msc2790.modals"]
} as const

const isExact = (capability: Capability): capability is Extract<Capability, { _tag: keyof typeof exactNames }> => Object.hasOwn(exactNames, capability._tag)

/** The one spelling matrix-widget-api (`WidgetEventCapability.forRoomAccountData`) reads. */
export const ROOM_ACCOUNT_DATA_PREFIX = "com.beeper.capabilities.receive.room_account_data:"

const exact = new Map<string, Capability>(
  (Object.keys(exactNames) as Array<keyof typeof exactNames>).flatMap((_tag) =>
    exactNames[_tag].map((name) => [name, { _tag }] as const)
  )
)

type Split = { readonly type: string; readonly key?: string } | { readonly error: string }

/**
 * Reads an escaped state event type up to the first unescaped `#`; the remainder after that `#`
 * is returned literally as `key`.
 */
const splitStateType = (segment: string): Split => {
  let type = ""
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]
    if (c === "\\") {
      const next = segment[i + 1]
      if (next === undefined) return { error: "trailing lone backslash in the event type" }
      if (next !== "\\" && next !== "#") return { error: `invalid escape \\${next} in the event type` }
      type += next
      i++
    } else if (c === "#") {
      return { type, key: segment.slice(i + 1) }
    } else {
      type += c
    }
  }
  return { type }
}

const MESSAGE_WITH_MSGTYPE = `${MESSAGE}#`

/**
 * Parses one capability string; unknown names are `Other`, malformed event capabilities fail.
 *
 * @example
 * parseCapability("org.matrix.msc2762.send.state_event:m.room.name#")
 * // Success({ _tag: "StateEvent", op: "send", eventType: "m.room.name", stateKey: "" })
 */
export const parseCapability = (capability: string): Result.Result<Capability, InvalidCapability> => {
  const invalid = (reason: string) => Result.fail(new InvalidCapability({ capability, reason }))
  if (capability.length === 0) return invalid("empty capability")
  const known = exact.get(capability)
  if (known !== undefined) return Result.succeed(known)
  const colon = capability.indexOf(":")
  if (colon === ROOM_ACCOUNT_DATA_PREFIX.length - 1 && capability.startsWith(ROOM_ACCOUNT_DATA_PREFIX)) {
    const eventType = capability.slice(ROOM_ACCOUNT_DATA_PREFIX.length)
    return eventType.length === 0 ? invalid("empty account data type") : Result.succeed({ _tag: "RoomAccountData", eventType })
  }
  const family = colon < 0 ? undefined : byPrefix.get(capability.slice(0, colon + 1))
  if (family === undefined) return Result.succeed({ _tag: "Other", name: capability })
  const segment = capability.slice(colon + 1)
  if (family._tag === "Timeline") {
    return segment.length === 0 ? invalid("empty room id") : Result.succeed({ _tag: "Timeline", room: segment })
  }
  if (segment.length === 0) return invalid("empty event type")
  switch (family._tag) {
    case "StateEvent": {
      const split = splitStateType(segment)
      if ("error" in split) return invalid(split.error)
      if (split.type.length === 0) return invalid("empty event type")
      return Result.succeed(
        split.key === undefined
          ? { _tag: "StateEvent", op: family.op, eventType: split.type }
          : { _tag: "StateEvent", op: family.op, eventType: split.type, stateKey: split.key }
      )
    }
    case "RoomEvent":
      return Result.succeed(
        segment.startsWith(MESSAGE_WITH_MSGTYPE)
          ? { _tag: "RoomEvent", op: family.op, eventType: MESSAGE, msgtype: segment.slice(MESSAGE_WITH_MSGTYPE.length) }
          : { _tag: "RoomEvent", op: family.op, eventType: segment }
      )
    case "ToDevice":
      return Result.succeed({ _tag: "ToDevice", op: family.op, eventType: segment })
  }
}

const escapeType = (type: string): string => type.replace(/[\\#]/g, (c) => `\\${c}`)

/**
 * Prints the canonical string of a capability (stable `m.` names unless `"unstable"` is asked).
 * A `msgtype` on a `RoomEvent` other than `m.room.message` cannot be expressed and is dropped, and
 * neither can a message type that itself starts with `m.room.message#` (no parse produces one).
 *
 * @example
 * formatCapability({ _tag: "StateEvent", op: "receive", eventType: "org.example.#test", stateKey: "hello" })
 * // "m.receive.state_event:org.example.\\#test#hello"
 */
export const formatCapability = (capability: Capability, naming: Naming = "stable"): string => {
  // Every capability without arguments is one row of `exactNames`: [stable, unstable].
  if (isExact(capability)) return exactNames[capability._tag][naming === "stable" ? 0 : 1]
  switch (capability._tag) {
    case "Other":
      return capability.name
    case "RoomAccountData":
      return ROOM_ACCOUNT_DATA_PREFIX + capability.eventType
    case "Timeline":
      return prefixOf(capability, naming) + capability.room
    case "ToDevice":
      return prefixOf(capability, naming) + capability.eventType
    case "StateEvent": {
      const key = capability.stateKey === undefined ? "" : `#${capability.stateKey}`
      return prefixOf(capability, naming) + escapeType(capability.eventType) + key
    }
    case "RoomEvent": {
      const key =
        capability.msgtype === undefined || capability.eventType !== MESSAGE ? "" : `#${capability.msgtype}`
      return prefixOf(capability, naming) + capability.eventType + key
    }
  }
}

/**
 * Well-known state event types: a `send.event` capability for one of them contradicts its
 * descriptor. The spec's event schemas plus widget, space, policy and MatrixRTC state.
 */
export const wellKnownStateTypes: ReadonlySet<string> = new Set([
  "m.room.create",
  "m.room.member",
  "m.room.power_levels",
  "m.room.join_rules",
  "m.room.history_visibility",
  "m.room.name",
  "m.room.topic",
  "m.room.avatar",
  "m.room.canonical_alias",
  "m.room.aliases",
  "m.room.encryption",
  "m.room.server_acl",
  "m.room.pinned_events",
  "m.room.tombstone",
  "m.room.guest_access",
  "m.room.third_party_invite",
  "m.room.related_groups",
  "m.space.child",
  "m.space.parent",
  "m.policy.rule.user",
  "m.policy.rule.room",
  "m.policy.rule.server",
  "m.widget",
  "im.vector.modular.widgets",
  "m.beacon_info",
  "m.call",
  "m.call.member",
  "org.matrix.msc3401.call",
  "org.matrix.msc3401.call.member"
])

/**
 * Well-known message-like event types: a `send.state_event` capability for one of them contradicts
 * its descriptor. Besides this list, every `m.call.*` type is message-like except the MatrixRTC
 * state types `m.call.member` (listed above as state).
 */
export const wellKnownMessageTypes: ReadonlySet<string> = new Set([
  "m.room.message",
  "m.room.encrypted",
  "m.room.redaction",
  "m.reaction",
  "m.sticker",
  "m.beacon",
  "m.poll.start",
  "m.poll.response",
  "m.poll.end",
  "m.key.verification.request",
  "m.key.verification.ready",
  "m.key.verification.start",
  "m.key.verification.accept",
  "m.key.verification.key",
  "m.key.verification.mac",
  "m.key.verification.cancel",
  "m.key.verification.done",
  "m.call.invite",
  "m.call.candidates",
  "m.call.answer",
  "m.call.select_answer",
  "m.call.negotiate",
  "m.call.reject",
  "m.call.hangup",
  "m.call.sdp_stream_metadata_changed",
  "m.call.notify",
  "m.rtc.notification"
])

const isWellKnownMessageType = (type: string): boolean =>
  wellKnownMessageTypes.has(type) || (type.startsWith("m.call.") && !wellKnownStateTypes.has(type))

/**
 * True for send capabilities that contradict a well-known type (MSC2762: "Clients SHOULD
 * automatically deny"), so approvers can refuse them without asking anyone.
 *
 * @example
 * deniedByDescriptor({ _tag: "RoomEvent", op: "send", eventType: "m.room.topic" }) // true
 */
export const deniedByDescriptor = (capability: Capability): boolean => {
  if (capability._tag === "RoomEvent") return capability.op === "send" && wellKnownStateTypes.has(capability.eventType)
  if (capability._tag === "StateEvent") return capability.op === "send" && isWellKnownMessageType(capability.eventType)
  return false
}
