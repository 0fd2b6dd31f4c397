import type { JsonObject } from "./decode.ts"

/**
 * The spec's predefined push rules ("Predefined Rules", client-server API), for one user.
 * matrix-js-sdk will not start syncing without a ruleset; this server stores no per-user
 * changes, so everyone gets the defaults.
 *
 * @example defaultPushRules("@alice:localhost").global.override[0].rule_id // ".m.rule.master"
 */
export const defaultPushRules = (userId: string): { global: Record<string, Array<JsonObject>> } => {
  const localpart = userId.slice(1, userId.indexOf(":"))
  const notify = (sound?: string, highlight = false): Array<unknown> => [
    "notify",
    ...(sound !== undefined ? [{ set_tweak: "sound", value: sound }] : []),
    { set_tweak: "highlight", value: highlight }
  ]
  const rule = (rule_id: string, conditions: Array<JsonObject>, actions: Array<unknown>, enabled = true): JsonObject => ({
    rule_id,
    default: true,
    enabled,
    conditions,
    actions
  })
  const eventMatch = (key: string, pattern: string): JsonObject => ({ kind: "event_match", key, pattern })
  return {
    global: {
      override: [
        rule(".m.rule.master", [], [], false),
        rule(".m.rule.suppress_notices", [eventMatch("content.msgtype", "m.notice")], []),
        rule(
          ".m.rule.invite_for_me",
          [eventMatch("type", "m.room.member"), eventMatch("content.membership", "invite"), eventMatch("state_key", userId)],
          notify("default")
        ),
        rule(".m.rule.member_event", [eventMatch("type", "m.room.member")], []),
        rule(".m.rule.is_user_mention", [{ kind: "event_property_contains", key: "content.m\\.mentions.user_ids", value: userId }], notify("default", true)),
        rule(".m.rule.contains_display_name", [{ kind: "contains_display_name" }], notify("default", true)),
        rule(
          ".m.rule.is_room_mention",
          [{ kind: "event_property_is", key: "content.m\\.mentions.room", value: true }, { kind: "sender_notification_permission", key: "room" }],
          notify(undefined, true)
        ),
        rule(
          ".m.rule.roomnotif",
          [{ kind: "sender_notification_permission", key: "room" }, eventMatch("content.body", "@room")],
          notify(undefined, true)
        ),
        rule(".m.rule.tombstone", [eventMatch("type", "m.room.tombstone"), eventMatch("state_key", "")], notify(undefined, true)),
        rule(".m.rule.reaction", [eventMatch("type", "m.reaction")], []),
        rule(".m.rule.room.server_acl", [eventMatch("type", "m.room.server_acl"), eventMatch("state_key", "")], []),
        rule(".m.rule.suppress_edits", [{ kind: "event_property_is", key: "content.m\\.relates_to.rel_type", value: "m.replace" }], [])
      ],
      content: [
        {
          rule_id: ".m.rule.contains_user_name",
          default: true,
          enabled: true,
          pattern: localpart,
          actions: notify("default", true)
        }
      ],
      room: [],
      sender: [],
      underride: [
        rule(".m.rule.call", [eventMatch("type", "m.call.invite")], notify("ring")),
        rule(".m.rule.encrypted_room_one_to_one", [{ kind: "room_member_count", is: "2" }, eventMatch("type", "m.room.encrypted")], notify("default")),
        rule(".m.rule.room_one_to_one", [{ kind: "room_member_count", is: "2" }, eventMatch("type", "m.room.message")], notify("default")),
        rule(".m.rule.message", [eventMatch("type", "m.room.message")], notify()),
        rule(".m.rule.encrypted", [eventMatch("type", "m.room.encrypted")], notify())
      ]
    }
  }
}
