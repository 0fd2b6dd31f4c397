/**
 * Checks what an embedding client offers to serve (hooks, custom actions, extra API versions,
 * opaque capabilities) once, when the engine is made, and describes it for every session. What
 * cannot be honoured is refused with a reason, never silently ignored: a custom action may not
 * shadow an engine action, and a version may only be advertised when what it promises is served.
 */
import * as Result from "./result.ts"
import { parseCapability } from "./capabilities.ts"
import { type ClientOfferChecks, customActionProblem, hookVersionProblem } from "./client-offer.ts"
import { type ClientHook, type ClientSide, HOOK_VERSIONS } from "./client-side.ts"
import { VERSION_GATED_REQUESTS } from "./session/client-requests.ts"
import { CAPABILITY_FEATURES, type FeatureName, servedVersions, VERSION_FEATURES } from "./session/feature.ts"
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

const versionProblem = (version: string, features: ReadonlySet<FeatureName> | undefined): string | undefined => {
  if (version.length === 0) return "versions: a version must not be empty"
  const feature = VERSION_FEATURES[version]
  if (feature !== undefined && features !== undefined && !features.has(feature)) return `versions: ${version} promises the ${feature} feature, which this engine was made without`
  return undefined
}

const ungatedProblem = (action: string): string | undefined =>
  VERSION_GATED_REQUESTS.has(action) ? undefined : `ungatedRequests: ${JSON.stringify(action)} is not a version-gated toWidget request (${[...VERSION_GATED_REQUESTS.keys()].join(", ")})`

const capabilityProblem = (capability: string): string | undefined => {
  const parsed = parseCapability(capability)
  if (Result.isFailure(parsed)) return `policy.clientCapabilities: ${JSON.stringify(capability)} is not a valid capability (${parsed.failure.reason})`
  if (parsed.success._tag === "Other") return undefined
  const served = CAPABILITY_FEATURES[parsed.success._tag] === "clientActions" ? "its hook" : "the engine"
  return `policy.clientCapabilities: ${capability} is not opaque: ${served} serves it`
}

/**
 * What every session of an engine is told about its client, or why the offer cannot be honoured.
 *
 * @example
 * resolveClientSide({ hooks: ["navigate"], customActions: ["io.element.join"] })
 * // Success({ hooks: Set{navigate}, customActions: Set{io.element.join}, versions: [...SUPPORTED_API_VERSIONS, "org.matrix.msc2931"] })
 */
export const resolveClientSide = (offer: ClientOffer): Result.Result<ClientSide, ReadonlyArray<string>> => resolveClientSideWith(offer, { customActionProblem, versionProblem: hookVersionProblem, hookVersions: HOOK_VERSIONS })

/**
 * `resolveClientSide`, with the hook and custom-action checks given by `clientActionsFeature`
 * (`ClientActions.offer`). Without them (an engine made without the feature, so given no hooks
 * and no custom actions), neither is checked nor served: a version only they would serve names
 * the missing feature, as `features` lacks it.
 */
export const resolveClientSideWith = (offer: ClientOffer, checks: ClientOfferChecks | undefined): Result.Result<ClientSide, ReadonlyArray<string>> => {
  const hooks = new Set(offer.hooks)
  const customActions = new Set(offer.customActions)
  const problems = [
    ...(checks === undefined ? [] : offer.customActions.map(checks.customActionProblem)),
    ...(offer.versions ?? []).map((version) => versionProblem(version, offer.features) ?? checks?.versionProblem(version, hooks, customActions)),
    ...(offer.clientCapabilities ?? []).map(capabilityProblem),
    ...(offer.ungatedRequests ?? []).map(ungatedProblem)
  ].filter((problem) => problem !== undefined)
  if (problems.length > 0) return Result.fail(problems)
  const versions = new Set(offer.features === undefined ? SUPPORTED_API_VERSIONS : servedVersions(SUPPORTED_API_VERSIONS, offer.features))
  for (const { version, hooks: needed } of checks?.hookVersions ?? []) if (needed.every((hook) => hooks.has(hook))) versions.add(version)
  for (const version of offer.versions ?? []) versions.add(version)
  const ungated = offer.ungatedRequests ?? []
  return Result.succeed({ hooks, customActions, versions: [...versions], ...(ungated.length === 0 ? {} : { ungatedRequests: [...new Set(ungated)] }) })
}
