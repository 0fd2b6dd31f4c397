import * as Result from "./result.ts"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type Capability,
  deniedByDescriptor,
  formatCapability,
  InvalidCapability,
  parseCapability
} from "./capabilities.ts"

const parsed = (s: string): Capability => {
  const r = parseCapability(s)
  if (Result.isFailure(r)) throw new Error(`expected ${s} to parse: ${r.failure.reason}`)
  return r.success
}

interface Case {
  readonly input: string
  readonly want: Capability
  /** The canonical (stable) form, when it differs from `input`. */
  readonly canonical?: string
}

const send = "send" as const
const receive = "receive" as const

const valid: ReadonlyArray<Case> = [
  // MSC2762 examples, verbatim
  { input: "m.send.event:m.room.message", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message" } },
  { input: "m.send.state_event:m.room.topic", want: { _tag: "StateEvent", op: send, eventType: "m.room.topic" } },
  { input: "m.send.state_event:m.room.name#", want: { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "" } },
  { input: "m.send.state_event:m.room.name#test", want: { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "test" } },
  { input: "m.send.state_event:m.room.name##test", want: { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "#test" } },
  { input: "m.send.state_event:org.example.\\#test#hello", want: { _tag: "StateEvent", op: send, eventType: "org.example.#test", stateKey: "hello" } },
  { input: "m.send.event:m.room.message#m.notice", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "m.notice" } },
  { input: "m.send.event:m.room.message#m.text", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "m.text" } },
  { input: "m.send.event:m.room.message#m.emote", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "m.emote" } },
  { input: "m.receive.event:m.room.message#m.text", want: { _tag: "RoomEvent", op: receive, eventType: "m.room.message", msgtype: "m.text" } },
  { input: "m.receive.state_event:m.room.topic", want: { _tag: "StateEvent", op: receive, eventType: "m.room.topic" } },
  { input: "m.timeline:!room:example.org", want: { _tag: "Timeline", room: "!room:example.org" } },
  { input: "m.timeline:*", want: { _tag: "Timeline", room: "*" } },
  // escapes: `\\` is one backslash, so `\\#` is a backslash followed by the separator
  { input: "m.send.state_event:org.example\\\\#hello", want: { _tag: "StateEvent", op: send, eventType: "org.example\\", stateKey: "hello" } },
  { input: "m.send.state_event:a\\\\b", want: { _tag: "StateEvent", op: send, eventType: "a\\b" } },
  { input: "m.send.state_event:\\\\", want: { _tag: "StateEvent", op: send, eventType: "\\" } },
  { input: "m.send.state_event:\\#", want: { _tag: "StateEvent", op: send, eventType: "#" } },
  { input: "m.send.state_event:a\\\\\\##k", want: { _tag: "StateEvent", op: send, eventType: "a\\#", stateKey: "k" } },
  { input: "m.send.state_event:a\\\\\\###k", want: { _tag: "StateEvent", op: send, eventType: "a\\#", stateKey: "#k" } },
  // the part after the separator is literal: no unescaping there
  { input: "m.send.state_event:m.room.name#\\x", want: { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "\\x" } },
  { input: "m.send.state_event:m.room.name#a\\#b\\", want: { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "a\\#b\\" } },
  { input: "m.receive.state_event:m.room.member#@alice:example.org", want: { _tag: "StateEvent", op: receive, eventType: "m.room.member", stateKey: "@alice:example.org" } },
  // m.room.message, the only message type with `#`: what follows `m.room.message#` is the msgtype, literally
  { input: "m.send.event:m.room.message#", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "" } },
  { input: "m.send.event:m.room.message##m.text", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "#m.text" } },
  { input: "m.send.event:m.room.message#a\\b", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "a\\b" } },
  // "Other non-state event types with # in them do not get parsed in any special way, and do not
  // need escaping": the type is the text as written, backslashes included
  { input: "m.send.event:m.room.message\\#m.text", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message\\#m.text" } },
  { input: "m.receive.event:m.room.message\\#m.text", want: { _tag: "RoomEvent", op: receive, eventType: "m.room.message\\#m.text" } },
  { input: "m.receive.event:org.example.\\#hash", want: { _tag: "RoomEvent", op: receive, eventType: "org.example.\\#hash" } },
  { input: "m.send.event:org.example#thing", want: { _tag: "RoomEvent", op: send, eventType: "org.example#thing" } },
  { input: "m.send.event:org.example\\#thing", want: { _tag: "RoomEvent", op: send, eventType: "org.example\\#thing" } },
  { input: "m.send.event:a\\b", want: { _tag: "RoomEvent", op: send, eventType: "a\\b" } },
  { input: "m.send.event:m.room.message\\", want: { _tag: "RoomEvent", op: send, eventType: "m.room.message\\" } },
  { input: "m.receive.event:#", want: { _tag: "RoomEvent", op: receive, eventType: "#" } },
  { input: "m.send.event:m.room.redaction", want: { _tag: "RoomEvent", op: send, eventType: "m.room.redaction" } },
  // to-device (MSC3819): no separator and no escapes
  { input: "m.send.to_device:m.call.invite", want: { _tag: "ToDevice", op: send, eventType: "m.call.invite" } },
  { input: "m.receive.to_device:io.element.call.encryption_keys", want: { _tag: "ToDevice", op: receive, eventType: "io.element.call.encryption_keys" } },
  { input: "m.send.to_device:a#b", want: { _tag: "ToDevice", op: send, eventType: "a#b" } },
  { input: "m.receive.to_device:a\\.b", want: { _tag: "ToDevice", op: receive, eventType: "a\\.b" } },
  // plain capabilities
  { input: "m.turn_servers", want: { _tag: "TurnServers" } },
  { input: "m.send.delayed_event", want: { _tag: "SendDelayedEvent" } },
  { input: "m.update_delayed_event", want: { _tag: "UpdateDelayedEvent" } },
  // MSC4407 sticky events: recognised (so the policy can say "unsupported"), both spellings
  { input: "m.send.sticky_event", want: { _tag: "SendStickyEvent" } },
  { input: "org.matrix.msc4407.receive.sticky_event", want: { _tag: "ReceiveStickyEvent" }, canonical: "m.receive.sticky_event" },
  // room account data (matrix-widget-api's one spelling): the type exactly as written, `#` and `\` included
  { input: "com.beeper.capabilities.receive.room_account_data:m.fully_read", want: { _tag: "RoomAccountData", eventType: "m.fully_read" } },
  { input: "com.beeper.capabilities.receive.room_account_data:org.example#a\\b:c", want: { _tag: "RoomAccountData", eventType: "org.example#a\\b:c" } },
  // its send direction is served by nothing and named by no reference: opaque
  { input: "com.beeper.capabilities.send.room_account_data:m.tag", want: { _tag: "Other", name: "com.beeper.capabilities.send.room_account_data:m.tag" } },
  // client-side capabilities (MSC2764, MSC2931, MSC2790), stable and unstable
  { input: "m.sticker", want: { _tag: "Sticker" } },
  { input: "m.always_on_screen", want: { _tag: "AlwaysOnScreen" } },
  { input: "m.navigate", want: { _tag: "Navigate" } },
  { input: "org.matrix.msc2931.navigate", want: { _tag: "Navigate" }, canonical: "m.navigate" },
  { input: "m.modals", want: { _tag: "Modals" } },
  { input: "org.matrix.msc2790.modals", want: { _tag: "Modals" }, canonical: "m.modals" },
  // opaque names, including the MSC2876 read capabilities (reading is governed by receive)
  { input: "m.capability.screenshot", want: { _tag: "Other", name: "m.capability.screenshot" } },
  { input: "m.read.event:m.room.message", want: { _tag: "Other", name: "m.read.event:m.room.message" } },
  { input: "org.matrix.msc2762.read.state_event:m.room.topic", want: { _tag: "Other", name: "org.matrix.msc2762.read.state_event:m.room.topic" } },
  { input: "m.send.event", want: { _tag: "Other", name: "m.send.event" } },
  { input: "M.SEND.EVENT:x", want: { _tag: "Other", name: "M.SEND.EVENT:x" } },
  { input: "m.send.events:x", want: { _tag: "Other", name: "m.send.events:x" } },
  { input: "com.example.custom:\\x#", want: { _tag: "Other", name: "com.example.custom:\\x#" } },
  { input: "org.matrix.msc2931.navigates", want: { _tag: "Other", name: "org.matrix.msc2931.navigates" } }
]

describe("parseCapability", () => {
  it.each(valid)("$input", ({ input, want }) => {
    expect(parsed(input)).toStrictEqual(want)
  })

  it.each(valid)("canonical form of $input", ({ input, want, canonical }) => {
    expect(formatCapability(want)).toBe(canonical ?? input)
  })

  const invalid: ReadonlyArray<readonly [string, string]> = [
    ["", "empty capability"],
    ["m.send.event:", "empty event type"],
    ["org.matrix.msc2762.receive.event:", "empty event type"],
    ["m.send.state_event:", "empty event type"],
    ["m.send.state_event:#key", "empty event type"],
    ["m.send.state_event:foo\\", "trailing lone backslash in the event type"],
    ["m.send.state_event:a\\\\\\", "trailing lone backslash in the event type"],
    ["m.send.state_event:foo\\x#k", "invalid escape \\x in the event type"],
    ["m.send.to_device:", "empty event type"],
    ["org.matrix.msc3819.receive.to_device:", "empty event type"],
    ["m.timeline:", "empty room id"],
    ["org.matrix.msc2762.timeline:", "empty room id"],
    ["com.beeper.capabilities.receive.room_account_data:", "empty account data type"]
  ]
  it.each(invalid)("rejects %j (%s)", (input, reason) => {
    const r = parseCapability(input)
    expect(Result.isFailure(r)).toBe(true)
    if (Result.isFailure(r)) {
      expect(r.failure).toBeInstanceOf(InvalidCapability)
      expect(r.failure._tag).toBe("InvalidCapability")
      expect(r.failure.capability).toBe(input)
      expect(r.failure.reason).toBe(reason)
    }
  })
})

describe("stable and unstable names", () => {
  const families: ReadonlyArray<readonly [stable: string, unstable: string, want: Capability]> = [
    ["m.send.event:m.room.message#m.text", "org.matrix.msc2762.send.event:m.room.message#m.text", { _tag: "RoomEvent", op: send, eventType: "m.room.message", msgtype: "m.text" }],
    ["m.receive.event:m.reaction", "org.matrix.msc2762.receive.event:m.reaction", { _tag: "RoomEvent", op: receive, eventType: "m.reaction" }],
    ["m.send.state_event:m.room.name#", "org.matrix.msc2762.send.state_event:m.room.name#", { _tag: "StateEvent", op: send, eventType: "m.room.name", stateKey: "" }],
    ["m.receive.state_event:org.example.\\#test#hello", "org.matrix.msc2762.receive.state_event:org.example.\\#test#hello", { _tag: "StateEvent", op: receive, eventType: "org.example.#test", stateKey: "hello" }],
    ["m.timeline:!a:b.c", "org.matrix.msc2762.timeline:!a:b.c", { _tag: "Timeline", room: "!a:b.c" }],
    ["m.timeline:*", "org.matrix.msc2762.timeline:*", { _tag: "Timeline", room: "*" }],
    ["m.send.to_device:m.call.invite", "org.matrix.msc3819.send.to_device:m.call.invite", { _tag: "ToDevice", op: send, eventType: "m.call.invite" }],
    ["m.receive.to_device:m.call.invite", "org.matrix.msc3819.receive.to_device:m.call.invite", { _tag: "ToDevice", op: receive, eventType: "m.call.invite" }],
    ["m.turn_servers", "town.robin.msc3846.turn_servers", { _tag: "TurnServers" }],
    ["m.send.delayed_event", "org.matrix.msc4157.send.delayed_event", { _tag: "SendDelayedEvent" }],
    ["m.update_delayed_event", "org.matrix.msc4157.update_delayed_event", { _tag: "UpdateDelayedEvent" }],
    ["rtc_transports", "org.matrix.msc4515.rtc_transports", { _tag: "RtcTransports" }],
    ["m.user_directory_search", "org.matrix.msc3973.user_directory_search", { _tag: "UserDirectorySearch" }],
    ["m.upload_file", "org.matrix.msc4039.upload_file", { _tag: "UploadFile" }],
    ["m.download_file", "org.matrix.msc4039.download_file", { _tag: "DownloadFile" }],
    ["m.send.sticky_event", "org.matrix.msc4407.send.sticky_event", { _tag: "SendStickyEvent" }],
    ["m.receive.sticky_event", "org.matrix.msc4407.receive.sticky_event", { _tag: "ReceiveStickyEvent" }],
    ["m.navigate", "org.matrix.msc2931.navigate", { _tag: "Navigate" }],
    ["m.modals", "org.matrix.msc2790.modals", { _tag: "Modals" }]
  ]
  it.each(families)("%s = %s", (stable, unstable, want) => {
    expect(parsed(stable)).toStrictEqual(want)
    expect(parsed(unstable)).toStrictEqual(want)
    expect(formatCapability(want)).toBe(stable)
    expect(formatCapability(want, "stable")).toBe(stable)
    expect(formatCapability(want, "unstable")).toBe(unstable)
  })

  it("keeps opaque names as they are in both namings", () => {
    const c: Capability = { _tag: "Other", name: "m.capability.screenshot" }
    expect(formatCapability(c, "unstable")).toBe("m.capability.screenshot")
  })

  it("drops a msgtype that only m.room.message can carry", () => {
    expect(formatCapability({ _tag: "RoomEvent", op: send, eventType: "m.reaction", msgtype: "x" })).toBe("m.send.event:m.reaction")
  })
})

describe("deniedByDescriptor", () => {
  const cases: ReadonlyArray<readonly [string, boolean]> = [
    ["m.send.event:m.room.topic", true],
    ["m.send.state_event:m.room.message", true],
    ["m.send.event:m.room.member", true],
    ["m.send.event:m.room.power_levels", true],
    ["org.matrix.msc2762.send.event:im.vector.modular.widgets", true],
    ["m.send.event:m.space.child", true],
    ["m.send.state_event:m.room.encrypted", true],
    ["m.send.state_event:m.reaction#", true],
    ["m.send.state_event:m.room.redaction", true],
    ["m.send.state_event:m.call.invite", true],
    ["m.send.state_event:m.call.anything_new", true],
    ["m.send.state_event:m.sticker", true],
    // well-matched descriptors
    ["m.send.event:m.room.message#m.text", false],
    ["m.send.state_event:m.room.topic", false],
    ["m.send.state_event:m.call.member#_@a:b_DEVICE", false],
    ["m.send.event:m.call.invite", false],
    ["m.send.event:org.example.custom", false],
    ["m.send.state_event:org.example.custom", false],
    // receive capabilities are never denied by descriptor (they grant nothing odd)
    ["m.receive.event:m.room.topic", false],
    ["m.receive.state_event:m.room.message", false],
    ["m.turn_servers", false],
    ["m.sticker", false]
  ]
  it.each(cases)("%s → %s", (input, want) => {
    expect(deniedByDescriptor(parsed(input))).toBe(want)
  })
})

// --- properties -------------------------------------------------------------------------------

/** Strings dense in the characters the grammar cares about. */
const tricky = (minLength: number) =>
  fc.string({
    unit: fc.constantFrom("#", "\\", "m", ".", ":", "a", "*", "!", "room", "message", "m.room.message", " ", "é"),
    minLength,
    maxLength: 8
  })
const text = (minLength: number) => fc.oneof(tricky(minLength), fc.string({ minLength }))
const op = fc.constantFrom(send, receive)

const reserved = new Set([
  "m.turn_servers",
  "town.robin.msc3846.turn_servers",
  "m.send.delayed_event",
  "org.matrix.msc4157.send.delayed_event",
  "m.update_delayed_event",
  "org.matrix.msc4157.update_delayed_event",
  "rtc_transports",
  "org.matrix.msc4515.rtc_transports",
  "m.user_directory_search",
  "org.matrix.msc3973.user_directory_search",
  "m.upload_file",
  "org.matrix.msc4039.upload_file",
  "m.download_file",
  "org.matrix.msc4039.download_file",
  "m.send.sticky_event",
  "org.matrix.msc4407.send.sticky_event",
  "m.receive.sticky_event",
  "org.matrix.msc4407.receive.sticky_event",
  "m.always_on_screen",
  "m.sticker",
  "m.navigate",
  "org.matrix.msc2931.navigate",
  "m.modals",
  "org.matrix.msc2790.modals"
])

const capability: fc.Arbitrary<Capability> = fc.oneof(
  fc.record({ op, msgtype: fc.option(text(0), { nil: undefined }) }).map(({ op, msgtype }): Capability =>
    msgtype === undefined
      ? { _tag: "RoomEvent", op, eventType: "m.room.message" }
      : { _tag: "RoomEvent", op, eventType: "m.room.message", msgtype }
  ),
  // No parse yields a message type that starts with `m.room.message#`: that text is m.room.message with a msgtype.
  fc.record({ op, eventType: text(1).filter((t) => !t.startsWith("m.room.message#")) }).map(({ op, eventType }): Capability => ({ _tag: "RoomEvent", op, eventType })),
  fc.record({ op, eventType: text(1), stateKey: fc.option(text(0), { nil: undefined }) }).map(
    ({ op, eventType, stateKey }): Capability =>
      stateKey === undefined
        ? { _tag: "StateEvent", op, eventType }
        : { _tag: "StateEvent", op, eventType, stateKey }
  ),
  fc.record({ op, eventType: text(1) }).map(({ op, eventType }): Capability => ({ _tag: "ToDevice", op, eventType })),
  text(1).map((room): Capability => ({ _tag: "Timeline", room })),
  fc.constantFrom<Capability>(
    { _tag: "TurnServers" },
    { _tag: "SendDelayedEvent" },
    { _tag: "UpdateDelayedEvent" },
    { _tag: "RtcTransports" },
    { _tag: "UserDirectorySearch" },
    { _tag: "UploadFile" },
    { _tag: "DownloadFile" },
    { _tag: "SendStickyEvent" },
    { _tag: "ReceiveStickyEvent" },
    { _tag: "AlwaysOnScreen" },
    { _tag: "Sticker" },
    { _tag: "Navigate" },
    { _tag: "Modals" }
  ),
  text(1).map((eventType): Capability => ({ _tag: "RoomAccountData", eventType })),
  fc.oneof(
    text(1).filter((s) => !s.includes(":") && !reserved.has(s)),
    text(0).map((s) => `com.example.x:${s}`)
  ).map((name): Capability => ({ _tag: "Other", name }))
)

const prefixes = [
  "m.send.event:",
  "m.receive.event:",
  "m.send.state_event:",
  "m.receive.state_event:",
  "m.send.to_device:",
  "m.receive.to_device:",
  "m.timeline:",
  "org.matrix.msc2762.send.event:",
  "org.matrix.msc2762.receive.event:",
  "org.matrix.msc2762.send.state_event:",
  "org.matrix.msc2762.receive.state_event:",
  "org.matrix.msc3819.send.to_device:",
  "org.matrix.msc3819.receive.to_device:",
  "org.matrix.msc2762.timeline:",
  "com.beeper.capabilities.receive.room_account_data:",
  "m.read.event:",
  ""
]
const capabilityString = fc.oneof(
  fc.tuple(fc.constantFrom(...prefixes), text(0)).map(([p, s]) => p + s),
  fc.constantFrom(...reserved),
  fc.string()
)

const RUNS = 2000

describe("properties", () => {
  it("parse(format(c)) deep-equals c, in both namings", () => {
    fc.assert(
      fc.property(capability, fc.constantFrom("stable" as const, "unstable" as const), (c, naming) => {
        expect(parsed(formatCapability(c, naming))).toStrictEqual(c)
      }),
      { numRuns: RUNS }
    )
  })

  it("format(parse(s)) is canonical: a fixed point that re-parses to the same value", () => {
    fc.assert(
      fc.property(capabilityString, (s) => {
        const r = parseCapability(s)
        if (Result.isFailure(r)) return
        const canonical = formatCapability(r.success)
        expect(parsed(canonical)).toStrictEqual(r.success)
        expect(formatCapability(parsed(canonical))).toBe(canonical)
      }),
      { numRuns: RUNS }
    )
  })

  it("two strings mean the same capability exactly when their canonical forms agree", () => {
    fc.assert(
      fc.property(capabilityString, capabilityString, (a, b) => {
        const ra = parseCapability(a)
        const rb = parseCapability(b)
        if (Result.isFailure(ra) || Result.isFailure(rb)) return
        const same = JSON.stringify(ra.success) === JSON.stringify(rb.success)
        expect(formatCapability(ra.success) === formatCapability(rb.success)).toBe(same)
      }),
      { numRuns: RUNS }
    )
  })

  it("stable and unstable spellings of a string parse alike", () => {
    fc.assert(
      fc.property(capability, (c) => {
        const stable = parseCapability(formatCapability(c, "stable"))
        const unstable = parseCapability(formatCapability(c, "unstable"))
        expect(stable).toStrictEqual(unstable)
      }),
      { numRuns: RUNS }
    )
  })

  it("never throws, and invalid strings are exactly the malformed event/timeline ones", () => {
    fc.assert(
      fc.property(capabilityString, (s) => {
        const r = parseCapability(s)
        if (Result.isSuccess(r)) return
        expect(r.failure.capability).toBe(s)
        const bad =
          s === "" ||
          prefixes.some((p) => p !== "" && p !== "m.read.event:" && s.startsWith(p))
        expect(bad).toBe(true)
      }),
      { numRuns: RUNS }
    )
  })
})
