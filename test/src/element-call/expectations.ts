/**
 * What Element Call 0.26.1 asks of our engine and what we answer, as tables: every capability
 * it asks for with our decision, the actions we do not serve, what reaches the page's client hooks,
 * and its delayed leave. A new Element Call, or a change of ours, that changes them fails
 * test/interop/element-call.test.ts and shows the difference.
 */

export const MEMBER = "org.matrix.msc3401.call.member"

/**
 * Every capability Element Call 0.26.1 asks for, in its order, and our decision (everything is
 * approved by the page, so "denied" means nothing of ours serves it; `m.always_on_screen` is
 * served by the page's hook). `$user`, `$device` and
 * `$room` stand for the account, its device and the call's room.
 */
export const CAPABILITIES: ReadonlyArray<readonly [capability: string, decision: "approved" | "denied"]> = [
  ["m.always_on_screen", "approved"],
  ["org.matrix.msc4039.download_file", "approved"],
  ["org.matrix.msc2762.timeline:$room", "approved"],
  ["org.matrix.msc2762.send.event:org.matrix.msc4075.call.notify", "approved"],
  ["org.matrix.msc2762.send.event:org.matrix.msc4075.rtc.notification", "approved"],
  ["org.matrix.msc2762.send.event:org.matrix.rageshake_request", "approved"],
  ["org.matrix.msc2762.send.event:io.element.call.encryption_keys", "approved"],
  ["org.matrix.msc2762.send.event:m.reaction", "approved"],
  ["org.matrix.msc2762.send.event:m.room.redaction", "approved"],
  ["org.matrix.msc2762.send.event:io.element.call.reaction", "approved"],
  ["org.matrix.msc2762.send.event:org.matrix.msc4310.rtc.decline", "approved"],
  ["org.matrix.msc2762.send.event:org.matrix.msc4143.rtc.member", "approved"],
  ["org.matrix.msc2762.receive.event:org.matrix.rageshake_request", "approved"],
  ["org.matrix.msc2762.receive.event:io.element.call.encryption_keys", "approved"],
  ["org.matrix.msc2762.receive.event:m.reaction", "approved"],
  ["org.matrix.msc2762.receive.event:m.room.redaction", "approved"],
  ["org.matrix.msc2762.receive.event:io.element.call.reaction", "approved"],
  ["org.matrix.msc2762.receive.event:org.matrix.msc4310.rtc.decline", "approved"],
  ["org.matrix.msc2762.receive.event:org.matrix.msc4143.rtc.member", "approved"],
  ["org.matrix.msc2762.send.state_event:org.matrix.msc3401.call.member#$user", "approved"],
  ["org.matrix.msc2762.send.state_event:org.matrix.msc3401.call.member#_$user_$device_m.call", "approved"],
  ["org.matrix.msc2762.send.state_event:org.matrix.msc3401.call.member#$user_$device_m.call", "approved"],
  ["org.matrix.msc2762.receive.state_event:m.room.create", "approved"],
  ["org.matrix.msc2762.receive.state_event:m.room.name", "approved"],
  ["org.matrix.msc2762.receive.state_event:m.room.member", "approved"],
  ["org.matrix.msc2762.receive.state_event:m.room.encryption", "approved"],
  ["org.matrix.msc2762.receive.state_event:org.matrix.msc3401.call.member", "approved"],
  ...["send", "receive"].flatMap((op) =>
    [
      "m.call.invite",
      "m.call.candidates",
      "m.call.answer",
      "m.call.hangup",
      "m.call.reject",
      "m.call.select_answer",
      "m.call.negotiate",
      "m.call.sdp_stream_metadata_changed",
      "org.matrix.call.sdp_stream_metadata_changed",
      "m.call.replaces",
      "io.element.call.encryption_keys"
    ].map((type) => [`org.matrix.msc3819.${op}.to_device:${type}`, "approved"] as const)
  ),
  ["org.matrix.msc4157.send.delayed_event", "approved"],
  ["org.matrix.msc4157.update_delayed_event", "approved"],
  ["org.matrix.msc4407.send.sticky_event", "denied"],
  ["org.matrix.msc4407.receive.sticky_event", "denied"],
  ["org.matrix.msc4515.rtc_transports", "approved"]
]

/**
 * Every fromWidget action Element Call sends in this test that we answer with an error, and the
 * error's code: none. The ones about the client's UI are served by the page through the engine's
 * client hooks, as a client would: `set_always_on_screen` (keep the call visible when the user
 * leaves its room) by `hooks.setAlwaysOnScreen`, and Element Web's call actions (the widget's
 * mute state, that it joined, that it wants closing) as `customActions`. Without those hooks the
 * engine answers each `UnknownAction` and Element Call carries on.
 */
export const UNSERVED: ReadonlyArray<readonly [action: string, code: string]> = []

/** What reaches the page's hooks in the join-and-hang-up call, per hook, in order. */
export const CLIENT_CALLS: ReadonlyArray<readonly [hook: string, data: ReadonlyArray<unknown>]> = [
  ["io.element.device_mute", [{ audio_enabled: true, video_enabled: true }]],
  ["io.element.join", [{}]],
  ["setAlwaysOnScreen", [true, false]],
  ["io.element.close", [{}]]
]

export interface DelayedEventsList {
  readonly scheduled: ReadonlyArray<{ delay_id: string; state_key?: string; delay: number; running_since: number; content: object }>
  readonly finalised: ReadonlyArray<{ delayed_event: { delay_id: string }; outcome: string; reason: string; event_id?: string }>
}

/** Element Call's delayed leave, as a deployment configures it (its default waits 18 s). */
export const DELAYED_LEAVE = { delay_ms: 6_000, restart_ms: 2_000 }
