/**
 * toWidget requests the embedding client sends through a session (`session.request`): MSC2873
 * `theme_change` and `language_change`, MSC2764 `visibility` and `screenshot`, MSC2790
 * `widget_config`, `button_clicked` and `close_modal`, and the client's own (`io.element.*`).
 * The session sends them like its own (same ids, same timeout sweep) and settles each exactly
 * once: the widget's answer or error, the timeout, or why it was never sent.
 *
 * What the engine itself sends (capabilities, deliveries, TURN, OpenID) is refused: a client that
 * could send `notify_capabilities` or `send_event` would tell the widget what is not so.
 * Version-gated actions wait for the widget's versions and are refused when it lacks them
 * (MSC2873: "only use the `theme_change` action if the widget supports `org.matrix.msc2873`"),
 * unless the client sends them ungated (`ClientSide.ungatedRequests`: a host compatible with
 * matrix-widget-api's, which sends them whatever the widget announced).
 *
 * `supported_api_versions` is answered from the widget's own answer to the engine's request
 * (asked once per document, when first needed): the widget is not asked twice, and the client
 * learns the list the engine acts on.
 */
import type { Command } from "./command.ts"
import { isServing, none, type PendingToWidget } from "./state.ts"
import type { Stepper } from "./step.ts"
import { isObject } from "../is-object.ts"

/** How a client's toWidget request ended. */
export type ClientRequestOutcome =
  | { readonly _tag: "Answered"; readonly response: unknown }
  /** The widget answered `{ error: … }`; `error` is that object. */
  | { readonly _tag: "WidgetError"; readonly error: unknown }
  /** Never sent: `reason` says why. */
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "TimedOut"; readonly ms: number }
  /** Sent (or waiting), then its document or session went away. */
  | { readonly _tag: "Dropped"; readonly reason: string }

export interface HeldClientRequest {
  readonly id: number
  readonly action: string
  readonly data: Readonly<Record<string, unknown>>
}

/** toWidget actions only the engine sends. */
export const ENGINE_TO_WIDGET_ACTIONS: ReadonlySet<string> = new Set([
  "capabilities",
  "notify_capabilities",
  "send_event",
  "update_state",
  "send_to_device",
  "update_turn_servers",
  "openid_credentials"
])

/** Actions a widget must announce a version for before it is sent them, and that version. */
export const VERSION_GATED_REQUESTS: ReadonlyMap<string, string> = new Map([
  ["theme_change", "org.matrix.msc2873"],
  ["language_change", "org.matrix.msc2873"],
  ["widget_config", "org.matrix.msc2790"],
  ["button_clicked", "org.matrix.msc2790"],
  ["close_modal", "org.matrix.msc2790"]
])

/** MSC2764: screenshots only from widgets approved for them (the draft spells it `m.capbility.screenshot`). */
const SCREENSHOT_CAPABILITIES = ["m.capability.screenshot", "m.capbility.screenshot"]


const settle = (s: Stepper, id: number, outcome: ClientRequestOutcome): void => s.emit({ _tag: "ClientRequestSettled", id, outcome })

/** Why this request may not be sent at all, or undefined. */
const refusal = (s: Stepper, action: string, data: unknown): string | undefined => {
  if (action.length === 0) return "the action must be a non-empty string"
  if (ENGINE_TO_WIDGET_ACTIONS.has(action)) return `${action} is a toWidget request only the engine sends`
  if (!isObject(data)) return "data must be an object"
  if (!isServing(s.phase)) return `the session is ${s.phase}: toWidget requests are sent once it is ready`
  if (action === "screenshot" && !SCREENSHOT_CAPABILITIES.some((c) => s.state.approved.includes(c))) return "screenshot needs the widget approved for m.capability.screenshot"
  return undefined
}

/** The version `action` waits for, unless the client sends it ungated. */
const gateOf = (s: Stepper, action: string): string | undefined =>
  s.state.config.client?.ungatedRequests?.includes(action) === true ? undefined : VERSION_GATED_REQUESTS.get(action)

const VERSIONS = "supported_api_versions"

/** The client asked to send a toWidget request (`data` is the client's, unchecked). */
export const clientRequest = (s: Stepper, id: number, action: string, data: unknown): void => {
  const refused = refusal(s, action, data)
  if (refused !== undefined || !isObject(data)) return settle(s, id, { _tag: "Refused", reason: refused ?? "data must be an object" })
  if ((action === VERSIONS || gateOf(s, action) !== undefined) && s.state.widgetVersions === undefined) {
    s.set({ clientWork: { ...s.state.clientWork, held: [...s.state.clientWork.held, { id, action, data }] } })
    if (![...s.state.pendingToWidget.values()].some((p) => p.purpose === "versions")) s.sendRequest(VERSIONS, {}, "versions")
    return
  }
  send(s, { id, action, data })
}

const send = (s: Stepper, request: HeldClientRequest): void => {
  // A widget that failed to answer (or timed out) is taken to support none, as for the engine's own use.
  if (request.action === VERSIONS) return settle(s, request.id, { _tag: "Answered", response: { supported_versions: s.state.widgetVersions ?? [] } })
  const gate = gateOf(s, request.action)
  if (gate !== undefined && !(s.state.widgetVersions ?? []).includes(gate)) {
    return settle(s, request.id, { _tag: "Refused", reason: `the widget does not support ${gate}, which ${request.action} needs` })
  }
  s.sendRequest(request.action, request.data, "client", request.id)
}

/** The widget's versions are known (or taken as none): send or refuse what waited for them. */
export const releaseHeldRequests = (s: Stepper): void => {
  const { held } = s.state.clientWork
  if (held.length === 0) return
  s.set({ clientWork: { ...s.state.clientWork, held: none } })
  for (const request of held) {
    if (isServing(s.phase)) send(s, request)
    else settle(s, request.id, { _tag: "Dropped", reason: `the session is ${s.phase}` })
  }
}

/** The widget answered a client's request (or it timed out: `response` undefined and `timedOut`). */
export const onClientRequestAnswered = (s: Stepper, pending: PendingToWidget, response: unknown, timedOut: boolean): void => {
  if (pending.request === undefined) return
  if (timedOut) return settle(s, pending.request, { _tag: "TimedOut", ms: s.state.config.limits.requestTimeoutMs })
  const error = isObject(response) ? response.error : undefined
  settle(s, pending.request, error === undefined ? { _tag: "Answered", response } : { _tag: "WidgetError", error })
}

/** The document the requests were for is gone: each is settled as dropped. */
export const dropClientRequests = (s: Stepper, reason: string): void => {
  const dropped: Command[] = []
  for (const pending of s.state.pendingToWidget.values()) {
    if (pending.request !== undefined) dropped.push({ _tag: "ClientRequestSettled", id: pending.request, outcome: { _tag: "Dropped", reason } })
  }
  const { held } = s.state.clientWork
  for (const request of held) dropped.push({ _tag: "ClientRequestSettled", id: request.id, outcome: { _tag: "Dropped", reason } })
  if (held.length > 0) s.set({ clientWork: { ...s.state.clientWork, held: none } })
  for (const command of dropped) s.emit(command)
}
