/**
 * fromWidget actions the embedding client serves: MSC2764 `set_always_on_screen` and `m.sticker`,
 * MSC2931 `navigate`, MSC2790 `open_modal` / `set_button_enabled` / `close_modal`, and the client's
 * custom actions. The session checks the capability and the shape, then asks the client
 * (`CallClient`); the client's answer, refusal or silence becomes exactly one reply: the sweep
 * gives up on a call after the request timeout, and a late answer then finds nothing to answer.
 * Served through `clientActionsFeature` (`features.ts`): a lean engine without it bundles none of this.
 */
import type { ClientCall, ClientOutcome, ModalButton, ModalDefinition } from "../client-call.ts"
import { HOOK_ACTIONS } from "../client-side.ts"
import { isObject } from "../is-object.ts"
import { clientTimedOut, ProtocolError } from "../protocol-error.ts"
import { isSafeWidgetUrl } from "../widget-definition.ts"
import { type ClientWork, idleClientWork, noPendingClient, type PendingClientCall, type RawRequest, sweepsToTimeout } from "./state.ts"
import { requestIdOf, type Stepper } from "./step.ts"

type Data = Readonly<Record<string, unknown>>
type Handler = (s: Stepper, raw: RawRequest, data: Data, action: string) => void

/** Writes the session's client work; back to the shared idle value once nothing is left. */
const setWork = (s: Stepper, patch: Partial<ClientWork>): void => {
  const work = { ...s.state.clientWork, ...patch }
  s.set({ clientWork: work.calls.size === 0 && work.held.length === 0 && work.modalClose === undefined ? idleClientWork : work })
}


/** MSC2931: "the matrix.to (or in future Matrix URI scheme) URI the client should honour". */
const isMatrixUri = (uri: string): boolean => uri.startsWith("https://matrix.to/#/") || uri.startsWith("matrix:")

const navigate: Handler = (s, raw, data, action) => {
  if (!s.state.permissions.navigate) return s.fail(raw, ProtocolError.NotAllowed({ what: "navigating the client (needs m.navigate)" }))
  const { uri } = data
  if (typeof uri !== "string" || !isMatrixUri(uri)) return s.fail(raw, ProtocolError.Malformed({ issue: "uri must be a matrix.to link (https://matrix.to/#/…) or a matrix: URI" }))
  ask(s, raw, action, { _tag: "Navigate", uri })
}

const setAlwaysOnScreen: Handler = (s, raw, data, action) => {
  if (!s.state.permissions.alwaysOnScreen) return s.fail(raw, ProtocolError.NotAllowed({ what: "staying on screen (needs m.always_on_screen)" }))
  if (typeof data.value !== "boolean") return s.fail(raw, ProtocolError.Malformed({ issue: "value must be a boolean" }))
  ask(s, raw, action, { _tag: "SetAlwaysOnScreen", value: data.value })
}

const sendSticker: Handler = (s, raw, data, action) => {
  if (!s.state.permissions.sticker) return s.fail(raw, ProtocolError.NotAllowed({ what: "sending stickers (needs m.sticker)" }))
  const { name, description, content } = data
  if (typeof name !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "name must be a string" }))
  if (description !== undefined && typeof description !== "string") return s.fail(raw, ProtocolError.Malformed({ issue: "description must be a string when present" }))
  if (!isObject(content)) return s.fail(raw, ProtocolError.Malformed({ issue: "content must be an object with url and info" }))
  const { url, info } = content
  if (typeof url !== "string" || !url.startsWith("mxc://")) return s.fail(raw, ProtocolError.Malformed({ issue: "content.url must be an mxc:// URI" }))
  if (!isObject(info)) return s.fail(raw, ProtocolError.Malformed({ issue: "content.info must be an object (ImageInfo)" }))
  ask(s, raw, action, { _tag: "SendSticker", sticker: { name, ...(description === undefined ? {} : { description }), content: { url, info } } })
}

/** MSC2790: "Clients should ignore any buttons that do not fit the schema". */
const buttonsOf = (value: unknown): ReadonlyArray<ModalButton> => {
  if (!Array.isArray(value)) return []
  const buttons: ModalButton[] = []
  for (const item of value as ReadonlyArray<unknown>) {
    if (!isObject(item)) continue
    const { id, label, kind, disabled } = item
    if (typeof id !== "string" || typeof label !== "string" || typeof kind !== "string") continue
    if (disabled !== undefined && typeof disabled !== "boolean") continue
    buttons.push({ id, label, kind, ...(disabled === undefined ? {} : { disabled }) })
  }
  return buttons
}

const modalOf = (data: Data): ModalDefinition | string => {
  const { type, url, name, data: custom, waitForIframeLoad } = data
  if (typeof type !== "string" || type.length === 0) return "type must be a non-empty string"
  if (typeof url !== "string" || !isSafeWidgetUrl(url)) return "url must be an http(s) URL"
  if (name !== undefined && typeof name !== "string") return "name must be a string when present"
  if (custom !== undefined && !isObject(custom)) return "data must be an object when present"
  if (waitForIframeLoad !== undefined && typeof waitForIframeLoad !== "boolean") return "waitForIframeLoad must be a boolean when present"
  return {
    type,
    url,
    ...(name === undefined ? {} : { name }),
    data: custom ?? {},
    waitForIframeLoad: waitForIframeLoad ?? true,
    buttons: buttonsOf(data.buttons)
  }
}

const openModal: Handler = (s, raw, data, action) => {
  if (!s.state.permissions.modals) return s.fail(raw, ProtocolError.NotAllowed({ what: "opening modal widgets (needs m.modals)" }))
  const modal = modalOf(data)
  if (typeof modal === "string") return s.fail(raw, ProtocolError.Malformed({ issue: modal }))
  ask(s, raw, action, { _tag: "OpenModal", modal })
}

const setButtonEnabled: Handler = (s, raw, data, action) => {
  const { button, enabled } = data
  if (typeof button !== "string" || button.length === 0) return s.fail(raw, ProtocolError.Malformed({ issue: "button must be a non-empty string" }))
  if (typeof enabled !== "boolean") return s.fail(raw, ProtocolError.Malformed({ issue: "enabled must be a boolean" }))
  // MSC2790: the user can always escape a modal.
  if (button === "m.close" && !enabled) return s.fail(raw, ProtocolError.NotAllowed({ what: "disabling the m.close button" }))
  ask(s, raw, action, { _tag: "SetButtonEnabled", button, enabled })
}

const closeModal: Handler = (s, raw, data, action) => {
  // MSC2790: "The client must reject any subsequent close_modal requests from the modal widget."
  if (s.state.clientWork.modalClose !== undefined) return s.fail(raw, ProtocolError.NotAllowed({ what: `closing the modal again (it is ${s.state.clientWork.modalClose === "done" ? "closed" : "closing"})` }))
  setWork(s, { modalClose: "pending" })
  ask(s, raw, action, { _tag: "CloseModal", data })
}

const hookHandlers: Readonly<Record<ClientCall["_tag"], Handler>> = {
  Navigate: navigate,
  SetAlwaysOnScreen: setAlwaysOnScreen,
  SendSticker: sendSticker,
  OpenModal: openModal,
  SetButtonEnabled: setButtonEnabled,
  CloseModal: closeModal,
  Custom: (s, raw, data, action) => ask(s, raw, action, { _tag: "Custom", action, data })
}

const handlerOfHook = {
  navigate: hookHandlers.Navigate,
  setAlwaysOnScreen: hookHandlers.SetAlwaysOnScreen,
  sendSticker: hookHandlers.SendSticker,
  openModal: hookHandlers.OpenModal,
  setButtonEnabled: hookHandlers.SetButtonEnabled,
  closeModal: hookHandlers.CloseModal
} as const

/**
 * The handler for a fromWidget action the client serves, or undefined when nothing serves it (a
 * hook's action without the hook installed is as unknown as any other unserved action).
 */
export const clientHandler = (s: Stepper, action: string): Handler | undefined => {
  const client = s.state.config.client
  if (client === undefined) return undefined
  const hook = HOOK_ACTIONS.get(action)
  if (hook !== undefined) return client.hooks.has(hook) ? handlerOfHook[hook] : undefined
  return client.customActions.has(action) ? hookHandlers.Custom : undefined
}

const ask = (s: Stepper, raw: RawRequest, action: string, call: ClientCall): void => {
  const { limits } = s.state.config
  if (s.state.clientWork.calls.size >= limits.maxPendingCalls) {
    if (call._tag === "CloseModal") setWork(s, { modalClose: undefined })
    return s.fail(raw, ProtocolError.TooManyPending({ limit: limits.maxPendingCalls }))
  }
  s.start(raw)
  const ticket = s.nextSeq()
  setWork(s, { calls: new Map(s.state.clientWork.calls).set(ticket, { raw, action, call: call._tag, sweeps: 0 }) })
  if (!s.state.sweepArmed) {
    s.set({ sweepArmed: true })
    s.armSweep()
  }
  s.emit({ _tag: "CallClient", ticket, action, call, roomId: s.state.homeRoom })
}

const forget = (s: Stepper, ticket: number): PendingClientCall | undefined => {
  const pending = s.state.clientWork.calls.get(ticket)
  if (pending === undefined) return undefined
  const rest = new Map(s.state.clientWork.calls)
  rest.delete(ticket)
  setWork(s, { calls: rest.size === 0 ? noPendingClient : rest })
  return pending
}

/** The client answered a call: shape its value into the reply (one per request; a late answer finds nothing). */
export const onClientAnswered = (s: Stepper, ticket: number, outcome: ClientOutcome): void => {
  const pending = forget(s, ticket)
  if (pending === undefined) return
  if (pending.call === "CloseModal") setWork(s, { modalClose: outcome._tag === "Value" ? "done" : undefined })
  if (outcome._tag === "Refused") return s.fail(pending.raw, ProtocolError.ClientRefused({ message: outcome.message }))
  const { value } = outcome
  switch (pending.call) {
    case "SetAlwaysOnScreen":
      // StickyActionResponse: `success` says whether the client could honour it.
      if (typeof value !== "boolean") return s.fail(pending.raw, ProtocolError.ClientRefused({ message: "The client's setAlwaysOnScreen hook answered no boolean" }))
      return s.reply(pending.raw, { success: value })
    case "Custom":
      if (value === undefined) return s.reply(pending.raw, {})
      if (!isObject(value)) return s.fail(pending.raw, ProtocolError.ClientRefused({ message: `The client's ${pending.action} handler answered no object` }))
      return s.reply(pending.raw, value)
    default:
      // navigate, m.sticker and the MSC2790 actions are acknowledged with an empty body.
      return s.reply(pending.raw, {})
  }
}

/**
 * The chart's timeout sweep, for client calls: one unanswered for `sweepsToTimeout` sweeps gets
 * the timeout error, and the client is told to stop (its signal aborts). True while some remain.
 */
export const sweepClientCalls = (s: Stepper): boolean => {
  if (s.state.clientWork.calls.size === 0) return false
  const kept = new Map<number, PendingClientCall>()
  const expired: Array<[number, PendingClientCall]> = []
  for (const [ticket, pending] of s.state.clientWork.calls) {
    if (pending.sweeps + 1 >= sweepsToTimeout) expired.push([ticket, pending])
    else kept.set(ticket, { ...pending, sweeps: pending.sweeps + 1 })
  }
  setWork(s, { calls: kept.size === 0 ? noPendingClient : kept })
  for (const [ticket, pending] of expired) {
    if (pending.call === "CloseModal") setWork(s, { modalClose: undefined })
    s.emit({ _tag: "CancelClientCall", ticket })
    s.report({ _tag: "ClientCallTimedOut", action: pending.action, requestId: requestIdOf(pending.raw) })
    s.fail(pending.raw, clientTimedOut(pending.action, s.state.config.limits.requestTimeoutMs))
  }
  return kept.size > 0
}

/** The document or session that made the calls is gone: no answer can reach it; the client stops. */
export const withdrawClientCalls = (s: Stepper): void => {
  for (const ticket of s.state.clientWork.calls.keys()) s.emit({ _tag: "CancelClientCall", ticket })
  if (s.state.clientWork.calls.size > 0) setWork(s, { calls: noPendingClient })
  if (s.state.clientWork.modalClose === "pending") setWork(s, { modalClose: undefined })
}
