/**
 * The drop-in (`@widgethost/client-widget-api`) method by method and event by event, with the
 * real `WidgetApi` on the widget side and a recording driver: each behaviour that
 * matrix-widget-api's own `test/ClientWidgetApi-test.ts` checks (its describe blocks are kept as
 * ours: "send_event action", "read_events action", …), then every public method and event of
 * the shape, and every driver method mapping, the older driver names included.
 */
import { ClientWidgetApi } from "@widgethost/client-widget-api"
import { type IOpenIDUpdate, OpenIDRequestState, type SimpleObservable, UnstableApiVersion, Widget } from "matrix-widget-api"
import { afterEach, assert, beforeAll, describe, it, vi } from "vitest"
import { RecordingDriver } from "../src/drop-in/recording-driver.ts"
import { type PairOptions, polyfillForWidgetApi, settle, VIEWED_ROOM, WidgetPair } from "../src/drop-in/widget-pair.ts"
import { OPENID_TOKEN } from "../src/drop-in/recording-driver.ts"

const pairs: WidgetPair[] = []
beforeAll(() => {
  polyfillForWidgetApi()
  for (const level of ["log", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(() => undefined)
})
afterEach(() => {
  for (const pair of pairs.splice(0)) pair.stop()
})

/** A drop-in host with the widget loaded and negotiated. */
const loaded = async (options: PairOptions = {}): Promise<WidgetPair> => {
  const pair = new WidgetPair("drop-in", options)
  pairs.push(pair)
  await pair.load()
  return pair
}

const isError = (answer: unknown): boolean => typeof answer === "object" && answer !== null && "error" in answer
const errorMessage = (answer: unknown): string => String((answer as { error: { message: string } }).error.message)
const response = (answer: unknown): unknown => (answer as { response: unknown }).response

const roomEvent = (overrides: Record<string, unknown> = {}) => ({
  type: "m.room.message",
  sender: "user-id",
  content: {},
  origin_server_ts: 0,
  event_id: "id-0",
  room_id: "!room-id",
  unsigned: {},
  ...overrides
})

describe("what matrix-widget-api's ClientWidgetApi-test.ts checks", () => {
  it("initiates capabilities: hasCapability tells approved from not", async () => {
    const pair = await loaded({ capabilities: ["m.always_on_screen"] })
    assert.isTrue(pair.host.hasCapability("m.always_on_screen"))
    assert.isFalse(pair.host.hasCapability("m.sticker"))
  })

  describe("send_event action", () => {
    it("sends message events", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:!room:example.org", "org.matrix.msc2762.send.event:m.room.message"] })
      const answer = await pair.ask("send_event", { type: "m.room.message", content: {}, room_id: "!room:example.org" })
      assert.deepEqual(response(answer), { room_id: "!room:example.org", event_id: "$sent0" })
      assert.deepEqual(pair.driver.callsOf("sendEvent"), [["sendEvent", "m.room.message", {}, null, "!room:example.org"]])
    })

    it("sends state events", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:!room:example.org", "org.matrix.msc2762.send.state_event:m.room.topic"] })
      const answer = await pair.ask("send_event", { type: "m.room.topic", content: {}, state_key: "", room_id: "!room:example.org" })
      assert.deepEqual(response(answer), { room_id: "!room:example.org", event_id: "$sent0" })
      assert.deepEqual(pair.driver.callsOf("sendEvent"), [["sendEvent", "m.room.topic", {}, "", "!room:example.org"]])
    })
  })

  describe("send_event action for delayed events", () => {
    it("fails to send delayed events without the capability", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.message"] })
      assert.isTrue(isError(await pair.ask("send_event", { type: "m.room.message", content: {}, delay: 5000 })))
      assert.deepEqual(pair.driver.callsOf("sendDelayedEvent"), [])
    })

    it("sends delayed message events", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:!room:example.org", "org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc4157.send.delayed_event"] })
      const answer = await pair.ask("send_event", { type: "m.room.message", content: {}, room_id: "!room:example.org", delay: 5000 })
      assert.deepEqual(response(answer), { room_id: "!room:example.org", delay_id: "delay0" })
      assert.deepEqual(pair.driver.callsOf("sendDelayedEvent"), [["sendDelayedEvent", 5000, "m.room.message", {}, null, "!room:example.org"]])
    })

    it("sends delayed state events", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:!room:example.org", "org.matrix.msc2762.send.state_event:m.room.topic", "org.matrix.msc4157.send.delayed_event"] })
      const answer = await pair.ask("send_event", { type: "m.room.topic", content: {}, state_key: "", room_id: "!room:example.org", delay: 5000 })
      assert.deepEqual(response(answer), { room_id: "!room:example.org", delay_id: "delay0" })
      assert.deepEqual(pair.driver.callsOf("sendDelayedEvent"), [["sendDelayedEvent", 5000, "m.room.topic", {}, "", "!room:example.org"]])
    })

    it("passes parent_delay_id to a driver that takes it (Element Web's six parameters), refuses it otherwise", async () => {
      class ParentDriver extends RecordingDriver {
        override sendDelayedEvent(...args: [number, string, unknown, (string | null)?, (string | null)?]): Promise<{ roomId: string; delayId: string }> {
          return super.sendDelayedEvent(...args)
        }
      }
      // Six declared parameters, as Element Web's ElementWidgetDriver declares them.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      Object.defineProperty(ParentDriver.prototype.sendDelayedEvent, "length", { value: 6 })
      const caps = ["org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc4157.send.delayed_event"]
      const pair = await loaded({ capabilities: caps })
      assert.isTrue(isError(await pair.ask("send_event", { type: "m.room.message", content: {}, delay: 10, parent_delay_id: "p" })), "a 1.19 driver cannot take the parent")
      assert.deepEqual(pair.driver.callsOf("sendDelayedEvent"), [])

      const driver = new ParentDriver()
      const other = await loaded({ capabilities: caps, driverInstance: driver })
      const answer = await other.ask("send_event", { type: "m.room.message", content: {}, delay: 10, parent_delay_id: "p" })
      assert.isFalse(isError(answer))
      assert.deepEqual(driver.callsOf("sendDelayedEvent"), [["sendDelayedEvent", 10, "p", "m.room.message", {}, null, VIEWED_ROOM]])
    })
  })

  describe("read_events action", () => {
    const twoKeys = [roomEvent({ type: "net.example.test", state_key: "A" }), roomEvent({ type: "net.example.test", state_key: "B" })]

    it("reads state events with any state key", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.state_event:net.example.test"], driver: { readRoomTimeline: async () => twoKeys.map((e) => ({ ...e, room_id: VIEWED_ROOM })) } })
      const answer = await pair.ask("org.matrix.msc2876.read_events", { type: "net.example.test", state_key: true })
      assert.deepEqual(response(answer), { events: twoKeys.map((e) => ({ ...e, room_id: VIEWED_ROOM })) })
      assert.deepEqual(pair.driver.callsOf("readRoomTimeline"), [["readRoomTimeline", VIEWED_ROOM, "net.example.test", null, null, 100, null]])
    })

    it("fails to read state events with any state key without the capability", async () => {
      const pair = await loaded()
      assert.isTrue(isError(await pair.ask("org.matrix.msc2876.read_events", { type: "net.example.test", state_key: true })))
      assert.deepEqual(pair.driver.callsOf("readRoomTimeline"), [])
    })

    it("reads state events with a specific state key", async () => {
      const b = { ...twoKeys[1]!, room_id: VIEWED_ROOM }
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.state_event:net.example.test#B"], driver: { readRoomTimeline: async () => [b] as never } })
      assert.deepEqual(response(await pair.ask("org.matrix.msc2876.read_events", { type: "net.example.test", state_key: "B" })), { events: [b] })
      assert.deepEqual(pair.driver.callsOf("readRoomTimeline"), [["readRoomTimeline", VIEWED_ROOM, "net.example.test", null, "B", 100, null]])
    })

    it("fails to read state events with a specific state key it was not approved for", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.state_event:net.example.test#A"] })
      assert.isTrue(isError(await pair.ask("org.matrix.msc2876.read_events", { type: "net.example.test", state_key: "B" })))
      assert.deepEqual(pair.driver.callsOf("readRoomTimeline"), [])
    })
  })

  describe("org.matrix.msc3869.read_relations action", () => {
    it("presents as supported api version", async () => {
      const pair = await loaded()
      assert.include((response(await pair.ask("supported_api_versions", {})) as { supported_versions: string[] }).supported_versions, UnstableApiVersion.MSC3869)
    })

    it("handles and processes the request", async () => {
      const chunk = [roomEvent({ room_id: VIEWED_ROOM })]
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.event:m.room.message"], driver: { readEventRelations: async () => ({ chunk }) } })
      assert.deepEqual(response(await pair.ask("org.matrix.msc3869.read_relations", { event_id: "$event" })), { chunk })
      assert.deepEqual(pair.driver.callsOf("readEventRelations"), [["readEventRelations", "$event", VIEWED_ROOM, null, null, null, null, 100, null]])
    })

    it("only returns events that match the approved capabilities", async () => {
      const chunk = [roomEvent(), roomEvent({ type: "m.reaction" }), roomEvent({ type: "net.example.test", state_key: "A" }), roomEvent({ type: "net.example.test", state_key: "B" })].map((e) => ({ ...e, room_id: VIEWED_ROOM }))
      const pair = await loaded({
        capabilities: ["org.matrix.msc2762.receive.event:m.room.message", "org.matrix.msc2762.receive.state_event:net.example.test#A"],
        driver: { readEventRelations: async () => ({ chunk }) }
      })
      assert.deepEqual(response(await pair.ask("org.matrix.msc3869.read_relations", { event_id: "$event" })), { chunk: [chunk[0], chunk[2]] })
    })

    it("accepts all options and passes them to the driver", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:!room-id"] })
      const data = { event_id: "$event", room_id: "!room-id", event_type: "m.room.message", rel_type: "m.reference", limit: 25, from: "from-token", to: "to-token", direction: "f" }
      assert.deepEqual(response(await pair.ask("org.matrix.msc3869.read_relations", data)), { chunk: [] })
      assert.deepEqual(pair.driver.callsOf("readEventRelations"), [["readEventRelations", "$event", "!room-id", "m.reference", "m.room.message", "from-token", "to-token", 25, "f"]])
    })

    it("rejects requests without event_id", async () => {
      const pair = await loaded()
      assert.isTrue(isError(await pair.ask("org.matrix.msc3869.read_relations", {})))
    })

    it("rejects requests with a negative limit", async () => {
      const pair = await loaded()
      assert.isTrue(isError(await pair.ask("org.matrix.msc3869.read_relations", { event_id: "$event", limit: -1 })))
    })

    it("rejects requests for a room whose timeline was not approved", async () => {
      const pair = await loaded()
      assert.match(errorMessage(await pair.ask("org.matrix.msc3869.read_relations", { event_id: "$event", room_id: "!another-room-id" })), /!another-room-id/)
      assert.deepEqual(pair.driver.callsOf("readEventRelations"), [])
    })

    it("rejects requests when the driver throws, in the reference's words and without the driver's", async () => {
      const pair = await loaded({ driver: { readEventRelations: () => Promise.reject(new Error("M_FORBIDDEN: You don't have permission to access that event")) } })
      const message = errorMessage(await pair.ask("org.matrix.msc3869.read_relations", { event_id: "$event" }))
      assert.include(message, "Unexpected error while reading relations")
      assert.notInclude(message, "permission")
    })
  })

  describe("org.matrix.msc3973.user_directory_search action", () => {
    const found = { limited: true, results: [{ userId: "@foo:bar.com" }] }

    it("presents as supported api version", async () => {
      const pair = await loaded()
      assert.include((response(await pair.ask("supported_api_versions", {})) as { supported_versions: string[] }).supported_versions, UnstableApiVersion.MSC3973)
    })

    it("handles and processes the request", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc3973.user_directory_search"], driver: { searchUserDirectory: async () => found } })
      assert.deepEqual(response(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "foo" })), { limited: true, results: [{ user_id: "@foo:bar.com" }] })
      assert.deepEqual(pair.driver.callsOf("searchUserDirectory"), [["searchUserDirectory", "foo", null]])
    })

    it("accepts all options and passes them to the driver", async () => {
      const results = [{ userId: "@foo:bar.com" }, { userId: "@bar:foo.com", displayName: "Bar", avatarUrl: "mxc://..." }]
      const pair = await loaded({ capabilities: ["org.matrix.msc3973.user_directory_search"], driver: { searchUserDirectory: async () => ({ limited: false, results }) } })
      assert.deepEqual(response(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "foo", limit: 5 })), {
        limited: false,
        results: [{ user_id: "@foo:bar.com" }, { user_id: "@bar:foo.com", display_name: "Bar", avatar_url: "mxc://..." }]
      })
      assert.deepEqual(pair.driver.callsOf("searchUserDirectory"), [["searchUserDirectory", "foo", 5]])
    })

    it("accepts an empty search_term", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc3973.user_directory_search"] })
      assert.deepEqual(response(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "" })), { limited: false, results: [] })
      assert.deepEqual(pair.driver.callsOf("searchUserDirectory"), [["searchUserDirectory", "", null]])
    })

    it("rejects requests when the capability was not approved", async () => {
      const pair = await loaded()
      assert.isTrue(isError(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "foo" })))
      assert.deepEqual(pair.driver.callsOf("searchUserDirectory"), [])
    })

    it("rejects requests without search_term, and with a negative limit", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc3973.user_directory_search"] })
      assert.isTrue(isError(await pair.ask("org.matrix.msc3973.user_directory_search", {})))
      assert.isTrue(isError(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "foo", limit: -1 })))
      assert.deepEqual(pair.driver.callsOf("searchUserDirectory"), [])
    })

    it("rejects requests when the driver throws", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc3973.user_directory_search"], driver: { searchUserDirectory: () => Promise.reject(new Error("M_LIMIT_EXCEEDED: Too many requests")) } })
      assert.include(errorMessage(await pair.ask("org.matrix.msc3973.user_directory_search", { search_term: "foo" })), "Unexpected error while searching in the user directory")
    })
  })

  describe("org.matrix.msc4039 media actions", () => {
    it("presents as supported api version", async () => {
      const pair = await loaded()
      assert.include((response(await pair.ask("supported_api_versions", {})) as { supported_versions: string[] }).supported_versions, UnstableApiVersion.MSC4039)
    })

    it("get_media_config: handles and processes the request", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc4039.upload_file"] })
      assert.deepEqual(response(await pair.ask("org.matrix.msc4039.get_media_config", {})), { "m.upload.size": 1000 })
      assert.deepEqual(pair.driver.callsOf("getMediaConfig"), [["getMediaConfig"]])
    })

    it("get_media_config and upload_file: rejected without the capability", async () => {
      const pair = await loaded()
      // The engine's words (it serves MSC4039 itself), naming the capability, where the reference says "Missing capability".
      assert.include(errorMessage(await pair.ask("org.matrix.msc4039.get_media_config", {})), "upload_file")
      assert.include(errorMessage(await pair.ask("org.matrix.msc4039.upload_file", { file: "data" })), "upload_file")
      assert.deepEqual(pair.driver.calls.filter(([m]) => m === "getMediaConfig" || m === "uploadFile"), [])
    })

    it("get_media_config: rejected when the driver throws", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc4039.upload_file"], driver: { getMediaConfig: () => Promise.reject(new Error("M_LIMIT_EXCEEDED")) } })
      assert.equal(errorMessage(await pair.ask("org.matrix.msc4039.get_media_config", {})), "Unexpected error while getting the media configuration")
    })

    it("upload_file: handles and processes the request", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc4039.upload_file"] })
      assert.deepEqual(response(await pair.ask("org.matrix.msc4039.upload_file", { file: "data" })), { content_uri: "mxc://example.org/upload" })
      // The widget's string file reaches the driver as its UTF-8 bytes (the engine's one file shape; the reference passes the string).
      // (The recording driver keeps arguments as JSON, so the bytes show as an index map.)
      assert.deepEqual(pair.driver.callsOf("uploadFile"), [["uploadFile", { 0: 100, 1: 97, 2: 116, 3: 97 }]])
    })

    it("upload_file: rejected when the driver throws", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc4039.upload_file"], driver: { uploadFile: () => Promise.reject(new Error("M_LIMIT_EXCEEDED")) } })
      assert.equal(errorMessage(await pair.ask("org.matrix.msc4039.upload_file", { file: "data" })), "Unexpected error while uploading a file")
    })

    it("download_file: served with its capability", async () => {
      const pair = await loaded({ capabilities: ["org.matrix.msc4039.download_file"] })
      // Over postMessage the engine answers a Blob of the driver's bytes (the reference passes the driver's value through).
      const { file } = response(await pair.ask("org.matrix.msc4039.download_file", { content_uri: "mxc://example.org/f" })) as { file: Blob }
      assert.instanceOf(file, Blob)
      assert.equal(await file.text(), "file-data")
      assert.deepEqual(pair.driver.callsOf("downloadFile"), [["downloadFile", "mxc://example.org/f"]])
    })
  })
})

describe("the shape: events", () => {
  it("preparing, ready, capabilitiesNotified, in that order, when the iframe loads", async () => {
    const pair = new WidgetPair("drop-in", { capabilities: ["org.matrix.msc2762.receive.event:m.room.message"] })
    pairs.push(pair)
    await pair.settle()
    assert.deepEqual(pair.hostEvents, [], "nothing before the load")
    await pair.load()
    assert.deepEqual(pair.hostEvents, ["preparing", "ready", "capabilitiesNotified"])
  })

  it("waitForIframeLoad false: negotiation waits for the widget's content_loaded", async () => {
    const pair = await loaded({ waitForIframeLoad: false, capabilities: ["org.matrix.msc2762.receive.event:m.room.message"] })
    assert.deepEqual(pair.hostEvents, [])
    void pair.widget.sendContentLoaded()
    await pair.settle()
    assert.deepEqual(pair.hostEvents, ["preparing", "ready", "capabilitiesNotified"])
    assert.deepEqual(pair.approvedOnWidget(), ["org.matrix.msc2762.receive.event:m.room.message"])
  })

  it("error:preparing when validateCapabilities rejects; the widget is approved nothing", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.event:m.room.message"], driver: { approve: () => Promise.reject(new Error("dialog crashed")) } })
    assert.include(pair.hostEvents, "error:preparing")
    assert.deepEqual(pair.approvedOnWidget(), [])
    assert.isFalse(pair.host.hasCapability("org.matrix.msc2762.receive.event:m.room.message"))
  })

  it("renegotiation: the driver is asked only about what is new, capabilitiesNotified again", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.event:m.room.message"] })
    const answer = await pair.ask("org.matrix.msc2974.request_capabilities", { capabilities: ["org.matrix.msc2762.receive.event:m.room.message", "org.matrix.msc2762.send.event:m.room.message"] })
    assert.deepEqual(response(answer), {})
    assert.deepEqual(pair.driver.callsOf("validateCapabilities").at(-1), ["validateCapabilities", ["org.matrix.msc2762.send.event:m.room.message"]])
    assert.isTrue(pair.host.canSendRoomEvent("m.room.message"))
    assert.deepEqual(pair.hostEvents.filter((e) => e === "capabilitiesNotified").length, 2)
  })

  it("action:<name> is cancelable: a listener that prevents the default answers through transport.reply, the driver is not asked", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.message"] })
    pair.host.on("action:send_event", (ev: CustomEvent<never>) => {
      ev.preventDefault()
      void Promise.resolve().then(() => pair.host.transport.reply(ev.detail, { room_id: "!mine", event_id: "$mine" }))
    })
    assert.deepEqual(response(await pair.ask("send_event", { type: "m.room.message", content: {} })), { room_id: "!mine", event_id: "$mine" })
    assert.deepEqual(pair.driver.callsOf("sendEvent"), [])
  })

  it("a listener that does not prevent the default only watches: the engine answers", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.message"] })
    const seen: string[] = []
    pair.host.on("action:send_event", (ev: CustomEvent<{ action: string }>) => seen.push(ev.detail.action))
    assert.deepEqual(response(await pair.ask("send_event", { type: "m.room.message", content: {} })), { room_id: VIEWED_ROOM, event_id: "$sent0" })
    assert.deepEqual(seen, ["send_event"])
  })

  it("transport.reply answers a taken-over request once: a second reply is dropped", async () => {
    const pair = await loaded()
    pair.host.on("action:io.element.join", (ev: CustomEvent<never>) => {
      ev.preventDefault()
      pair.host.transport.reply(ev.detail, { n: 1 })
      pair.host.transport.reply(ev.detail, { n: 2 })
    })
    assert.deepEqual(response(await pair.ask("io.element.join", {})), { n: 1 })
    assert.deepEqual(pair.repliesPerRequest()["io.element.join"], [1])
  })

  it("set_always_on_screen: served by an Element-style listener when approved; unknown without one", async () => {
    const pair = await loaded({ capabilities: ["m.always_on_screen"] })
    assert.match(errorMessage(await pair.ask("set_always_on_screen", { value: true })), /Unknown or unsupported from-widget action: set_always_on_screen/)
    pair.host.on("action:set_always_on_screen", (ev: CustomEvent<never>) => {
      if (!pair.host.hasCapability("m.always_on_screen")) return
      ev.preventDefault()
      pair.host.transport.reply(ev.detail, {})
    })
    assert.deepEqual(response(await pair.ask("set_always_on_screen", { value: true })), {})
  })

  it("the constructor refuses what the reference refuses", () => {
    const widget = new Widget({ id: "w", creatorUserId: "@a:x", type: "m.custom", url: "https://widget.example.org/" })
    assert.throws(() => new ClientWidgetApi(widget, { contentWindow: null } as unknown as HTMLIFrameElement, new RecordingDriver()), /No iframe supplied/)
  })
})

describe("the shape: capability questions", () => {
  it("answers every can* sibling from the approved set, stable names included", async () => {
    const pair = await loaded({
      capabilities: [
        "org.matrix.msc2762.timeline:!other:example.org",
        "org.matrix.msc2762.send.state_event:m.room.topic",
        "m.receive.state_event:m.room.name",
        "org.matrix.msc2762.receive.state_event:m.room.member#@a:x",
        "org.matrix.msc3819.send.to_device:org.example.ping",
        "org.matrix.msc3819.receive.to_device:org.example.pong",
        "com.beeper.capabilities.receive.room_account_data:org.example.data",
        "m.send.event:m.room.message#m.text"
      ]
    })
    const h = pair.host
    assert.deepEqual([h.canUseRoomTimeline("!other:example.org"), h.canUseRoomTimeline("!nope:example.org")], [true, false])
    assert.deepEqual([h.canSendStateEvent("m.room.topic", ""), h.canSendStateEvent("m.room.name", "")], [true, false])
    assert.deepEqual([h.canReceiveStateEvent("m.room.name", null), h.canReceiveStateEvent("m.room.member", "@a:x"), h.canReceiveStateEvent("m.room.member", null)], [true, true, false])
    assert.deepEqual([h.canSendToDeviceEvent("org.example.ping"), h.canSendToDeviceEvent("org.example.pong")], [true, false])
    assert.deepEqual([h.canReceiveToDeviceEvent("org.example.pong"), h.canReceiveToDeviceEvent("org.example.ping")], [true, false])
    assert.deepEqual([h.canReceiveRoomAccountData("org.example.data"), h.canReceiveRoomAccountData("org.example.other")], [true, false])
    assert.deepEqual([h.canSendRoomEvent("m.room.message", "m.text"), h.canSendRoomEvent("m.room.message", "m.notice"), h.canReceiveRoomEvent("m.room.message")], [true, false, false])
  })
})

describe("the shape: what the client feeds in", () => {
  it("feedEvent: delivered when the widget may receive it, in its rooms only", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.event:m.room.message"] })
    await pair.host.feedEvent(roomEvent({ room_id: VIEWED_ROOM, event_id: "$in" }))
    await pair.host.feedEvent(roomEvent({ room_id: "!elsewhere", event_id: "$out" }))
    await pair.host.feedEvent(roomEvent({ room_id: VIEWED_ROOM, type: "m.reaction", event_id: "$type" }))
    await pair.settle()
    assert.deepEqual(pair.toWidget("send_event").map(([, data]) => (data as { event_id: string }).event_id), ["$in"])
  })

  it("feedEvent with a viewed room id sets the viewed room first (the deprecated form)", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.event:m.room.message"], viewedRoom: null })
    await pair.host.feedEvent(roomEvent({ room_id: "!now:example.org", event_id: "$in" }), "!now:example.org")
    await pair.settle()
    assert.deepEqual(pair.toWidget("send_event").map(([, data]) => (data as { event_id: string }).event_id), ["$in"])
  })

  it("feedStateUpdate: a state change reaches an update_state widget; a non-state event is refused", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.receive.state_event:m.room.topic"] })
    await pair.host.feedStateUpdate(roomEvent({ room_id: VIEWED_ROOM, type: "m.room.topic", state_key: "", event_id: "$topic", content: { topic: "t" } }))
    await pair.settle()
    assert.deepEqual(pair.toWidget("update_state").at(-1), ["update_state", { state: [roomEvent({ room_id: VIEWED_ROOM, type: "m.room.topic", state_key: "", event_id: "$topic", content: { topic: "t" } })] }])
    await assertRejects(pair.host.feedStateUpdate(roomEvent()), /Not a state event/)
  })

  it("feedToDevice: delivered with how it arrived", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc3819.receive.to_device:org.example.ping"] })
    await pair.host.feedToDevice({ type: "org.example.ping", sender: "@b:x", content: { n: 1 } }, true)
    await pair.host.feedToDevice({ type: "org.example.other", sender: "@b:x", content: { n: 2 } }, true)
    await pair.settle()
    assert.deepEqual(pair.toWidget("send_to_device"), [["send_to_device", { type: "org.example.ping", sender: "@b:x", content: { n: 1 }, encrypted: true }]])
  })

  it("setViewedRoomId: the widget acts in the new room and gets its state", async () => {
    const pair = await loaded({
      capabilities: ["org.matrix.msc2762.receive.state_event:m.room.topic", "org.matrix.msc2762.send.event:m.room.message"],
      driver: { readRoomState: async (roomId) => [roomEvent({ room_id: roomId, type: "m.room.topic", state_key: "", event_id: `$topic-${roomId}` })] as never }
    })
    pair.host.setViewedRoomId("!next:example.org")
    await pair.settle()
    assert.deepEqual(pair.driver.callsOf("readRoomState").at(-1), ["readRoomState", "!next:example.org", "m.room.topic", null])
    assert.deepEqual((pair.toWidget("update_state").at(-1)![1] as { state: Array<{ event_id: string }> }).state.map((e) => e.event_id), ["$topic-!next:example.org"])
    await pair.ask("send_event", { type: "m.room.message", content: {} })
    assert.deepEqual(pair.driver.callsOf("sendEvent"), [["sendEvent", "m.room.message", {}, null, "!next:example.org"]])
  })
})

describe("the shape: the client's toWidget requests", () => {
  it("updateTheme, updateLanguage, updateVisibility and transport.send reach the widget and resolve with its answer", async () => {
    const pair = await loaded({ handles: ["theme_change", "language_change", "io.element.custom"] })
    assert.deepEqual(await pair.host.updateTheme({ name: "dark" }), {})
    assert.deepEqual(await pair.host.updateLanguage("fr"), {})
    assert.deepEqual(await pair.host.updateVisibility(false), {})
    assert.deepEqual(await (pair.host as ClientWidgetApi).transport.send("io.element.custom", { x: 1 }), {})
    assert.deepEqual(
      pair.toWidget().filter(([action]) => ["theme_change", "language_change", "visibility", "io.element.custom"].includes(action)),
      [["theme_change", { name: "dark" }], ["language_change", { lang: "fr" }], ["visibility", { visible: false }], ["io.element.custom", { x: 1 }]]
    )
  })

  it("takeScreenshot: sent to a widget approved for screenshots, refused otherwise", async () => {
    const approved = await loaded({ capabilities: ["m.capability.screenshot"], handles: ["screenshot"] })
    assert.deepEqual(await approved.host.takeScreenshot(), {} as never)
    const other = await loaded()
    await assertRejects(other.host.takeScreenshot(), /screenshot/)
    assert.deepEqual(other.toWidget("screenshot"), [])
  })

  it("modal requests reach a WidgetApi widget, which never announces org.matrix.msc2790, as with the reference", async () => {
    const pair = await loaded({ handles: ["widget_config", "button_clicked", "close_modal"] })
    assert.notInclude(await pair.host.getWidgetVersions(), "org.matrix.msc2790")
    const config = { type: "m.custom", url: "https://m.example/", name: "m" }
    // Typed void; the widget's answer passed on, as the reference's `.then()` does.
    assert.deepEqual(await pair.host.sendWidgetConfig(config), {} as never)
    assert.deepEqual(await pair.host.notifyModalWidgetButtonClicked("ok"), {} as never)
    assert.deepEqual(await pair.host.notifyModalWidgetClose({ "m.exited": true }), {} as never)
    assert.deepEqual(
      pair.toWidget().filter(([action]) => ["widget_config", "button_clicked", "close_modal"].includes(action)),
      [["widget_config", config], ["button_clicked", { id: "ok" }], ["close_modal", { "m.exited": true }]]
    )
  })

  it("a modal notification the widget does not handle rejects with the widget's error", async () => {
    const pair = await loaded()
    await assertRejects(pair.host.notifyModalWidgetButtonClicked("ok"), /button_clicked/)
    assert.deepEqual(pair.toWidget("button_clicked"), [["button_clicked", { id: "ok" }]])
  })

  it("getWidgetVersions: the widget's supported_api_versions answer, the widget asked once", async () => {
    const pair = await loaded()
    // Nothing needed the widget's versions yet (no state to deliver, no gated request).
    assert.deepEqual(pair.toWidget("supported_api_versions"), [])
    const versions = await pair.host.getWidgetVersions()
    assert.includeMembers(versions, [UnstableApiVersion.MSC2762, UnstableApiVersion.MSC2873, UnstableApiVersion.MSC4039])
    assert.deepEqual(await pair.host.getWidgetVersions(), versions)
    assert.deepEqual(pair.toWidget("supported_api_versions"), [["supported_api_versions", {}]])
  })

  it("getWidgetVersions: [] when the widget cannot be asked (the transport stopped), as the reference", async () => {
    const pair = await loaded()
    pair.host.stop()
    assert.deepEqual(await pair.host.getWidgetVersions(), [])
  })

  it("transport.send refuses what only the engine sends", async () => {
    const pair = await loaded()
    await assertRejects((pair.host as ClientWidgetApi).transport.send("send_event", {}), /only the engine sends/)
  })

  it("stop: the widget is answered no more, the transport is not ready, the TURN generator is returned", async () => {
    let returned = false
    let release: (() => void) | undefined
    const pair = await loaded({
      capabilities: ["town.robin.msc3846.turn_servers"],
      driver: {
        turnServers: async function* () {
          try {
            yield { uris: ["turn:a"], username: "u", password: "p" }
            await new Promise<void>((resolve) => (release = resolve))
            yield { uris: ["turn:b"], username: "u", password: "p" }
          } finally {
            returned = true
          }
        }
      }
    })
    await pair.ask("watch_turn_servers", {})
    assert.isTrue(pair.host.transport.ready)
    pair.host.stop()
    await settle()
    assert.isFalse(pair.host.transport.ready)
    assert.equal(await pair.ask("supported_api_versions", {}), "no answer")
    // Parked at a yield, the generator returns at once; parked in its await, once that settles.
    release?.()
    await waitFor(() => returned)
  })
})

describe("every driver method through the engine", () => {
  it("redaction: the driver's sendEvent with m.room.redaction, as the reference passes it", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.redaction"] })
    assert.deepEqual(response(await pair.ask("send_event", { type: "m.room.redaction", content: { redacts: "$x" } })), { room_id: VIEWED_ROOM, event_id: "$sent0" })
    assert.deepEqual(pair.driver.callsOf("sendEvent"), [["sendEvent", "m.room.redaction", { redacts: "$x" }, null, VIEWED_ROOM]])
  })

  it("update_delayed_event: the 1.19 names, and an older driver's updateDelayedEvent(id, action)", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc4157.update_delayed_event"] })
    for (const action of ["cancel", "restart", "send"]) assert.deepEqual(response(await pair.ask("org.matrix.msc4157.update_delayed_event", { delay_id: `d-${action}`, action })), {})
    assert.deepEqual(
      pair.driver.calls.slice(1),
      [["cancelScheduledDelayedEvent", "d-cancel"], ["restartScheduledDelayedEvent", "d-restart"], ["sendScheduledDelayedEvent", "d-send"]]
    )
    class OlderDriver extends RecordingDriver {
      readonly updates: string[][] = []
      updateDelayedEvent(delayId: string, action: string): Promise<void> {
        this.updates.push([delayId, action])
        return Promise.resolve()
      }
    }
    const older = new OlderDriver()
    const pair2 = await loaded({ capabilities: ["org.matrix.msc4157.update_delayed_event"], driverInstance: older })
    await pair2.ask("org.matrix.msc4157.update_delayed_event", { delay_id: "d1", action: "restart" })
    assert.deepEqual(older.updates, [["d1", "restart"]])
  })

  it("send_to_device: the driver's sendToDevice with the encryption flag", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc3819.send.to_device:org.example.ping"] })
    const messages = { "@b:x": { DEV: { n: 1 } } }
    assert.deepEqual(response(await pair.ask("send_to_device", { type: "org.example.ping", encrypted: true, messages })), {})
    assert.deepEqual(pair.driver.callsOf("sendToDevice"), [["sendToDevice", "org.example.ping", true, messages]])
  })

  it("read_events in every room: the driver's getKnownRooms, then each room's timeline", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.timeline:*", "org.matrix.msc2762.receive.event:m.room.message"], driver: { knownRooms: () => ["!a:x", "!b:x"] } })
    assert.deepEqual(response(await pair.ask("org.matrix.msc2876.read_events", { type: "m.room.message", room_ids: "*", limit: 3 })), { events: [] })
    assert.includeDeepMembers(pair.driver.calls, [["getKnownRooms"], ["readRoomTimeline", "!a:x", "m.room.message", null, null, 3, null], ["readRoomTimeline", "!b:x", "m.room.message", null, null, 3, null]])
  })

  it("room account data: the driver's readRoomAccountData for the viewed room", async () => {
    const pair = await loaded({
      capabilities: ["com.beeper.capabilities.receive.room_account_data:org.example.data"],
      driver: { readRoomAccountData: async (type, roomIds) => [{ type, room_id: roomIds![0]!, content: { v: 1 } }] }
    })
    assert.deepEqual(response(await pair.ask("com.beeper.read_room_account_data", { type: "org.example.data" })), { events: [{ type: "org.example.data", room_id: VIEWED_ROOM, content: { v: 1 } }] })
    assert.deepEqual(pair.driver.callsOf("readRoomAccountData"), [["readRoomAccountData", "org.example.data", [VIEWED_ROOM]]])
  })

  it("RTC transports: the driver's getRtcTransports", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc4515.rtc_transports"] })
    assert.deepEqual(response(await pair.ask("org.matrix.msc4515.get_rtc_transports", {})), { rtc_transports: [{ type: "livekit" }] })
  })

  it("TURN servers: the driver's first credentials on watch, as update_turn_servers", async () => {
    const pair = await loaded({ capabilities: ["town.robin.msc3846.turn_servers"] })
    assert.deepEqual(response(await pair.ask("watch_turn_servers", {})), {})
    assert.deepEqual(pair.toWidget("update_turn_servers"), [["update_turn_servers", { uris: ["turn:turn.example.org"], username: "user", password: "pass" }]])
    assert.deepEqual(pair.driver.callsOf("getTurnServers"), [["getTurnServers"]])
  })

  it("OpenID: allowed (the token in openid_credentials), blocked, and pending then allowed", async () => {
    const allowed = await loaded()
    assert.deepEqual(response(await allowed.ask("get_openid", {})), { state: "request" })
    assert.deepEqual(allowed.toWidget("openid_credentials").map(([, d]) => d), [{ state: "allowed", original_request_id: "widget-2", ...OPENID_TOKEN }].map((d) => ({ ...d, original_request_id: (allowed.toWidget("openid_credentials")[0]![1] as { original_request_id: string }).original_request_id })))

    const blocked = await loaded({ driver: { openId: (o) => o.update({ state: OpenIDRequestState.Blocked }) } })
    const blockedAnswer = await blocked.ask("get_openid", {})
    const told = [response(blockedAnswer), ...blocked.toWidget("openid_credentials").map(([, d]) => (d as { state: string }).state)]
    assert.include(JSON.stringify(told), "blocked")
    assert.notInclude(JSON.stringify(told), "access_token")

    let later: SimpleObservable<IOpenIDUpdate> | undefined
    const pending = await loaded({ driver: { openId: (o) => { o.update({ state: OpenIDRequestState.PendingUserConfirmation }); later = o } } })
    assert.deepEqual(response(await pending.ask("get_openid", {})), { state: "request" })
    later!.update({ state: OpenIDRequestState.Allowed, token: OPENID_TOKEN })
    await pending.settle()
    assert.deepEqual((pending.toWidget("openid_credentials")[0]![1] as { state: string; access_token: string }).access_token, "token")
  })

  it("navigate: the driver's navigate; its failure in the reference's words", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2931.navigate"], driver: { navigate: async (uri) => void (uri.includes("bad") && (await Promise.reject(new Error("internal detail")))) } })
    assert.deepEqual(response(await pair.ask("org.matrix.msc2931.navigate", { uri: "https://matrix.to/#/#room:example.org" })), {})
    const failed = errorMessage(await pair.ask("org.matrix.msc2931.navigate", { uri: "https://matrix.to/#/#bad:example.org" }))
    assert.include(failed, "Error handling navigation")
    assert.notInclude(failed, "internal detail")
  })

  it("processError: a driver failure it expresses reaches the widget as matrix_api_error", async () => {
    const matrixError = { http_status: 429, http_headers: { "retry-after": "2" }, url: "https://hs/send", response: { errcode: "M_LIMIT_EXCEEDED", error: "slow down" } }
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.message"], driver: { sendEvent: () => Promise.reject(new Error("429")), processError: () => ({ matrix_api_error: matrixError }) } })
    const answer = await pair.ask("send_event", { type: "m.room.message", content: {} })
    assert.deepEqual((answer as { error: { matrix_api_error: unknown } }).error.matrix_api_error, matrixError)
  })

  it("sticky events (MSC4407): refused with a reason, the driver's sticky methods never called", async () => {
    const pair = await loaded({ capabilities: ["org.matrix.msc2762.send.event:m.room.message", "org.matrix.msc4407.send.sticky_event"] })
    assert.notInclude(pair.approvedOnWidget(), "org.matrix.msc4407.send.sticky_event")
    assert.match(errorMessage(await pair.ask("send_event", { type: "m.room.message", content: {}, sticky_duration_ms: 1000 })), /sticky/)
    assert.deepEqual(pair.driver.callsOf("sendEvent"), [])
  })
})

const assertRejects = async (promise: Promise<unknown>, pattern: RegExp): Promise<void> => {
  try {
    await promise
  } catch (error) {
    assert.match(String((error as Error).message), pattern)
    return
  }
  assert.fail(`expected a rejection matching ${pattern}`)
}

const waitFor = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !condition(); i++) await settle(1)
  assert.isTrue(condition())
}
