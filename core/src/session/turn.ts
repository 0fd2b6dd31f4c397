/**
 * MSC3846 TURN servers. The engine runs one shared poller; a session only joins or leaves it.
 * `watch_turn_servers` is answered once the poller has credentials (or has failed), so a
 * homeserver that refuses TURN access reaches the widget as an error response.
 */
import type { TurnServers } from "../matrix.ts"
import { ProtocolError } from "../protocol-error.ts"
import type { CallResult } from "./input.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

export const watchTurnServers = (s: Stepper, raw: RawRequest): void => {
  if (!s.state.permissions.turnServers) return s.fail(raw, ProtocolError.NotAllowed({ what: "TURN servers (needs m.turn_servers)" }))
  if (s.state.turnWatching) return s.reply(raw, {})
  s.start(raw)
  const ticket = s.nextSeq()
  s.track(ticket, { _tag: "TurnWatch", raw })
  s.emit({ _tag: "WatchTurn", ticket })
}

export const unwatchTurnServers = (s: Stepper, raw: RawRequest): void => {
  if (!s.state.permissions.turnServers) return s.fail(raw, ProtocolError.NotAllowed({ what: "TURN servers (needs m.turn_servers)" }))
  // A watch still waiting for the poller is settled now, so its late answer can't re-start updates.
  const waiting = [...s.state.pendingCalls].filter(([, call]) => call._tag === "TurnWatch")
  for (const [ticket, call] of waiting) {
    s.untrack(ticket)
    if (call._tag === "TurnWatch") s.reply(call.raw, {})
  }
  if (s.state.turnWatching || waiting.length > 0) {
    s.set({ turnWatching: false })
    s.emit({ _tag: "UnwatchTurn" })
  }
  s.reply(raw, {})
}

export const onTurnWatchAnswered = (s: Stepper, raw: RawRequest, result: CallResult): void => {
  if (result._tag === "Failed") return s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
  if (result._tag !== "Turn") return s.fail(raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
  s.reply(raw, {})
  if (s.state.turnWatching) return // a second watch raced the first: the first already pushed
  s.set({ turnWatching: true })
  pushTurnServers(s, result.value)
}

export const pushTurnServers = (s: Stepper, servers: Pick<TurnServers, "uris" | "username" | "password">): void => {
  if (!s.state.turnWatching) return
  s.sendRequest("update_turn_servers", { uris: servers.uris, username: servers.username, password: servers.password }, "turn")
}
