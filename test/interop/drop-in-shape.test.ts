/**
 * The drop-in's public shape, method by method and event by event, with the real `WidgetApi` on
 * the widget side: its events, the capability questions, what the client feeds in, and the
 * client's toWidget requests.
 */
import { ClientWidgetApi } from "@widgethost/client-widget-api"
import { UnstableApiVersion, Widget } from "matrix-widget-api"
import { assert, describe, it } from "vitest"
import { RecordingDriver } from "../src/drop-in/recording-driver.ts"
import { settle, VIEWED_ROOM, WidgetPair } from "../src/drop-in/widget-pair.ts"
import { assertRejects, errorMessage, loaded, pairs, response, roomEvent, useDropInPairs, waitFor } from "../src/drop-in/loaded-pair.ts"

useDropInPairs()

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
