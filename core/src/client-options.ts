/**
 * Checks what an embedding client offers to serve (hooks, custom actions, extra API versions,
 * opaque capabilities) once, when the engine is made, and describes it for every session. What
 * cannot be honoured is refused with a reason, never silently ignored: a custom action may not
 * shadow an engine action, and a version may only be advertised when what it promises is served.
 */
import * as Result from "./result.ts"
import { parseCapability } from "./capabilities.ts"
import { type ClientHook, type ClientSide, HOOK_ACTIONS, HOOK_VERSIONS } from "./client-side.ts"
import { VERSION_GATED_REQUESTS } from "./session/client-requests.ts"
import { type FeatureName, servedVersions, VERSION_FEATURES } from "./session/feature.ts"
import { ENGINE_ACTIONS } from "./session/reduce.ts"
import { SUPPORTED_API_VERSIONS } from "./versions.ts"

export interface ClientOffer {
  readonly hooks: ReadonlyArray<ClientHook>
  readonly customActions: ReadonlyArray<string>
  /** Versions the client wants advertised besides the engine's own. */
  readonly versions?: ReadonlyArray<string>
  /** `ApprovalPolicy.clientCapabilities`: opaque capabilities the client declares it serves. */
  readonly clientCapabilities?: ReadonlyArray<string>
  /** Version-gated toWidget requests the client sends whatever versions the widget announced. */
  readonly ungatedRequests?: ReadonlyArray<string>
  /** The optional features the engine serves (`session/feature.ts`); absent: every one. */
  readonly features?: ReadonlySet<FeatureName>
}

/**
 * Versions of proposals whose fromWidget actions this engine does not serve itself: a client may
 * advertise one only when its custom actions serve each action (one name of each group suffices).
 */
const CUSTOM_SERVED_VERSIONS: ReadonlyMap<string, ReadonlyArray<ReadonlyArray<string>>> = new Map([
  ["org.matrix.msc3817", [["org.matrix.msc3817.create_room", "create_room"]]]
])

const hookOption = (hook: ClientHook) => `hooks.${hook}`

const customActionProblem = (action: string): string | undefined => {
  if (action.length === 0) return "customActions: an action name must not be empty"
  const hook = HOOK_ACTIONS.get(action)
  if (hook !== undefined) return `customActions: ${action} is served through ${hookOption(hook)}, not a custom action`
  if (ENGINE_ACTIONS.has(action)) return `customActions: ${action} is served by the engine and cannot be overridden`
  return undefined
}

const versionProblem = (version: string, hooks: ReadonlySet<ClientHook>, custom: ReadonlySet<string>, features: ReadonlySet<FeatureName> | undefined): string | undefined => {
  if (version.length === 0) return "versions: a version must not be empty"
  const feature = VERSION_FEATURES[version]
  if (feature !== undefined && features !== undefined && !features.has(feature)) return `versions: ${version} promises the ${feature} feature, which this engine was made without`
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

const ungatedProblem = (action: string): string | undefined =>
  VERSION_GATED_REQUESTS.has(action) ? undefined : `ungatedRequests: ${JSON.stringify(action)} is not a version-gated toWidget request (${[...VERSION_GATED_REQUESTS.keys()].join(", ")})`

const capabilityProblem = (capability: string): string | undefined => {
  const parsed = parseCapability(capability)
  if (Result.isFailure(parsed)) return `policy.clientCapabilities: ${JSON.stringify(capability)} is not a valid capability (${parsed.failure.reason})`
  if (parsed.success._tag === "Other") return undefined
  const served = ["AlwaysOnScreen", "Sticker", "Navigate", "Modals"].includes(parsed.success._tag) ? "its hook" : "the engine"
  return `policy.clientCapabilities: ${capability} is not opaque: ${served} serves it`
}

/**
 * What every session of an engine is told about its client, or why the offer cannot be honoured.
 *
 * @example
 * resolveClientSide({ hooks: ["navigate"], customActions: ["io.element.join"] })
 * // Success({ hooks: Set{navigate}, customActions: Set{io.element.join}, versions: [...SUPPORTED_API_VERSIONS, "org.matrix.msc2931"] })
 */
export const resolveClientSide = (offer: ClientOffer): Result.Result<ClientSide, ReadonlyArray<string>> => {
  const hooks = new Set(offer.hooks)
  const customActions = new Set(offer.customActions)
  const problems = [
    ...offer.customActions.map(customActionProblem),
    ...(offer.versions ?? []).map((version) => versionProblem(version, hooks, customActions, offer.features)),
    ...(offer.clientCapabilities ?? []).map(capabilityProblem),
    ...(offer.ungatedRequests ?? []).map(ungatedProblem)
  ].filter((problem) => problem !== undefined)
  if (problems.length > 0) return Result.fail(problems)
  const versions = new Set(offer.features === undefined ? SUPPORTED_API_VERSIONS : servedVersions(SUPPORTED_API_VERSIONS, offer.features))
  for (const { version, hooks: needed } of HOOK_VERSIONS) if (needed.every((hook) => hooks.has(hook))) versions.add(version)
  for (const version of offer.versions ?? []) versions.add(version)
  const ungated = offer.ungatedRequests ?? []
  return Result.succeed({ hooks, customActions, versions: [...versions], ...(ungated.length === 0 ? {} : { ungatedRequests: [...new Set(ungated)] }) })
}
