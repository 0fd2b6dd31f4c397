import { asObject, optNumber, reqString } from "./decode.ts"
import { badJson } from "./errors.ts"
import type { Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"
import type { Store } from "./store.ts"

/**
 * `POST /user_directory/search` (what MSC3973's `user_directory_search` proxies). As Synapse does
 * by default, the directory a user searches holds the users who share a room with them and the
 * members of public rooms; a term matches a user id or display name, case-insensitively.
 */

const MAX_LIMIT = 50

/** Users the searcher may find: room-mates in any room, and members of public rooms. */
const visibleTo = (store: Store, searcher: string): Set<string> => {
  const visible = new Set<string>()
  for (const room of store.rooms.values()) {
    const shared = room.membershipAt(searcher) === "join"
    if (!shared && room.joinRuleAt() !== "public") continue
    for (const member of room.membersAt(Infinity, "join")) visible.add(member)
  }
  return visible
}

export const routes: ReadonlyArray<Route> = [
  authed("POST", `${CLIENT}/user_directory/search`, ({ env, auth, body }) => {
    const request = asObject(body)
    const term = reqString(request, "search_term").toLowerCase()
    const limit = optNumber(request, "limit") ?? 10
    if (!Number.isInteger(limit) || limit < 0) throw badJson("'limit' must be a non-negative integer.")
    const matches: Array<{ user_id: string; display_name?: string; avatar_url?: string }> = []
    for (const userId of [...visibleTo(env.store, auth.userId)].sort()) {
      const user = env.store.users.get(userId)
      if (user === undefined) continue
      if (!userId.toLowerCase().includes(term) && !(user.displayname?.toLowerCase().includes(term) ?? false)) continue
      matches.push({
        user_id: userId,
        ...(user.displayname !== undefined && { display_name: user.displayname }),
        ...(user.avatar_url !== undefined && { avatar_url: user.avatar_url })
      })
    }
    const shown = Math.min(limit, MAX_LIMIT)
    return json({ results: matches.slice(0, shown), limited: matches.length > shown })
  })
]
