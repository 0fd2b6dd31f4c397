import type { JsonObject } from "./decode.ts"
import type { StoredEvent } from "./records.ts"

/**
 * The redaction algorithm of the room versions this server creates (10 and 11): which content
 * keys survive. Everything else is removed from the stored event, for good: the original content
 * is not kept anywhere (that is the point of a redaction).
 */
const keptContent = (type: string, roomVersion: string): ReadonlyArray<string> | "all" => {
  const v11 = Number(roomVersion) >= 11
  switch (type) {
    case "m.room.member":
      return v11 ? ["membership", "join_authorised_via_users_server", "third_party_invite"] : ["membership", "join_authorised_via_users_server"]
    case "m.room.create":
      return v11 ? "all" : ["creator"]
    case "m.room.join_rules":
      return ["join_rule", "allow"]
    case "m.room.power_levels":
      return v11
        ? ["ban", "events", "events_default", "invite", "kick", "redact", "state_default", "users", "users_default"]
        : ["ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"]
    case "m.room.history_visibility":
      return ["history_visibility"]
    case "m.room.redaction":
      return v11 ? ["redacts"] : []
    default:
      return []
  }
}

/**
 * Returns the redacted form of `event` (a new object; the input is untouched).
 *
 * @example redact({ ...message, content: { body: "hi" } }, "10").content // {}
 */
export const redact = (event: StoredEvent, roomVersion: string): StoredEvent => {
  const kept = keptContent(event.type, roomVersion)
  let content: JsonObject = {}
  if (kept === "all") content = event.content
  else for (const key of kept) if (key in event.content) content[key] = event.content[key]
  // Of third_party_invite, v11 keeps only `signed`.
  if (event.type === "m.room.member" && typeof content.third_party_invite === "object" && content.third_party_invite !== null) {
    const signed = (content.third_party_invite as JsonObject).signed
    content = { ...content, third_party_invite: signed === undefined ? {} : { signed } }
  }
  return { ...event, content }
}
