import { describe, expect, it } from "vitest"
import { compilePermissions, type EventShape, type ReadQuery } from "./permissions.ts"

interface EventCase {
  readonly name: string
  readonly approved: ReadonlyArray<string>
  readonly event: EventShape
  readonly want: boolean
}

const text = { msgtype: "m.text", body: "hi" }
const emote = { msgtype: "m.emote", body: "waves" }

/** Receive-direction cases; each is mirrored to the send direction below. */
const receiveCases: ReadonlyArray<EventCase> = [
  // m.room.message and msgtypes
  { name: "no msgtype filter covers m.text", approved: ["m.receive.event:m.room.message"], event: { type: "m.room.message", content: text }, want: true },
  { name: "no msgtype filter covers a message without msgtype", approved: ["m.receive.event:m.room.message"], event: { type: "m.room.message", content: {} }, want: true },
  { name: "no msgtype filter covers a message without content", approved: ["m.receive.event:m.room.message"], event: { type: "m.room.message" }, want: true },
  { name: "#m.text covers m.text", approved: ["m.receive.event:m.room.message#m.text"], event: { type: "m.room.message", content: text }, want: true },
  { name: "#m.text does not cover m.emote", approved: ["m.receive.event:m.room.message#m.text"], event: { type: "m.room.message", content: emote }, want: false },
  { name: "#m.text does not cover a missing msgtype", approved: ["m.receive.event:m.room.message#m.text"], event: { type: "m.room.message", content: {} }, want: false },
  { name: "#m.text does not cover a non-string msgtype", approved: ["m.receive.event:m.room.message#m.text"], event: { type: "m.room.message", content: { msgtype: ["m.text"] } }, want: false },
  { name: "#m.text does not cover non-object content", approved: ["m.receive.event:m.room.message#m.text"], event: { type: "m.room.message", content: "m.text" }, want: false },
  { name: "bare # covers only the empty msgtype", approved: ["m.receive.event:m.room.message#"], event: { type: "m.room.message", content: { msgtype: "" } }, want: true },
  { name: "bare # does not cover m.text", approved: ["m.receive.event:m.room.message#"], event: { type: "m.room.message", content: text }, want: false },
  { name: "two msgtypes: the second", approved: ["m.receive.event:m.room.message#m.text", "m.receive.event:m.room.message#m.emote"], event: { type: "m.room.message", content: emote }, want: true },
  { name: "##m.text is the msgtype #m.text", approved: ["m.receive.event:m.room.message##m.text"], event: { type: "m.room.message", content: { msgtype: "#m.text" } }, want: true },
  { name: "a msgtype filter plus the unfiltered capability: unfiltered wins", approved: ["m.receive.event:m.room.message#m.text", "m.receive.event:m.room.message"], event: { type: "m.room.message", content: emote }, want: true },
  // other message-like types: only the type matters
  { name: "m.reaction by type", approved: ["m.receive.event:m.reaction"], event: { type: "m.reaction", content: { msgtype: "anything" } }, want: true },
  { name: "redaction is an ordinary message-like type", approved: ["m.receive.event:m.room.redaction"], event: { type: "m.room.redaction", content: { redacts: "$x" } }, want: true },
  { name: "redaction needs its own capability", approved: ["m.receive.event:m.room.message"], event: { type: "m.room.redaction", content: { redacts: "$x" } }, want: false },
  { name: "an unescaped # in a custom type is part of it", approved: ["m.receive.event:org.example#a"], event: { type: "org.example#a" }, want: true },
  { name: "…and it is not a filter", approved: ["m.receive.event:org.example#a"], event: { type: "org.example" }, want: false },
  { name: "m.room.message\\#m.text is a different type", approved: ["m.receive.event:m.room.message\\#m.text"], event: { type: "m.room.message", content: text }, want: false },
  { name: "other types do not leak", approved: ["m.receive.event:m.room.message"], event: { type: "m.room.messages", content: text }, want: false },
  // state
  { name: "state capability without # covers every key", approved: ["m.receive.state_event:m.room.member"], event: { type: "m.room.member", state_key: "@a:b" }, want: true },
  { name: "state capability without # covers the empty key", approved: ["m.receive.state_event:m.room.member"], event: { type: "m.room.member", state_key: "" }, want: true },
  { name: "#key covers that key", approved: ["m.receive.state_event:m.room.member#@a:b"], event: { type: "m.room.member", state_key: "@a:b" }, want: true },
  { name: "#key does not cover another key", approved: ["m.receive.state_event:m.room.member#@a:b"], event: { type: "m.room.member", state_key: "@c:d" }, want: false },
  { name: "bare # is the empty state key", approved: ["m.receive.state_event:m.room.name#"], event: { type: "m.room.name", state_key: "" }, want: true },
  { name: "bare # does not cover a non-empty key", approved: ["m.receive.state_event:m.room.name#"], event: { type: "m.room.name", state_key: "x" }, want: false },
  { name: "##test is the state key #test", approved: ["m.receive.state_event:m.room.name##test"], event: { type: "m.room.name", state_key: "#test" }, want: true },
  { name: "escaped # in the type", approved: ["m.receive.state_event:org.example.\\#test#hello"], event: { type: "org.example.#test", state_key: "hello" }, want: true },
  { name: "escaped # in the type, other key", approved: ["m.receive.state_event:org.example.\\#test#hello"], event: { type: "org.example.#test", state_key: "bye" }, want: false },
  // state vs message-like never cross
  { name: "a message capability never matches a state event", approved: ["m.receive.event:m.room.topic"], event: { type: "m.room.topic", state_key: "" }, want: false },
  { name: "a state capability never matches a message-like event", approved: ["m.receive.state_event:m.room.message"], event: { type: "m.room.message", content: text }, want: false },
  { name: "a state capability never matches a message-like event of its type", approved: ["m.receive.state_event:m.room.topic"], event: { type: "m.room.topic" }, want: false },
  // unstable names and garbage
  { name: "unstable names grant the same", approved: ["org.matrix.msc2762.receive.state_event:m.room.topic"], event: { type: "m.room.topic", state_key: "" }, want: true },
  { name: "invalid strings grant nothing", approved: ["m.receive.state_event:m.room.topic\\"], event: { type: "m.room.topic", state_key: "" }, want: false },
  { name: "invalid escapes grant nothing", approved: ["m.receive.state_event:m.reaction\\x"], event: { type: "m.reaction\\x", state_key: "" }, want: false },
  { name: "a message type is taken as written, backslashes included", approved: ["m.receive.event:org.example.\\#hash"], event: { type: "org.example.\\#hash" }, want: true },
  { name: "an escaped # in a message type is not unescaped", approved: ["m.receive.event:org.example.\\#hash"], event: { type: "org.example.#hash" }, want: false },
  { name: "m.room.message\\#m.text is a literal type, not m.room.message", approved: ["m.receive.event:m.room.message\\#m.text"], event: { type: "m.room.message", content: text }, want: false },
  { name: "read capabilities are not receive capabilities", approved: ["m.read.event:m.reaction"], event: { type: "m.reaction" }, want: false },
  { name: "to-device capabilities are not room capabilities", approved: ["m.receive.to_device:m.reaction"], event: { type: "m.reaction" }, want: false },
  { name: "nothing approved", approved: [], event: { type: "m.room.message", content: text }, want: false }
]

const toSend = (s: string) => s.replace(/^m\.receive\./, "m.send.").replace(/^org\.matrix\.msc2762\.receive\./, "org.matrix.msc2762.send.")

describe("mayReceive / maySend", () => {
  it.each(receiveCases)("receive: $name", ({ approved, event, want }) => {
    const p = compilePermissions(approved)
    expect(p.mayReceive(event)).toBe(want)
    // and the receive capabilities never let anything be sent
    expect(p.maySend(event)).toBe(false)
  })

  it.each(receiveCases)("send: $name", ({ approved, event, want }) => {
    const p = compilePermissions(approved.map(toSend))
    expect(p.maySend(event)).toBe(want)
    expect(p.mayReceive(event)).toBe(false)
  })
})

describe("mayRead", () => {
  const cases: ReadonlyArray<{ readonly approved: ReadonlyArray<string>; readonly query: ReadQuery; readonly want: boolean }> = [
    { approved: ["m.receive.event:m.room.message"], query: { type: "m.room.message" }, want: true },
    { approved: ["m.receive.event:m.room.message"], query: { type: "m.room.message", msgtype: "m.text" }, want: true },
    { approved: ["m.receive.event:m.room.message#m.text"], query: { type: "m.room.message", msgtype: "m.text" }, want: true },
    { approved: ["m.receive.event:m.room.message#m.text"], query: { type: "m.room.message", msgtype: "m.emote" }, want: false },
    // reading every msgtype needs the unrestricted capability
    { approved: ["m.receive.event:m.room.message#m.text"], query: { type: "m.room.message" }, want: false },
    { approved: ["m.receive.event:m.reaction"], query: { type: "m.reaction", msgtype: "ignored" }, want: true },
    { approved: ["m.receive.event:m.reaction"], query: { type: "m.reaction", stateKey: "" }, want: false },
    { approved: ["m.receive.state_event:m.room.topic"], query: { type: "m.room.topic", stateKey: "" }, want: true },
    { approved: ["m.receive.state_event:m.room.topic"], query: { type: "m.room.topic", stateKey: true }, want: true },
    { approved: ["m.receive.state_event:m.room.topic"], query: { type: "m.room.topic" }, want: false },
    { approved: ["m.receive.state_event:m.room.member#@a:b"], query: { type: "m.room.member", stateKey: "@a:b" }, want: true },
    { approved: ["m.receive.state_event:m.room.member#@a:b"], query: { type: "m.room.member", stateKey: "@c:d" }, want: false },
    // any state key needs the unrestricted capability
    { approved: ["m.receive.state_event:m.room.member#@a:b"], query: { type: "m.room.member", stateKey: true }, want: false },
    { approved: ["m.send.state_event:m.room.topic"], query: { type: "m.room.topic", stateKey: "" }, want: false },
    { approved: ["m.send.event:m.room.message"], query: { type: "m.room.message" }, want: false }
  ]
  it.each(cases)("%j", ({ approved, query, want }) => {
    expect(compilePermissions(approved).mayRead(query)).toBe(want)
  })
})

describe("to-device", () => {
  it("separates directions and types, stable and unstable alike", () => {
    const p = compilePermissions([
      "m.send.to_device:m.call.invite",
      "org.matrix.msc3819.receive.to_device:io.element.call.encryption_keys",
      "m.receive.to_device:a#b"
    ])
    expect(p.maySendToDevice("m.call.invite")).toBe(true)
    expect(p.mayReceiveToDevice("m.call.invite")).toBe(false)
    expect(p.mayReceiveToDevice("io.element.call.encryption_keys")).toBe(true)
    expect(p.maySendToDevice("io.element.call.encryption_keys")).toBe(false)
    expect(p.mayReceiveToDevice("a#b")).toBe(true)
    expect(p.mayReceiveToDevice("a\\#b")).toBe(false)
    // MSC3819 names no escapes: the text after the prefix is the type
    expect(compilePermissions(["m.receive.to_device:a\\#b"]).mayReceiveToDevice("a\\#b")).toBe(true)
    expect([...p.receiveToDeviceTypes].sort()).toStrictEqual(["a#b", "io.element.call.encryption_keys"])
    expect(p.receiveTypes.size).toBe(0)
  })
})

describe("rooms", () => {
  const cases: ReadonlyArray<{
    readonly approved: ReadonlyArray<string>
    readonly room: string
    readonly home: string | undefined
    readonly want: boolean
  }> = [
    { approved: [], room: "!home:x", home: "!home:x", want: true },
    { approved: [], room: "!other:x", home: "!home:x", want: false },
    { approved: [], room: "!other:x", home: undefined, want: false },
    { approved: ["m.timeline:!other:x"], room: "!other:x", home: "!home:x", want: true },
    { approved: ["m.timeline:!other:x"], room: "!other:x", home: undefined, want: true },
    { approved: ["m.timeline:!other:x"], room: "!third:x", home: "!home:x", want: false },
    { approved: ["org.matrix.msc2762.timeline:!other:x"], room: "!other:x", home: undefined, want: true },
    { approved: ["m.timeline:*"], room: "!anything:x", home: undefined, want: true },
    { approved: ["org.matrix.msc2762.timeline:*"], room: "!anything:x", home: "!home:x", want: true },
    { approved: ["m.timeline:"], room: "", home: undefined, want: false },
    { approved: ["m.read.timeline:!other:x"], room: "!other:x", home: undefined, want: false }
  ]
  it.each(cases)("%j", ({ approved, room, home, want }) => {
    expect(compilePermissions(approved).mayUseRoom(room, home)).toBe(want)
  })

  it("exposes the approved rooms", () => {
    const p = compilePermissions(["m.timeline:!a:x", "org.matrix.msc2762.timeline:!b:x", "m.timeline:!a:x"])
    expect(p.allRooms).toBe(false)
    expect([...p.timelineRooms].sort()).toStrictEqual(["!a:x", "!b:x"])
    const all = compilePermissions(["m.timeline:*"])
    expect(all.allRooms).toBe(true)
    expect(all.timelineRooms.size).toBe(0)
  })
})

describe("flags and indexes", () => {
  it("plain capabilities, in both namings", () => {
    for (const [approved, want] of [
      [["m.turn_servers", "m.send.delayed_event", "m.update_delayed_event"], true],
      [["town.robin.msc3846.turn_servers", "org.matrix.msc4157.send.delayed_event", "org.matrix.msc4157.update_delayed_event"], true],
      [["m.sticker", "m.turn_servers:", "m.send.delayed_events"], false]
    ] as const) {
      const p = compilePermissions(approved)
      expect([p.turnServers, p.sendDelayedEvents, p.updateDelayedEvents]).toStrictEqual([want, want, want])
    }
    const only = compilePermissions(["m.update_delayed_event"])
    expect([only.turnServers, only.sendDelayedEvents, only.updateDelayedEvents]).toStrictEqual([false, false, true])
  })

  it("client-side capabilities, in both namings, each grants only itself", () => {
    const flags = (approved: ReadonlyArray<string>) => {
      const p = compilePermissions(approved)
      return [p.alwaysOnScreen, p.sticker, p.navigate, p.modals]
    }
    expect(flags(["m.always_on_screen"])).toStrictEqual([true, false, false, false])
    expect(flags(["m.sticker"])).toStrictEqual([false, true, false, false])
    expect(flags(["org.matrix.msc2931.navigate"])).toStrictEqual([false, false, true, false])
    expect(flags(["m.navigate"])).toStrictEqual([false, false, true, false])
    expect(flags(["org.matrix.msc2790.modals"])).toStrictEqual([false, false, false, true])
    expect(flags(["m.modals", "m.sticker:", "m.capability.screenshot"])).toStrictEqual([false, false, false, true])
  })

  it("sticky event capabilities (MSC4407) grant nothing, even if approved", () => {
    for (const sticky of [
      "m.send.sticky_event",
      "m.receive.sticky_event",
      "org.matrix.msc4407.send.sticky_event",
      "org.matrix.msc4407.receive.sticky_event"
    ]) {
      const p = compilePermissions([sticky])
      expect([p.alwaysOnScreen, p.sticker, p.navigate, p.modals], sticky).toStrictEqual([false, false, false, false])
      expect(p.receiveTypes.size + p.receivableState.length, sticky).toBe(0)
    }
  })

  it("receiveTypes lists receivable message-like and state types, not send ones", () => {
    const p = compilePermissions([
      "m.receive.event:m.room.message#m.text",
      "m.receive.state_event:m.room.member#@a:b",
      "m.send.event:m.reaction",
      "m.receive.to_device:m.call.invite",
      "m.receive.state_event:bad\\"
    ])
    expect([...p.receiveTypes].sort()).toStrictEqual(["m.room.member", "m.room.message"])
    expect([...p.receiveMessageTypes]).toStrictEqual(["m.room.message"])
    expect([...p.receiveStateTypes]).toStrictEqual(["m.room.member"])
    const both = compilePermissions(["m.receive.event:m.room.topic", "m.receive.state_event:m.room.topic#"])
    expect([...both.receiveTypes]).toStrictEqual(["m.room.topic"])
    expect([...both.receiveMessageTypes]).toStrictEqual(["m.room.topic"])
    expect([...both.receiveStateTypes]).toStrictEqual(["m.room.topic"])
  })

  it("receivableState: an unrestricted capability subsumes the keyed ones", () => {
    const p = compilePermissions([
      "m.receive.state_event:m.room.member#@a:b",
      "m.receive.state_event:m.room.member#@c:d",
      "m.receive.state_event:m.room.name#",
      "m.receive.state_event:m.room.topic#x",
      "m.receive.state_event:m.room.topic",
      "m.send.state_event:m.room.avatar",
      "m.receive.event:m.room.create"
    ])
    const byType = (a: { type: string; stateKey?: string }, b: { type: string; stateKey?: string }) =>
      `${a.type}#${a.stateKey}`.localeCompare(`${b.type}#${b.stateKey}`)
    expect([...p.receivableState].sort(byType)).toStrictEqual(
      [
        { type: "m.room.member", stateKey: "@a:b" },
        { type: "m.room.member", stateKey: "@c:d" },
        { type: "m.room.name", stateKey: "" },
        { type: "m.room.topic" }
      ].sort(byType)
    )
  })

  it("accepts any iterable once", () => {
    function* approved() {
      yield "m.receive.event:m.reaction"
    }
    expect(compilePermissions(approved()).mayReceive({ type: "m.reaction" })).toBe(true)
  })
})
