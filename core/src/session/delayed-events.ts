/**
 * MSC4157 `update_delayed_event`: cancel, restart or send now one of the widget's delayed events
 * (MatrixRTC keeps its delayed leave alive with restarts). Needs `m.update_delayed_event`. The
 * MSC's `refresh` is MSC4140's `restart`, which matrix-widget-api sends: both are accepted.
 */
import { ProtocolError } from "../protocol-error.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

const actions = { cancel: "cancel", send: "send", restart: "restart", refresh: "restart" } as const

export const updateDelayedEvent = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  if (!s.state.permissions.updateDelayedEvents) return s.fail(raw, ProtocolError.NotAllowed({ what: "updating delayed events (needs m.update_delayed_event)" }))
  const { delay_id: delayId, action } = data
  if (typeof delayId !== "string" || delayId.length === 0) return s.fail(raw, ProtocolError.Malformed({ issue: "delay_id must be a non-empty string" }))
  const mapped = typeof action === "string" && Object.hasOwn(actions, action) ? actions[action as keyof typeof actions] : undefined
  if (mapped === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "action must be cancel, restart, send or refresh" }))
  s.start(raw)
  s.call({ _tag: "UpdateDelayedEvent", delayId, action: mapped }, { _tag: "Answer", raw, format: "empty" })
}
