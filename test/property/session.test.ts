/**
 * Properties of whole sessions: arbitrary input never throws or escapes the five phases, and a
 * widget receives exactly the room events an independent oracle allows — no leak across rooms or
 * types — and every send is performed exactly when the oracle allows it.
 */
import fc from "fast-check"
import { type RoomEvent } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { answeringHooks, approveAll, flush, Harness, ROOM } from "../src/index.ts"

const PHASES = ["loading", "negotiating", "ready", "renegotiating", "closed"]
const ROOMS = [ROOM, "!b:localhost", "!c:localhost"]
const TYPES = ["m.room.message", "m.room.topic", "org.example#x", "org.example\\y"]
/** Message types that look escaped but are literal (MSC2762): rarer, so deliveries stay frequent. */
const LITERAL_TYPES = ["org.example.\\#hash", "m.room.message\\#m.text"]
const eventType = fc.oneof({ arbitrary: fc.constantFrom(...TYPES), weight: 4 }, { arbitrary: fc.constantFrom(...LITERAL_TYPES), weight: 1 })
const MSGTYPES = ["m.text", "m.emote", undefined]
const KEYS = ["", "a", "#b"]

describe("arbitrary input", () => {
  it("never throws, always answers identifiable requests, stays in the five phases", async () => {
    const envelope = fc.record(
      {
        api: fc.oneof(fc.constant("fromWidget"), fc.constant("toWidget"), fc.jsonValue()),
        widgetId: fc.oneof(fc.constant("w1"), fc.string()),
        requestId: fc.oneof(fc.string({ minLength: 1 }), fc.jsonValue()),
        action: fc.oneof(
          fc.constantFrom("send_event", "read_events", "request_capabilities", "content_loaded", "supported_api_versions", "watch_turn_servers", "send_to_device", "capabilities"),
          fc.constantFrom("navigate", "org.matrix.msc2931.navigate", "set_always_on_screen", "m.sticker", "open_modal", "set_button_enabled", "close_modal", "io.element.join", "constructor"),
          fc.string()
        ),
        data: fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom("type", "content", "state_key", "room_id", "limit", "room_ids", "capabilities", "messages", "encrypted", "uri", "value", "name", "url", "button", "enabled", "buttons"), fc.jsonValue())),
        response: fc.jsonValue()
      },
      { requiredKeys: [] }
    )
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(fc.jsonValue(), envelope, fc.string()), { maxLength: 12 }), fc.boolean(), async (messages, loaded) => {
        const h = new Harness({ approver: approveAll, hooks: answeringHooks, customActions: { "io.element.join": async (data) => data } })
        if (loaded) await h.ready(["m.send.event:m.room.message", "m.receive.event:m.room.message", "m.navigate", "m.always_on_screen", "m.sticker", "m.modals"])
        for (const message of messages) {
          expect(() => h.session.receive(message)).not.toThrow()
        }
        await flush()
        expect(PHASES).toContain(h.phase)
        // Still usable afterwards.
        expect(h.responseTo(h.request("supported_api_versions", {}, "probe"))).toBeDefined()
      }),
      { numRuns: 300 }
    )
  })
})

/** The oracle: capabilities read naively from their strings, independent of the engine's parser. */
const oracle = (approved: ReadonlyArray<string>, home: string) => {
  const unescape = (s: string) => s.replace(/\\([\\#])/g, "$1")
  const rooms = new Set([home])
  let allRooms = false
  const rules: Array<{ op: string; state: boolean; type: string; sub?: string }> = []
  for (const cap of approved) {
    const m = /^(?:m|org\.matrix\.msc2762)\.(send|receive)\.(event|state_event):(.*)$/s.exec(cap)
    const t = /^(?:m|org\.matrix\.msc2762)\.timeline:(.+)$/s.exec(cap)
    if (t) {
      if (t[1] === "*") allRooms = true
      else rooms.add(t[1]!)
    }
    if (!m) continue
    const [, op, kind, rest] = m
    if (kind === "event") {
      // MSC2762: only m.room.message takes '#<msgtype>'; other message types are taken as written.
      const msg = /^m\.room\.message#(.*)$/s.exec(rest!)
      rules.push(msg ? { op: op!, state: false, type: "m.room.message", sub: msg[1]! } : { op: op!, state: false, type: rest! })
      continue
    }
    // State events: split on the first unescaped '#'.
    let i = 0
    let cut = -1
    for (; i < rest!.length; i++) {
      if (rest![i] === "\\") i++
      else if (rest![i] === "#") {
        cut = i
        break
      }
    }
    const typePart = cut < 0 ? rest! : rest!.slice(0, cut)
    const type = unescape(typePart)
    rules.push({ op: op!, state: true, type, ...(cut < 0 ? {} : { sub: rest!.slice(cut + 1) }) })
  }
  const allows = (op: string, e: { type: string; room_id: string; state_key?: string; content: Record<string, unknown> }) =>
    (allRooms || rooms.has(e.room_id)) &&
    rules.some((r) =>
      r.op === op && r.type === e.type && r.state === (e.state_key !== undefined) &&
      (r.sub === undefined || (r.state ? r.sub === e.state_key : e.type === "m.room.message" && r.sub === e.content.msgtype))
    )
  return allows
}

const capability = fc.oneof(
  fc.tuple(fc.constantFrom("m", "org.matrix.msc2762"), fc.constantFrom("send", "receive"), fc.constantFrom("event", "state_event"), eventType, fc.option(fc.constantFrom(...KEYS, ...MSGTYPES.filter(Boolean) as string[]), { nil: undefined }), fc.constantFrom(false, false, false, true)).map(
    ([prefix, op, kind, type, sub, escaped]) => `${prefix}.${op}.${kind}:${escaped ? type.replace(/[\\#]/g, "\\$&") : type}${sub === undefined ? "" : `#${sub}`}`
  ),
  fc.constantFrom(...ROOMS, "*").map((room) => `m.timeline:${room}`),
  // Broad grants, so that deliveries and sends happen often enough to be checked.
  fc.constantFrom("m.receive.event:m.room.message", "m.send.event:m.room.message", "m.receive.state_event:m.room.topic", "m.receive.event:org.example.\\#hash", "m.send.event:org.example#x"),
  fc.string()
)

const event = fc.record({
  type: eventType,
  room_id: fc.constantFrom(...ROOMS),
  state_key: fc.option(fc.constantFrom(...KEYS), { nil: undefined }),
  msgtype: fc.constantFrom(...MSGTYPES)
}).map(({ msgtype, state_key, ...rest }) => ({ ...rest, ...(state_key === undefined ? {} : { state_key }), content: msgtype === undefined ? {} : { msgtype } }))

describe("capability enforcement against an oracle", () => {
  it("a widget receives exactly the events the oracle allows, and sends exactly what it allows", async () => {
    let delivered = 0
    let sent = 0
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(capability, { maxLength: 6 }), fc.array(event, { maxLength: 15 }), fc.array(event, { maxLength: 8 }), async (caps, incoming, outgoing) => {
        const h = new Harness({ approver: approveAll })
        await h.ready(caps, ["0.0.2"])
        h.take()
        const approved = h.session.info().approved
        const allows = oracle(approved, ROOM)
        for (const e of incoming) h.homeserver.inject({ ...e, sender: "@bob:localhost" })
        const got = Harness.requests(h.take()).filter((m) => m.action === "send_event").map((m) => m.data as unknown as RoomEvent)
        const want = incoming.filter((e) => allows("receive", e))
        expect(got.map((e) => [e.type, e.room_id, e.state_key, e.content])).toEqual(want.map((e) => [e.type, e.room_id, e.state_key, e.content]))
        delivered += got.length
        const before = h.homeserver.calls.length
        for (const e of outgoing) h.request("send_event", { type: e.type, content: e.content, room_id: e.room_id, ...(e.state_key === undefined ? {} : { state_key: e.state_key }) })
        await flush()
        const performed = h.homeserver.calls.slice(before).filter((c) => c.method === "sendEvent").map((c) => c.args as { type: string; roomId: string })
        expect(performed.map((c) => [c.type, c.roomId])).toEqual(outgoing.filter((e) => allows("send", e)).map((e) => [e.type, e.room_id]))
        sent += performed.length
      }),
      { numRuns: 1_000 }
    )
    // The property must have exercised both directions, not passed by refusing everything.
    expect(delivered).toBeGreaterThan(30)
    expect(sent).toBeGreaterThan(10)
  })
})

describe("batching", () => {
  it("the chart given a turn's inputs as one event does what it does given them one by one", async () => {
    const { defaultLimits } = await import("@widgethost/core")
    const { ChartDriver } = await import("../src/index.ts")
    const config = { widgetId: "w1", kind: "room" as const, homeRoom: ROOM, waitForIframeLoad: true, policy: { rules: [{ capability: "*", decision: "approve" as const }] }, limits: defaultLimits }
    const input = fc.oneof(
      fc.constant({ _tag: "FrameLoaded" as const }),
      fc.constantFrom("supported_api_versions", "content_loaded", "send_event", "request_capabilities").map((action) => ({ _tag: "FromWidget" as const, raw: { api: "fromWidget", widgetId: "w1", requestId: action, action, data: action === "request_capabilities" ? { capabilities: ["m.receive.event:m.room.message"] } : { type: "m.room.message", content: {} } } })),
      fc.nat(6).map((n) => ({ _tag: "FromWidget" as const, raw: { api: "toWidget", widgetId: "w1", requestId: `wh-${n}`, action: n === 1 ? "capabilities" : "supported_api_versions", data: {}, response: { capabilities: ["m.receive.event:m.room.message"], supported_versions: [] } } })),
      event.map((e) => ({ _tag: "RoomEvent" as const, event: { ...e, event_id: "$x", sender: "@b:hs", origin_server_ts: 1 } })),
      fc.constant({ _tag: "Close" as const, reason: "test" })
    )
    fc.assert(
      fc.property(fc.array(input, { maxLength: 25 }), (inputs) => {
        const oneByOne = new ChartDriver(config)
        for (const i of inputs) oneByOne.send([i])
        const batched = new ChartDriver(config)
        batched.send(inputs)
        const strip = (d: typeof batched) => ({ value: d.value, state: { ...d.state, permissions: d.state.approved }, armed: d.armed })
        expect(strip(batched)).toEqual(strip(oneByOne))
        const wire = (d: typeof batched) => d.commands.map((c) => JSON.stringify({ ...c, permissions: undefined }))
        expect(wire(batched)).toEqual(wire(oneByOne))
        // The runtime's shortcut for plain `inputs` transitions is xstate's macrostep, exactly.
        const macrostep = new ChartDriver(config, { macrostepAlways: true })
        for (const i of inputs) macrostep.send([i])
        expect(strip(macrostep)).toEqual(strip(oneByOne))
        expect(wire(macrostep)).toEqual(wire(oneByOne))
      }),
      { numRuns: 500 }
    )
  })
})
