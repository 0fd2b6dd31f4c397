import { describe, expect, it } from "vitest"
import { coreCapabilityDescriptions, describeCapability, describeCapabilityWith, mediaDescriptions } from "./capability-description.ts"

/** given a capability string, want the sentence the person approving it reads. */
const table: ReadonlyArray<readonly [given: string, want: string]> = [
  ["m.receive.event:m.room.message#m.text", "receive and read “m.room.message” events with msgtype “m.text”"],
  ["m.send.event:m.room.message", "send “m.room.message” events"],
  // MSC2762: message types other than m.room.message are not parsed: the prompt shows the literal type
  ["m.receive.event:m.room.message\\#m.text", "receive and read “m.room.message\\#m.text” events"],
  ["m.receive.event:org.example.\\#hash", "receive and read “org.example.\\#hash” events"],
  ["org.matrix.msc2762.send.event:org.example#hash", "send “org.example#hash” events"],
  // state events do take escapes
  ["m.send.state_event:org.example.\\#test#hello", "change “org.example.#test” room state with state key “hello”"],
  ["m.receive.state_event:m.room.member", "receive and read “m.room.member” room state with any state key"],
  ["m.send.state_event:m.room.name#", "change “m.room.name” room state with state key “”"],
  ["m.timeline:*", "act in every room you have joined, not only the widget's own"],
  ["m.timeline:!a:example.org", "act in room “!a:example.org” as well as the widget's own"],
  ["m.send.to_device:m.call.invite", "send “m.call.invite” messages to devices directly (to-device)"],
  ["town.robin.msc3846.turn_servers", "get TURN server credentials for calls"],
  ["m.send.delayed_event", "schedule events to be sent later (delayed events)"],
  ["org.matrix.msc3973.user_directory_search", "search the homeserver's user directory"],
  ["org.matrix.msc4039.upload_file", "upload files to your homeserver's media repository, as you"],
  ["m.download_file", "download files from your homeserver's media repository, as you"],
  ["org.matrix.msc4515.rtc_transports", "find the homeserver's media servers for calls (MatrixRTC transports)"],
  ["org.matrix.msc4157.update_delayed_event", "cancel, restart or send its scheduled events"],
  ["com.beeper.capabilities.receive.room_account_data:m.fully_read", "read your “m.fully_read” account data of the rooms it may use"],
  ["org.matrix.msc4407.send.sticky_event", "send sticky events (MSC4407): not supported by this host, always denied"],
  ["m.receive.sticky_event", "receive sticky events (MSC4407): not supported by this host, always denied"],
  ["m.sticker", "send stickers to the room you are viewing"],
  ["m.always_on_screen", "stay on screen while you move to other rooms (for calls)"],
  ["org.matrix.msc2931.navigate", "take you to rooms, users and events (matrix.to links)"],
  ["org.matrix.msc2790.modals", "open dialogs of its own (modal widgets) inside the client"],
  ["io.element.requires_client", "“io.element.requires_client”: a capability served by the client, if the client knows it"],
  ["m.send.state_event:a\\x", "invalid capability (invalid escape \\x in the event type): it grants nothing and is always denied"]
]

describe("describeCapability", () => {
  it.each(table)("%s", (given, want) => {
    expect(describeCapability(given)).toBe(want)
  })
})

describe("describeCapabilityWith", () => {
  it("describes from the tables given, as describeCapability does, and names a kind they lack as not served", () => {
    expect(describeCapabilityWith("m.turn_servers", coreCapabilityDescriptions)).toBe(describeCapability("m.turn_servers"))
    expect(describeCapabilityWith("org.matrix.msc4039.upload_file", coreCapabilityDescriptions)).toBe("m.upload_file: not served by this host")
    expect(describeCapabilityWith("m.upload_file", { ...coreCapabilityDescriptions, ...mediaDescriptions })).toBe(describeCapability("m.upload_file"))
  })
})
