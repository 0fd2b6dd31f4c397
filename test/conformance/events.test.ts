/** Conformance: MSC2762 send, receive and read events, update_state, and their bad input. */
import { HomeserverError } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, ROOM } from "../src/index.ts"
import { anyOf, stringContaining } from "../src/matchers.ts"

const OTHER = "!other:localhost"

const readyWith = async (capabilities: string[], options: ConstructorParameters<typeof Harness>[0] = {}, versions?: string[]) => {
  const h = new Harness({ approver: approveAll, ...options })
  await h.ready(capabilities, versions)
  h.take()
  return h
}

describe("fromWidget send_event", () => {
  it("MSC2762 example: a state event is sent to the widget's room and answered with room_id and event_id", async () => {
    const h = await readyWith(["m.send.state_event:m.room.topic"])
    const request = { api: "fromWidget", widgetId: "w1", requestid: "generated-id-1234", action: "send_event", data: { state_key: "", type: "m.room.topic", content: { topic: "Hello world!" } } }
    h.session.receive(request)
    await flush()
    const [reply] = h.take().filter((m) => m.api === "fromWidget")
    const sent = h.homeserver.rooms.get(ROOM)!.timeline.at(-1)!
    expect(reply).toEqual({ ...request, response: { room_id: ROOM, event_id: sent.event_id } })
    expect(sent).toMatchObject({ type: "m.room.topic", state_key: "", content: { topic: "Hello world!" } })
  })

  it.each([
    ["m.send.event:m.room.message", { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } }, true],
    ["m.send.event:m.room.message#m.text", { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } }, true],
    ["m.send.event:m.room.message#m.text", { type: "m.room.message", content: { msgtype: "m.emote", body: "hi" } }, false],
    ["org.matrix.msc2762.send.event:m.room.message", { type: "m.room.message", content: { body: "hi" } }, true],
    ["m.send.event:m.room.message", { type: "m.room.message", state_key: "", content: {} }, false],
    ["m.send.state_event:m.room.name#", { type: "m.room.name", state_key: "", content: { name: "x" } }, true],
    ["m.send.state_event:m.room.name#", { type: "m.room.name", state_key: "x", content: { name: "x" } }, false],
    ["m.send.state_event:org.example.\\#test#hello", { type: "org.example.#test", state_key: "hello", content: {} }, true],
    ["m.send.event:m.reaction", { type: "m.room.message", content: { body: "hi" } }, false]
  ])("%s allows %j: %s", async (capability, data, allowed) => {
    const h = await readyWith([capability])
    const id = h.request("send_event", data)
    await flush()
    const response = h.responseTo(id)
    if (allowed) expect(response).toMatchObject({ room_id: ROOM, event_id: anyOf(String) })
    else expect(response).toMatchObject({ error: { message: stringContaining("Not allowed") } })
    expect(h.homeserver.calls.filter((c) => c.method === "sendEvent")).toHaveLength(allowed ? 1 : 0)
  })

  it("room_id of another room needs m.timeline for that room", async () => {
    const h = await readyWith(["m.send.event:m.room.message"])
    const refused = h.request("send_event", { type: "m.room.message", content: {}, room_id: OTHER })
    expect(h.responseTo(refused)).toMatchObject({ error: { message: stringContaining(OTHER) } })
    const h2 = await readyWith(["m.send.event:m.room.message", `m.timeline:${OTHER}`])
    const ok = h2.request("send_event", { type: "m.room.message", content: {}, room_id: OTHER })
    await flush()
    expect(h2.responseTo(ok)).toMatchObject({ room_id: OTHER })
  })

  it("forged sender, event_id and origin_server_ts are refused, naming them, and never reach the homeserver", async () => {
    const h = await readyWith(["m.send.event:m.room.message"])
    const id = h.request("send_event", { type: "m.room.message", content: { body: "x" }, sender: "@mallory:evil", event_id: "$forged", origin_server_ts: 1 })
    await flush()
    expect(h.responseTo(id)).toEqual({ error: { code: "Unsupported", message: 'Not supported: send_event has no field "sender", "event_id", "origin_server_ts"; nothing was sent' } })
    expect(h.homeserver.calls.filter((c) => c.method === "sendEvent")).toEqual([])
  })

  it("m.room.redaction with content.redacts goes through the redact endpoint; redacts elsewhere does not", async () => {
    const h = await readyWith(["m.send.event:m.room.redaction", "m.send.event:m.room.message"])
    h.request("send_event", { type: "m.room.redaction", content: { redacts: "$target", reason: "spam" } })
    h.request("send_event", { type: "m.room.message", content: { redacts: "$target", body: "not a redaction" } })
    await flush()
    expect(h.homeserver.calls.map((c) => c.method)).toEqual(["redact", "sendEvent"])
    expect(h.homeserver.calls[0]!.args).toEqual({ _tag: "Redact", roomId: ROOM, eventId: "$target", reason: "spam" })
  })

  it.each([
    [{ content: {} }, "type must be a non-empty string"],
    [{ type: "", content: {} }, "type must be a non-empty string"],
    [{ type: "m.room.message" }, "content must be an object"],
    [{ type: "m.room.message", content: [] }, "content must be an object"],
    [{ type: "m.room.topic", state_key: 5, content: {} }, "state_key must be a string"],
    [{ type: "m.room.message", content: {}, room_id: 7 }, "room_id must be a string"],
    [{ type: "m.room.message", content: {}, delay: -1 }, "delay must be a non-negative integer"]
  ])("bad send_event %j: %s, nothing sent, session usable", async (data, message) => {
    const h = await readyWith(["m.send.event:m.room.message", "m.send.state_event:m.room.topic"])
    const id = h.request("send_event", data)
    expect(h.responseTo(id)).toMatchObject({ error: { message: stringContaining(message) } })
    await flush()
    expect(h.homeserver.calls).toHaveLength(0)
    expect(h.phase).toBe("ready")
  })

  it("homeserver errors pass through as matrix_api_error with only spec headers", async () => {
    const h = await readyWith(["m.send.event:m.room.message"])
    h.homeserver.failNext(
      "sendEvent",
      new HomeserverError({ message: "Too many requests", http: { status: 429, headers: { "retry-after": "2" }, url: "https://hs/_matrix/client/v3/rooms/x/send", body: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: 2000 } } })
    )
    const id = h.request("send_event", { type: "m.room.message", content: {} })
    await flush()
    expect(h.responseTo(id)).toEqual({
      error: {
        message: "Too many requests",
        code: "Homeserver",
        matrix_api_error: { http_status: 429, http_headers: { "retry-after": "2" }, url: "https://hs/_matrix/client/v3/rooms/x/send", response: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: 2000 } }
      }
    })
  })

  it("account widgets send to the viewed room; a room change is ordered with requests", async () => {
    const h = new Harness({ approver: approveAll, widget: { kind: "account" } })
    h.engine.setViewedRoom(ROOM)
    await h.ready(["m.send.event:m.room.message"])
    const first = h.request("send_event", { type: "m.room.message", content: {} })
    h.engine.setViewedRoom(OTHER)
    const second = h.request("send_event", { type: "m.room.message", content: {} })
    await flush()
    expect(h.responseTo(first)).toMatchObject({ room_id: ROOM })
    expect(h.responseTo(second)).toMatchObject({ room_id: OTHER })
  })
})

describe("toWidget send_event (receiving)", () => {
  it("MSC2762 example: the event itself is the request data, acknowledged with an empty response", async () => {
    const h = await readyWith(["m.receive.state_event:m.room.topic"], {}, ["0.0.2"])
    const example = {
      type: "m.room.topic",
      sender: "@alice:example.org",
      event_id: "$example",
      room_id: ROOM,
      state_key: "",
      origin_server_ts: 1574383781154,
      content: { topic: "Hello world!" },
      unsigned: { age: 12345 }
    }
    h.homeserver.inject(example)
    const [request] = Harness.requests(h.take())
    expect(request).toMatchObject({ api: "toWidget", widgetId: "w1", action: "send_event", data: example })
    h.respond(request!, {})
    expect(h.session.info().counters.unmatched).toBe(0)
  })

  it("delivers matching events once, as the server echo, in order; nothing else", async () => {
    const h = await readyWith(["m.receive.event:m.room.message#m.text"])
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "1" } })
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.emote", body: "no" } })
    h.homeserver.inject({ type: "m.room.message", room_id: OTHER, sender: "@bob:localhost", content: { msgtype: "m.text", body: "other room" } })
    h.homeserver.inject({ type: "m.reaction", room_id: ROOM, sender: "@bob:localhost", content: {} })
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "2" } })
    const delivered = Harness.requests(h.take())
    expect(delivered.map((m) => [m.action, (m.data as { content: { body: string } }).content.body])).toEqual([["send_event", "1"], ["send_event", "2"]])
  })

  it("nothing is delivered before the session is established", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    h.take()
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { body: "early" } })
    expect(Harness.requests(h.take()).filter((m) => m.action === "send_event")).toEqual([])
  })

  it("m.timeline:* receives from every room; m.timeline:<id> from that room only", async () => {
    const all = await readyWith(["m.receive.event:m.room.message", "m.timeline:*"])
    const one = await readyWith(["m.receive.event:m.room.message", `org.matrix.msc2762.timeline:${OTHER}`], { homeserver: all.homeserver, engine: all.engine, clock: all.clock })
    all.homeserver.inject({ type: "m.room.message", room_id: "!third:localhost", sender: "@bob:localhost", content: { body: "3" } })
    all.homeserver.inject({ type: "m.room.message", room_id: OTHER, sender: "@bob:localhost", content: { body: "o" } })
    const bodies = (h: Harness) => Harness.requests(h.take()).filter((m) => m.action === "send_event").map((m) => (m.data as { content: { body: string } }).content.body)
    expect(bodies(all)).toEqual(["3", "o"])
    expect(bodies(one)).toEqual(["o"])
  })

  it("capabilities granted through MSC2974 start delivery at that moment", async () => {
    const h = await readyWith([])
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { body: "before" } })
    h.request("request_capabilities", { capabilities: ["m.receive.event:m.room.message"] })
    await flush()
    h.take()
    h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { body: "after" } })
    expect(Harness.requests(h.take()).map((m) => (m.data as { content: { body: string } }).content.body)).toEqual(["after"])
  })
})

describe("update_state", () => {
  it("the widget's versions are asked only once receiving state is granted (to choose update_state or send_event)", async () => {
    const plain = new Harness({ approver: approveAll })
    const seenPlain = await plain.ready(["m.receive.event:m.room.message"])
    expect(Harness.requests(seenPlain).map((m) => m.action)).not.toContain("supported_api_versions")
    const stateful = new Harness({ approver: approveAll })
    const seenState = await stateful.ready(["m.receive.state_event:m.room.topic"])
    expect(Harness.requests(seenState).map((m) => m.action).filter((a) => a === "supported_api_versions")).toHaveLength(1)
  })

  it("after negotiation: current state of permitted rooms, then only changes", async () => {
    const h = new Harness({ approver: approveAll })
    h.homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:localhost", state_key: "", content: { topic: "Hello world!" } })
    h.homeserver.inject({ type: "m.room.name", room_id: ROOM, sender: "@bob:localhost", state_key: "", content: { name: "not asked" } })
    const seen = await h.ready(["m.receive.state_event:m.room.topic"])
    await flush()
    const initial = Harness.requests([...seen, ...h.take()]).filter((m) => m.action === "update_state")
    expect(initial.map((m) => m.data)).toEqual([{ state: [expect.objectContaining({ type: "m.room.topic", content: { topic: "Hello world!" } })] }])
    h.homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:localhost", state_key: "", content: { topic: "changed" } })
    const change = Harness.requests(h.take())
    expect(change.map((m) => [m.action, m.data])).toEqual([["update_state", { state: [expect.objectContaining({ content: { topic: "changed" } })] }]])
  })

  it("an empty state array when nothing matches, so the widget knows loading finished", async () => {
    const h = new Harness({ approver: approveAll })
    const seen = await h.ready(["m.receive.state_event:m.room.topic"])
    await flush()
    expect(Harness.requests([...seen, ...h.take()]).filter((m) => m.action === "update_state").map((m) => m.data)).toEqual([{ state: [] }])
  })

  it("widgets without update_state support get state changes as send_event", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.receive.state_event:m.room.topic"], ["0.0.2"])
    await flush()
    expect(Harness.requests(h.take()).filter((m) => m.action === "update_state")).toEqual([])
    h.homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:localhost", state_key: "", content: { topic: "changed" } })
    expect(Harness.requests(h.take()).map((m) => m.action)).toEqual(["send_event"])
  })
})

describe("fromWidget read_events", () => {
  const seeded = async (capabilities: string[]) => {
    const h = await readyWith(capabilities)
    for (let i = 0; i < 5; i++) h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: i % 2 ? "m.emote" : "m.text", body: String(i) } })
    h.homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:localhost", state_key: "", content: { topic: "t" } })
    h.homeserver.inject({ type: "m.room.message", room_id: OTHER, sender: "@bob:localhost", content: { msgtype: "m.text", body: "other" } })
    h.take()
    return h
  }
  const bodies = (response: unknown) => (response as { events: Array<{ content: { body?: string } }> }).events.map((e) => e.content.body)

  for (const action of ["read_events", "org.matrix.msc2876.read_events"]) {
    it(`${action}: newest first by default, limit honoured, end only when more remain`, async () => {
      const h = await seeded(["m.receive.event:m.room.message"])
      const first = h.request(action, { type: "m.room.message", limit: 3 })
      await flush()
      const page = h.responseTo(first) as { events: unknown[]; end?: string }
      expect(bodies(page)).toEqual(["4", "3", "2"])
      expect(page.end).toBeDefined()
      const second = h.request(action, { type: "m.room.message", limit: 3, from: page.end })
      await flush()
      const rest = h.responseTo(second) as { events: unknown[]; end?: string }
      expect(bodies(rest)).toEqual(["1", "0"])
      expect(rest.end).toBeUndefined()
    })
  }

  it("dir f: oldest first; msgtype filters", async () => {
    const h = await seeded(["m.receive.event:m.room.message"])
    const id = h.request("read_events", { type: "m.room.message", dir: "f", msgtype: "m.text" })
    await flush()
    expect(bodies(h.responseTo(id))).toEqual(["0", "2", "4"])
  })

  it("a msgtype-limited capability cannot read all messages, only its msgtype", async () => {
    const h = await seeded(["m.receive.event:m.room.message#m.text"])
    const all = h.request("read_events", { type: "m.room.message" })
    const text = h.request("read_events", { type: "m.room.message", msgtype: "m.text" })
    await flush()
    expect(h.responseTo(all)).toMatchObject({ error: {} })
    expect(bodies(h.responseTo(text))).toEqual(["4", "2", "0"])
  })

  it("MSC2762 example: state_key reads state events; state_key true reads any key", async () => {
    const h = await seeded(["m.receive.state_event:m.room.topic"])
    const id = h.request("read_events", { state_key: "", type: "m.room.topic", limit: 25 })
    const any = h.request("read_events", { state_key: true, type: "m.room.topic" })
    await flush()
    expect(h.responseTo(id)).toEqual({ events: [expect.objectContaining({ type: "m.room.topic", state_key: "" })] })
    expect(h.responseTo(any)).toEqual({ events: [expect.objectContaining({ type: "m.room.topic" })] })
  })

  it("room_ids: rooms not approved are refused; * covers approved rooms, merged newest first", async () => {
    const h = await seeded(["m.receive.event:m.room.message", `m.timeline:${OTHER}`])
    const refused = h.request("read_events", { type: "m.room.message", room_ids: ["!nope:localhost"] })
    const star = h.request("read_events", { type: "m.room.message", room_ids: "*", limit: 2 })
    await flush()
    expect(h.responseTo(refused)).toMatchObject({ error: { message: stringContaining("!nope:localhost") } })
    expect(bodies(h.responseTo(star))).toEqual(["other", "4"])
  })

  it.each([
    [{ type: "m.room.message", limit: -1 }, "limit must not be negative"],
    [{ type: "m.room.message", limit: 1.5 }, "limit must be an integer"],
    [{ limit: 1 }, "type must be a non-empty string"],
    [{ type: "m.room.message", room_ids: [1] }, "room_ids must be"],
    [{ type: "m.room.message", dir: "sideways" }, 'dir must be "b" or "f"']
  ])("bad read_events %j: %s", async (data, message) => {
    const h = await seeded(["m.receive.event:m.room.message"])
    expect(h.responseTo(h.request("read_events", data))).toMatchObject({ error: { message: stringContaining(message) } })
  })

  describe("events that could not be decrypted: counted in io.widgethost.withheld, never a silent gap", () => {
    const withUndecryptable = async () => {
      const h = await readyWith(["m.receive.event:m.room.message", `m.timeline:${OTHER}`])
      h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "0" } })
      h.homeserver.injectUndecryptable(ROOM)
      h.homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { msgtype: "m.text", body: "1" } })
      h.homeserver.injectUndecryptable(ROOM)
      h.homeserver.injectUndecryptable(OTHER)
      h.take()
      return h
    }
    it.each<[string, Record<string, unknown>, { events: Array<string>; withheld?: number; end?: boolean }]>([
      ["all of the room read", { type: "m.room.message" }, { events: ["1", "0"], withheld: 2 }],
      ["a stretch with one of them", { type: "m.room.message", limit: 1 }, { events: ["1"], withheld: 1, end: true }],
      ["oldest first, a stretch before any", { type: "m.room.message", limit: 1, dir: "f" }, { events: ["0"], end: true }],
      ["every approved room", { type: "m.room.message", room_ids: "*" }, { events: ["1", "0"], withheld: 3 }]
    ])("given two undecryptable events in the room and one in another, read_events over %s", async (_given, data, want) => {
      const h = await withUndecryptable()
      const id = h.request("read_events", data)
      await flush()
      const response = h.responseTo(id) as Record<string, unknown>
      expect(bodies(response)).toEqual(want.events)
      expect(response["io.widgethost.withheld"]).toBe(want.withheld)
      expect("end" in response).toBe(want.end === true)
      // Never ciphertext: the count is all the widget learns of them.
      expect(JSON.stringify(response)).not.toContain("m.room.encrypted")
    })
    it("nothing withheld: the answer is exactly MSC2762's, without the field", async () => {
      const h = await seeded(["m.receive.event:m.room.message"])
      const id = h.request("read_events", { type: "m.room.message", limit: 1 })
      await flush()
      expect(Object.keys(h.responseTo(id) as object).sort()).toEqual(["end", "events"])
    })
  })

  it("a huge limit is capped by the policy", async () => {
    const h = await seeded(["m.receive.event:m.room.message"])
    h.request("read_events", { type: "m.room.message", limit: 1_000_000 })
    await flush()
    expect((h.homeserver.calls.find((c) => c.method === "readEvents")!.args as { limit: number }).limit).toBe(100)
  })
})
