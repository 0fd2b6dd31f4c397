/**
 * The checks of a client's offer that only hooks and custom actions need (`resolveClientSide`
 * calls them through `clientActionsFeature`, whose `ClientActions` they are part of): an engine made without the feature is given no
 * hooks and no custom actions, and a version they would serve already names the missing feature,
 * so a lean bundle ships none of this.
 */
import { type ClientHook, HOOK_ACTIONS, HOOK_VERSIONS } from "./client-side.ts"
import { ENGINE_ACTIONS } from "./session/reduce.ts"

/** What `resolveClientSide` asks about hooks and custom actions. */
export interface ClientOfferChecks {
  /** Why a custom action's name cannot be served (empty, a hook's, the engine's), or undefined. */
  readonly customActionProblem: (action: string) => string | undefined
  /** Why a version the client wants advertised is not served by its hooks or custom actions, or undefined. */
  readonly versionProblem: (version: string, hooks: ReadonlySet<ClientHook>, custom: ReadonlySet<string>) => string | undefined
  /** The versions advertised when the hooks they need are installed (`HOOK_VERSIONS`). */
  readonly hookVersions: typeof HOOK_VERSIONS
}

/**
 * Versions of proposals whose fromWidget actions this engine does not serve itself: a client may
 * advertise one only when its custom actions serve each action (one name of each group suffices).
 */
const CUSTOM_SERVED_VERSIONS: ReadonlyMap<string, ReadonlyArray<ReadonlyArray<string>>> = new Map([
  ["org.matrix.msc3817", [["org.matrix.msc3817.create_room", "create_room"]]]
])

const hookOption = (hook: ClientHook) => `hooks.${hook}`

export const customActionProblem = (action: string): string | undefined => {
  if (action.length === 0) return "customActions: an action name must not be empty"
  const hook = HOOK_ACTIONS.get(action)
  if (hook !== undefined) return `customActions: ${action} is served through ${hookOption(hook)}, not a custom action`
  if (ENGINE_ACTIONS.has(action)) return `customActions: ${action} is served by the engine and cannot be overridden`
  return undefined
}

export const hookVersionProblem = (version: string, hooks: ReadonlySet<ClientHook>, custom: ReadonlySet<string>): string | undefined => {
  const byHooks = HOOK_VERSIONS.find((v) => v.version === version)
  if (byHooks !== undefined) {
    const missing = byHooks.hooks.filter((hook) => !hooks.has(hook))
    return missing.length === 0 ? undefined : `versions: ${version} promises what ${missing.map(hookOption).join(", ")} would serve, and ${missing.length === 1 ? "it is" : "they are"} not installed`
  }
  const groups = CUSTOM_SERVED_VERSIONS.get(version)
  const unserved = groups?.filter((names) => !names.some((name) => custom.has(name)))
  if (unserved !== undefined && unserved.length > 0) return `versions: ${version} promises ${unserved.map((names) => names[0]).join(", ")}, which no custom action serves`
  return undefined
}

