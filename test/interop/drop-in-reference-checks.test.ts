/**
 * The drop-in (`@widgethost/client-widget-api`) with the real `WidgetApi` on the widget side and a
 * recording driver: each behaviour that matrix-widget-api's own `test/ClientWidgetApi-test.ts`
 * checks (its describe blocks are kept as ours: "send_event action", "read_events action", …).
 * The rest of the shape is in drop-in-shape.test.ts, the driver mapping in drop-in-driver-methods.test.ts.
 */
import { UnstableApiVersion } from "matrix-widget-api"
import { assert, describe, it } from "vitest"
import { RecordingDriver } from "../src/drop-in/recording-driver.ts"
import { VIEWED_ROOM } from "../src/drop-in/widget-pair.ts"
import { errorMessage, isError, loaded, response, roomEvent, useDropInPairs } from "../src/drop-in/loaded-pair.ts"

useDropInPairs()

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
