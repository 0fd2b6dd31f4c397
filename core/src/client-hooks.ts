/**
 * The embedding client's hooks and custom actions, as the engine calls them (the engine side of
 * `clientActionsFeature`: an engine made without it bundles none of this). The session has
 * already checked the capability and the request's shape; a hook only decides and acts. Whatever
 * a hook does (resolve, throw, reject, never settle) the widget gets one answer: a thrown error
 * or rejection becomes `{ error: { message } }`, and one that never settles is answered by the
 * session's request timeout, which also aborts the hook's `signal`.
 */
import type { ClientCall, ClientOutcome, ModalDefinition, StickerRequest } from "./client-call.ts"
import { CLIENT_HOOKS, type ClientHook } from "./client-side.ts"
import type { WidgetDefinition } from "./widget-definition.ts"
import { Withdrawable } from "./withdrawable.ts"

/** What a hook is told besides the request itself. */
export interface HookContext {
  readonly sessionId: string
  readonly widgetId: string
  readonly widget: WidgetDefinition
  /** The widget's origin, when the transport knows it. */
  readonly origin: string | undefined
  /** The room the session acts in now (the room widget's own, or the one the user is viewing). */
  readonly roomId: string | undefined
  /** The fromWidget action being served (`navigate` or `org.matrix.msc2931.navigate`, a custom name...). */
  readonly action: string
  /** The widget's approved capabilities when it asked. */
  readonly approved: ReadonlyArray<string>
  /** Aborted when no answer is wanted any more (timed out, document replaced, session closed). */
  readonly signal: AbortSignal
}

/**
 * One hook per client-side fromWidget action. A hook not installed means the action is not served:
 * its capability is denied as unserved and the action answered as unknown. Served only by an
 * engine given `clientActionsFeature` (`createEngine` is).
 */
export interface ClientHooks {
  /** MSC2931: take the user to a matrix.to link or `matrix:` URI. Reject to refuse (say, user profiles). */
  readonly navigate?: (uri: string, context: HookContext) => Promise<void>
  /** MSC2764: resolve true when honoured, false when another widget already holds the screen. */
  readonly setAlwaysOnScreen?: (value: boolean, context: HookContext) => Promise<boolean>
  /** MSC2764: post an `m.sticker` event in `context.roomId` (the client encrypts it where needed). */
  readonly sendSticker?: (sticker: StickerRequest, context: HookContext) => Promise<void>
  /** MSC2790: show a modal widget for this (source) widget; resolve once it is shown. */
  readonly openModal?: (modal: ModalDefinition, context: HookContext) => Promise<void>
  /** MSC2790, from a modal widget: enable or disable one of its buttons (reject when it has none such). */
  readonly setButtonEnabled?: (button: string, enabled: boolean, context: HookContext) => Promise<void>
  /** MSC2790, from a modal widget: pass `data` to the source widget (`session.request("close_modal", data)`) and close the modal. */
  readonly closeModal?: (data: Readonly<Record<string, unknown>>, context: HookContext) => Promise<void>
}

/**
 * A fromWidget action the engine does not know, served by the client (`io.element.join`, ...):
 * its resolved object is the response (nothing resolved: `{}`). No capability gates it: the
 * handler decides, and `context.approved` says what the widget holds.
 */
export type CustomAction = (data: Readonly<Record<string, unknown>>, context: HookContext) => Promise<Readonly<Record<string, unknown>> | void>

/** What the client serves itself, as the engine was given it. */
export interface ClientHandlers {
  readonly hooks: ClientHooks
  readonly customActions: Readonly<Record<string, CustomAction>>
}

/** What is wrong with the client's hooks and custom actions as given (none: `[]`). */
export const clientHookProblems = ({ hooks, customActions }: ClientHandlers): string[] => {
  const problems: string[] = []
  const known = new Set<string>(CLIENT_HOOKS)
  for (const [name, hook] of Object.entries(hooks)) {
    if (!known.has(name)) problems.push(`hooks.${name} is not a hook this engine knows (${CLIENT_HOOKS.join(", ")})`)
    else if (hook !== undefined && typeof hook !== "function") problems.push(`hooks.${name} must be a function`)
  }
  for (const [name, action] of Object.entries(customActions)) {
    if (typeof action !== "function") problems.push(`customActions[${JSON.stringify(name)}] must be a function`)
  }
  return problems
}

/** The hooks installed (those given as functions). */
export const installedHooks = (hooks: ClientHooks): ReadonlyArray<ClientHook> => CLIENT_HOOKS.filter((name) => typeof hooks[name] === "function")

/** The hook (or custom action) for a call, invoked; a synchronous throw propagates to `runClientCall`. */
const invoke = ({ hooks, customActions }: ClientHandlers, call: ClientCall, context: HookContext): unknown => {
  const missing = (hook: ClientHook) => new Error(`the ${hook} hook is not installed`)
  switch (call._tag) {
    case "Navigate":
      if (hooks.navigate === undefined) throw missing("navigate")
      return hooks.navigate(call.uri, context)
    case "SetAlwaysOnScreen":
      if (hooks.setAlwaysOnScreen === undefined) throw missing("setAlwaysOnScreen")
      return hooks.setAlwaysOnScreen(call.value, context)
    case "SendSticker":
      if (hooks.sendSticker === undefined) throw missing("sendSticker")
      return hooks.sendSticker(call.sticker, context)
    case "OpenModal":
      if (hooks.openModal === undefined) throw missing("openModal")
      return hooks.openModal(call.modal, context)
    case "SetButtonEnabled":
      if (hooks.setButtonEnabled === undefined) throw missing("setButtonEnabled")
      return hooks.setButtonEnabled(call.button, call.enabled, context)
    case "CloseModal":
      if (hooks.closeModal === undefined) throw missing("closeModal")
      return hooks.closeModal(call.data, context)
    case "Custom": {
      const action = Object.hasOwn(customActions, call.action) ? customActions[call.action] : undefined
      if (action === undefined) throw new Error(`no custom action ${call.action}`)
      return action(call.data, context)
    }
  }
}

/** The widget reads this: the client's own words when it gave some, else a plain refusal. */
const refusal = (error: unknown, action: string): ClientOutcome => {
  const message = error instanceof Error ? error.message : typeof error === "string" ? error : ""
  return { _tag: "Refused", message: message.length > 0 ? message : `The client refused ${action}` }
}

/**
 * Calls the client for one `CallClient` and hands its outcome to `answer`, exactly once, never
 * synchronously (a hook that answers at once still answers in a later turn, like any edge).
 */
export const runClientCall = (client: ClientHandlers, call: ClientCall, context: HookContext, answer: (outcome: ClientOutcome) => void): void => {
  let result: unknown
  try {
    result = invoke(client, call, context)
  } catch (error) {
    void Promise.resolve().then(() => answer(refusal(error, context.action)))
    return
  }
  Promise.resolve(result).then(
    (value) => answer({ _tag: "Value", value }),
    (error: unknown) => answer(refusal(error, context.action))
  )
}

/** The context of one client call, as the engine makes it (its signal made only when read). */
export class HookCall extends Withdrawable implements HookContext {
  constructor(
    readonly sessionId: string,
    readonly widgetId: string,
    readonly widget: WidgetDefinition,
    readonly origin: string | undefined,
    readonly roomId: string | undefined,
    readonly action: string,
    readonly approved: ReadonlyArray<string>
  ) {
    super()
  }
}

/** `new HookCall(...)`, as a function a feature slot can hold. */
export const hookCall = (sessionId: string, widgetId: string, widget: WidgetDefinition, origin: string | undefined, roomId: string | undefined, action: string, approved: ReadonlyArray<string>): HookCall =>
  new HookCall(sessionId, widgetId, widget, origin, roomId, action, approved)
