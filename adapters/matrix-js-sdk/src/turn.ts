/**
 * TURN credentials from a matrix-js-sdk client's own poller (the one its VoIP stack uses), so a
 * client hosting widgets asks the homeserver no more often than it already does.
 *
 * - While the client polls (`pollingTurnServers`: it does when it supports VoIP, i.e. in a
 *   browser with WebRTC), the answer is its current credentials with the time left on them.
 *   The engine asks again shortly before they expire; by then the client's `checkTurnServers`
 *   (asked first, as its own ten-minute timer would) has fetched new ones once they have less
 *   than ten minutes left, and otherwise fetches nothing.
 * - When the client does not poll (Node, VoIP off, or it stopped after a 403), the engine's poller
 *   is the only one, and each of its calls is one `GET /voip/turnServer` through the client
 *   (the homeserver's refusal, a 403 included, passes through to the widget).
 */
import type { TurnServers } from "@widgethost/core"
import type { MatrixClient } from "matrix-js-sdk"
import { viaSdk } from "./sdk-errors.ts"

const asStrings = (value: unknown): ReadonlyArray<string> => (Array.isArray(value) ? value : typeof value === "string" ? [value] : []).filter((v): v is string => typeof v === "string")

export const turnServersOf = async (client: MatrixClient): Promise<TurnServers> => {
  if (!client.pollingTurnServers) {
    const res = await viaSdk(() => client.turnServer())
    return { uris: asStrings(res.uris), username: res.username ?? "", password: res.password ?? "", ttl: typeof res.ttl === "number" ? res.ttl : 0 }
  }
  await client.checkTurnServers()
  const [server] = client.getTurnServers()
  const ttl = Math.floor((client.getTurnServersExpiry() - Date.now()) / 1_000)
  if (server === undefined || ttl <= 0) {
    throw new Error("The client has no current TURN credentials (its last refresh failed; it tries again on its own schedule)")
  }
  return { uris: asStrings(server.urls), username: server.username ?? "", password: server.credential ?? "", ttl }
}
