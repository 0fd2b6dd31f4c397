/**
 * The drop-in's driver mapping: every driver method reached through the engine, the older
 * driver names included.
 */
import { type IOpenIDUpdate, OpenIDRequestState, type SimpleObservable } from "matrix-widget-api"
import { assert, describe, it } from "vitest"
import { RecordingDriver } from "../src/drop-in/recording-driver.ts"
import { VIEWED_ROOM } from "../src/drop-in/widget-pair.ts"
import { OPENID_TOKEN } from "../src/drop-in/recording-driver.ts"
import { errorMessage, loaded, response, useDropInPairs } from "../src/drop-in/loaded-pair.ts"

useDropInPairs()

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
