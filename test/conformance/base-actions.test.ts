/**
 * Conformance: base Widget API (MSC2764), notify_capabilities (MSC2871) and re-exchange (MSC2974).
 * Message in, messages out, through the real engine on a simulated clock.
 */
import { SUPPORTED_API_VERSIONS, type WidgetMessage } from "@widgethost/core"
import type { ApprovalRequest } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, widgetDefinition } from "../src/index.ts"
import { objectContaining, stringContaining } from "../src/matchers.ts"

const actions = (messages: ReadonlyArray<{ action: string }>) => messages.map((m) => m.action)

describe("startup", () => {
  it("waitForIframeLoad: true — nothing is sent before the frame loads, then capabilities are asked", async () => {
    const h = new Harness({ approver: approveAll })
    expect(h.take()).toEqual([])
    expect(h.phase).toBe("loading")
    h.session.frameLoaded()
    expect(actions(h.take())).toEqual(["capabilities"])
    expect(h.phase).toBe("negotiating")
  })

  it("waitForIframeLoad: false — waits for content_loaded, acknowledges it, then negotiates", async () => {
    const h = new Harness({ widget: { waitForIframeLoad: false }, approver: approveAll })
    h.session.frameLoaded()
    expect(h.take()).toEqual([])
    const id = h.request("content_loaded")
    const out = h.take()
    expect(out[0]).toEqual({ api: "fromWidget", widgetId: "w1", requestId: id, action: "content_loaded", data: {}, response: {} })
    expect(actions(out.slice(1))).toEqual(["capabilities"])
  })

  it("websocket widgets (MSC3009: waitForIframeLoad false) wait for content_loaded, whatever they say first", async () => {
    // matrix-widget-api's WidgetApi asks supported_api_versions before it sends content_loaded.
    const h = new Harness({ widget: { waitForIframeLoad: false, transports: ["m.websockets"] }, approver: approveAll })
    const versions = h.request("supported_api_versions")
    const first = h.take()
    expect(h.responseTo(versions, first)).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
    expect(Harness.requests(first)).toEqual([])
    expect(h.phase).toBe("loading")
    h.request("content_loaded")
    expect(actions(Harness.requests(h.take()))).toEqual(["capabilities"])
    expect(h.phase).toBe("negotiating")
  })

  it("capabilities answered → notify_capabilities {requested, approved} → ready", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    h.ackAll(["m.send.event:m.room.message", "org.example.unknown"])
    await flush()
    const notify = Harness.requests(h.take()).find((m) => m.action === "notify_capabilities")
    expect(notify?.data).toEqual({ requested: ["m.send.event:m.room.message", "org.example.unknown"], approved: ["m.send.event:m.room.message"] })
    expect(h.phase).toBe("ready")
  })

  it("supported_api_versions is answered in every phase after first contact", async () => {
    const h = new Harness({ approver: approveAll })
    const ask = () => h.responseTo(h.request("supported_api_versions"))
    expect(h.phase).toBe("loading")
    expect(ask()).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
    h.session.frameLoaded()
    expect(h.phase).toBe("negotiating")
    expect(ask()).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
    h.ackAll([])
    await flush()
    expect(h.phase).toBe("ready")
    expect(ask()).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
  })

  it("waitForIframeLoad: true — content_loaded is acknowledged and changes nothing (the load is the signal)", async () => {
    const h = new Harness({ approver: approveAll })
    for (const id of [h.request("content_loaded"), h.request("content_loaded")]) expect(h.responseTo(id)).toEqual({})
    expect(h.phase).toBe("loading")
    expect(Harness.requests(h.take())).toEqual([])
  })
})

describe("requests in a phase that cannot serve them", () => {
  it.each(["send_event", "read_events", "org.matrix.msc2974.request_capabilities", "watch_turn_servers"])("%s before ready gets an error, never silence", async (action) => {
    const h = new Harness({ approver: approveAll })
    const id = h.request(action, { type: "m.room.message", content: {}, capabilities: [] })
    expect(h.responseTo(id)).toMatchObject({ error: { message: stringContaining("loading") } })
  })
})

describe("unknown actions", () => {
  it.each(["constructor", "__proto__", "toString", "hasOwnProperty"])("an action named like an Object.prototype member (%s) is unknown, and the session lives on", async (action) => {
    const h = new Harness({ approver: approveAll })
    await h.ready([])
    expect(h.responseTo(h.request(action))).toMatchObject({ error: { code: "UnknownAction" } })
    expect(h.responseTo(h.request("supported_api_versions"))).toMatchObject({ supported_versions: SUPPORTED_API_VERSIONS })
  })
})

describe("MSC2974 request_capabilities", () => {
  const ready = async (approved: string[], approver = approveAll) => {
    const asked: string[][] = []
    const h = new Harness({
      approver: async (request) => {
        asked.push([...request.requested])
        return approver(request)
      }
    })
    await h.ready(approved)
    h.take()
    asked.length = 0
    return { h, asked }
  }

  for (const action of ["request_capabilities", "org.matrix.msc2974.request_capabilities"]) {
    it(`${action}: ack {} at once, prompt only for new capabilities, notify the union`, async () => {
      const { h, asked } = await ready(["m.send.event:m.room.message"])
      const id = h.request(action, { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] })
      expect(h.responseTo(id)).toEqual({})
      await flush()
      expect(asked).toEqual([["m.receive.event:m.room.message"]])
      const notify = Harness.requests(h.take()).find((m) => m.action === "notify_capabilities")
      expect(notify?.data).toEqual({
        requested: ["m.send.event:m.room.message", "m.receive.event:m.room.message"],
        approved: ["m.send.event:m.room.message", "m.receive.event:m.room.message"]
      })
    })
  }

  it("nothing new: prompts nobody and still re-notifies", async () => {
    const { h, asked } = await ready(["m.send.event:m.room.message"])
    const id = h.request("request_capabilities", { capabilities: ["m.send.event:m.room.message"] })
    await flush()
    const out = h.take()
    expect(h.responseTo(id, out)).toEqual({})
    expect(asked).toEqual([])
    expect(Harness.requests(out).map((m) => [m.action, m.data])).toEqual([
      ["notify_capabilities", { requested: ["m.send.event:m.room.message"], approved: ["m.send.event:m.room.message"] }]
    ])
  })

  it("already approved capabilities are never revoked, even if the approver says no to everything", async () => {
    let allow = true
    const h = new Harness({ approver: async ({ requested }) => (allow ? requested : []) })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    allow = false
    h.request("request_capabilities", { capabilities: ["m.receive.event:m.room.message", "m.send.event:m.room.message"] })
    await flush()
    const notify = Harness.requests(h.take()).find((m) => m.action === "notify_capabilities")
    expect(notify?.data).toMatchObject({ approved: ["m.send.event:m.room.message"] })
  })

  it("previously denied capabilities are denied again without prompting", async () => {
    const asked: string[][] = []
    const h = new Harness({ approver: async ({ requested }) => (asked.push([...requested]), []) })
    await h.ready(["m.receive.event:m.room.message"])
    h.take()
    asked.length = 0
    h.request("request_capabilities", { capabilities: ["m.receive.event:m.room.message"] })
    await flush()
    expect(asked).toEqual([])
    expect(Harness.requests(h.take()).find((m) => m.action === "notify_capabilities")?.data).toEqual({ requested: ["m.receive.event:m.room.message"], approved: [] })
  })

  it("over budget: the standard error response; the budget refills after the window", async () => {
    const h = new Harness({ approver: approveAll, limits: { capabilityRequests: { budget: 2, windowMs: 1_000 } } })
    await h.ready([])
    h.take()
    expect(h.responseTo(h.request("request_capabilities", { capabilities: [] }))).toEqual({})
    expect(h.responseTo(h.request("request_capabilities", { capabilities: [] }))).toEqual({})
    expect(h.responseTo(h.request("request_capabilities", { capabilities: [] }))).toMatchObject({ error: { message: stringContaining("Too many") } })
    await h.advance(1_000)
    expect(h.responseTo(h.request("request_capabilities", { capabilities: [] }))).toEqual({})
  })

  it("a prompt nobody answers times out as denied, and other requests are not held up meanwhile", async () => {
    const h = new Harness({ approver: () => new Promise(() => {}), limits: { approvalTimeoutMs: 60_000 } })
    await h.ready([])
    h.take()
    h.request("request_capabilities", { capabilities: ["m.receive.event:m.room.message"] })
    expect(h.phase).toBe("renegotiating")
    const v = h.request("supported_api_versions")
    expect(h.responseTo(v)).toBeDefined()
    await h.advance(60_000)
    expect(h.phase).toBe("ready")
    expect(h.session.info().denied).toContain("m.receive.event:m.room.message")
  })

  it("the prompt's signal aborts when the prompt is withdrawn, whether it was read before or after", async () => {
    const prompts: ApprovalRequest[] = []
    const h = new Harness({ approver: (request) => (prompts.push(request), new Promise(() => {})), limits: { approvalTimeoutMs: 60_000 } })
    h.session.frameLoaded()
    h.ackAll(["m.receive.event:m.room.message"])
    await flush()
    expect(prompts).toHaveLength(1)
    const readEarly = prompts[0]!.signal
    expect(readEarly.aborted).toBe(false)
    await h.advance(60_000) // the prompt times out: withdrawn
    expect(readEarly.aborted).toBe(true)
    h.request("request_capabilities", { capabilities: ["m.send.event:m.room.message"] })
    await flush()
    expect(prompts).toHaveLength(2)
    h.session.close("gone") // withdrawn before anyone read its signal
    await flush()
    expect(prompts[1]!.signal.aborted).toBe(true)
  })

  it("the prompt names the widget (definition, origin) and gives each capability as written, canonical and in words", async () => {
    let prompt: ApprovalRequest | undefined
    const h = new Harness({
      approver: async (request) => ((prompt = request), []),
      origin: "https://widget.example",
      widget: { name: "Poll", roomId: "!poll:localhost" }
    })
    await h.ready(["org.matrix.msc2762.receive.state_event:m.room.name#", "m.send.state_event:a\\x"])
    expect(prompt).toBeDefined()
    const { widget, origin, widgetId, requested, capabilities } = prompt!
    expect([widgetId, origin, widget.name, widget.url, widget.roomId]).toEqual(["w1", "https://widget.example", "Poll", "https://widget.example/index.html", "!poll:localhost"])
    expect(requested).toEqual(["org.matrix.msc2762.receive.state_event:m.room.name#"])
    expect(capabilities).toEqual([
      { requested: "org.matrix.msc2762.receive.state_event:m.room.name#", canonical: "m.receive.state_event:m.room.name#", meaning: "receive and read “m.room.name” room state with state key “”" }
    ])
  })

  it("an answered prompt's signal never aborts", async () => {
    let prompt: ApprovalRequest | undefined
    const h = new Harness({ approver: async (request) => ((prompt = request), request.requested) })
    await h.ready(["m.receive.event:m.room.message"])
    h.session.close("done")
    await flush()
    expect(prompt?.signal.aborted).toBe(false)
  })
})

describe("toWidget requests: timeouts and matching", () => {
  it("an unanswered capabilities request times out after 10 s by default and the session goes on with nothing approved", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    h.take()
    await h.advance(7_000)
    expect(h.phase).toBe("negotiating")
    await h.advance(3_000)
    expect(h.phase).toBe("ready")
    expect(h.session.info().counters.timedOut).toBe(1)
  })

  it("responses are matched by requestId and widgetId; unmatched and spoofed ones are dropped and counted", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    const [capabilities] = Harness.requests(h.take())
    h.respond({ ...capabilities!, requestId: "nobody-asked" }, { capabilities: [] })
    h.respond({ ...capabilities!, widgetId: "someone-else" }, { capabilities: [] })
    expect(h.session.info().counters.unmatched).toBe(2)
    expect(h.phase).toBe("negotiating")
    h.respond(capabilities!, { capabilities: [] })
    await flush()
    expect(h.phase).toBe("ready")
  })
})

describe("bad input", () => {
  it.each([
    ["not JSON", "{nope"],
    ["a number", 42],
    ["an array", [1, 2]],
    ["null", null],
    ["no request id", { api: "fromWidget", widgetId: "w1", action: "supported_api_versions", data: {} }]
  ])("%s is dropped and counted; the session stays usable", async (_name, raw) => {
    const h = new Harness({ approver: approveAll })
    h.session.receive(raw)
    expect(h.take()).toEqual([])
    expect(h.session.info().counters.dropped).toBe(1)
    expect(h.responseTo(h.request("supported_api_versions"))).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
  })

  it.each([
    ["unknown action", { action: "frobnicate" }, "Unknown or unsupported action: frobnicate"],
    ["wrong api direction", { api: "toWidget", action: "supported_api_versions" }, 'api must be "fromWidget"'],
    ["data not an object", { action: "supported_api_versions", data: [1] }, "data must be an object"],
    ["action not a string", { action: 7 }, "action must be a non-empty string"],
    ["spoofed widgetId", { widgetId: "other", action: "supported_api_versions" }, "speaking for widget other"]
  ])("%s gets the spec-shaped error response", async (_name, patch, message) => {
    const h = new Harness({ approver: approveAll })
    await h.ready([])
    h.take()
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: "bad", data: {}, ...patch })
    const [reply] = h.take()
    expect(reply).toMatchObject({ requestId: "bad", response: { error: { message: stringContaining(message) } } })
    expect(h.responseTo(h.request("supported_api_versions"))).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
  })

  it("a request with an own __proto__ key (as JSON.parse makes) is echoed as it came, without touching prototypes", async () => {
    const h = new Harness({ approver: approveAll })
    const raw = JSON.parse('{"api":"fromWidget","widgetId":"w1","requestId":"p","action":"supported_api_versions","data":{},"__proto__":{"polluted":true}}') as object
    h.session.receive(raw)
    const [reply] = h.take() as unknown as [Record<string, unknown>]
    expect(Object.getPrototypeOf(reply)).toBe(Object.prototype)
    expect(Object.hasOwn(reply, "__proto__")).toBe(true)
    expect(Object.getOwnPropertyDescriptor(reply, "__proto__")?.value).toEqual({ polluted: true })
    expect(reply["response"]).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
  })

  it("frames reusing the id of a request in flight are not served: one answer for the id, the original's", async () => {
    const reports: string[] = []
    const h = new Harness({ approver: approveAll, onReport: (_session, _widget, report) => reports.push(report._tag) })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    // Three frames back to back, as a widget writes them: all arrive before the first send answers.
    for (const body of ["1", "2", "3"]) h.request("send_event", { type: "m.room.message", content: { msgtype: "m.text", body } }, "same")
    await flush()
    const replies = h.take().filter((m) => m.requestId === "same").map((m) => (m as { response: unknown }).response)
    expect(replies).toEqual([objectContaining({ room_id: "!room:localhost", event_id: expect.any(String) as unknown })])
    const sends = h.homeserver.calls.filter((c) => c.method === "sendEvent").map((c) => (c.args as { content: { body: string } }).content.body)
    expect(sends).toEqual(["1"])
    expect(h.session.info().counters.duplicates).toBe(2)
    expect(reports.filter((r) => r === "DuplicateRequest")).toHaveLength(2)
    // Once answered, the id is free again: a new request with it is served.
    h.request("send_event", { type: "m.room.message", content: { msgtype: "m.text", body: "4" } }, "same")
    await flush()
    expect(h.take().filter((m) => m.requestId === "same")).toHaveLength(1)
  })

  it("a request nested deeper than the bound gets one error answer, without its data, and the session goes on", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    // About 20,000 levels, as the attack sent it (about 240 KB as JSON, under the frame limit).
    let content: Record<string, unknown> = {}
    for (let i = 0; i < 20_000; i++) content = { a: content }
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: "deep", action: "send_event", data: { type: "m.room.message", content } })
    const out = h.take()
    expect(out).toEqual([{ api: "fromWidget", widgetId: "w1", requestId: "deep", action: "send_event", response: { error: objectContaining({ message: stringContaining("nested deeper than 100"), code: "Malformed" }) } }])
    expect(() => JSON.stringify(out)).not.toThrow()
    expect(h.homeserver.calls.filter((c) => c.method === "sendEvent")).toHaveLength(0)
    const next = h.request("send_event", { type: "m.room.message", content: { body: "fine" } })
    await flush()
    expect(h.responseTo(next)).toMatchObject({ room_id: "!room:localhost" })
  })

  it("a request whose getter decodes another session's request mid-walk: each is walked whole, on its own", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    const otherOut: WidgetMessage[] = []
    const other = h.engine.openSession({ widget: widgetDefinition({ id: "other" }), send: (message) => otherOut.push(message) })
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 150; i++) deep = { a: deep }
    const content = {
      deep,
      // An embedder's own object (session.receive takes any value): its getter runs while the walk
      // still has `deep` to visit, and decodes the other session's (shallow) request meanwhile.
      get nested() {
        other.receive({ api: "fromWidget", widgetId: "other", requestId: "o1", action: "supported_api_versions", data: { shallow: {} } })
        other.info()
        return {}
      }
    }
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: "outer", action: "send_event", data: { type: "m.room.message", content } })
    await flush()
    expect(otherOut.find((m) => m.requestId === "o1")).toMatchObject({ response: { supported_versions: SUPPORTED_API_VERSIONS } })
    expect(h.responseTo("outer")).toMatchObject({ error: objectContaining({ message: stringContaining("nested deeper than 100") }) })
  })

  it("a structured clone that shares one object exponentially often is refused before anything walks it", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    // 2^40 paths through 40 objects: fine for structured clone, fatal for JSON.stringify.
    let shared: unknown = {}
    for (let i = 0; i < 40; i++) shared = [shared, shared]
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: "dag", action: "send_event", data: { type: "m.room.message", content: { shared } } })
    expect(h.responseTo("dag")).toMatchObject({ error: { message: stringContaining("more than 100000 objects and arrays") } })
  })

  it("a cyclic request (postMessage clones cycles) gets its error answer", async () => {
    const h = new Harness({ approver: approveAll })
    const data: Record<string, unknown> = {}
    data["self"] = data
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestId: "cycle", action: "supported_api_versions", data })
    expect(h.responseTo("cycle")).toMatchObject({ error: { code: "Malformed" } })
  })

  it("just inside the bound is served", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    // envelope (1) → data (2) → content (3) → 97 more levels = 100
    let inner: Record<string, unknown> = {}
    for (let i = 0; i < 96; i++) inner = { a: inner }
    h.request("send_event", { type: "m.room.message", content: inner }, "edge")
    await flush()
    expect(h.responseTo("edge")).toMatchObject({ room_id: "!room:localhost" })
  })

  it("pending work is bounded: past the limit the widget gets an error response", async () => {
    const h = new Harness({ approver: approveAll, limits: { maxPendingCalls: 2 } })
    await h.ready(["m.send.event:m.room.message"])
    h.take()
    const ids = [0, 1, 2].map((i) => h.request("send_event", { type: "m.room.message", content: { body: String(i) } }))
    expect(h.responseTo(ids[2]!)).toMatchObject({ error: { message: stringContaining("Too many requests in flight") } })
    await flush()
    expect(h.responseTo(ids[0]!)).toMatchObject({ room_id: "!room:localhost" })
  })

  it("requestid (lower case, as in the MSC2762 examples) is accepted and echoed as sent", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.receive({ api: "fromWidget", widgetId: "w1", requestid: "generated-id-1234", action: "supported_api_versions", data: {} })
    expect(h.take()[0]).toMatchObject({ requestid: "generated-id-1234", response: { supported_versions: SUPPORTED_API_VERSIONS } })
  })
})
