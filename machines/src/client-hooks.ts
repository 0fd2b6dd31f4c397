/**
 * The embedding client's offer (hooks, custom actions, extra versions, opaque capabilities,
 * ungated requests), checked once per engine. Hooks and custom actions are served by
 * `clientActionsFeature` (`createEngine` includes it), which brings the code that calls them
 * (`@widgethost/core`'s `client-hooks.ts`); an engine made without it refuses to be given any.
 */
import { type ClientActions, type ClientHooks, type ClientSide, type CustomAction, type FeatureTable, resolveClientSideWith, Result } from "@widgethost/core"

export type { ClientHooks, CustomAction, HookContext } from "@widgethost/core"

export interface ClientServing {
  readonly hooks: ClientHooks
  readonly customActions: Readonly<Record<string, CustomAction>>
  /** What sessions are told (built once; shared by all). */
  readonly side: ClientSide
  /** How hooks are called: the feature's; absent when the engine was made without it. */
  readonly actions: ClientActions | undefined
}

const given = (table: object | undefined): boolean => table !== undefined && Object.values(table).some((value) => value !== undefined)

/**
 * Checks the client's offer and describes it for the sessions; throws on anything it cannot honour
 * (hooks or custom actions without `clientActionsFeature`, an unknown hook name, a custom action
 * that would shadow an engine action, a version nothing serves).
 */
export const clientServing = (
  hooks: ClientHooks = {},
  customActions: Readonly<Record<string, CustomAction>> = {},
  versions: ReadonlyArray<string> | undefined,
  clientCapabilities: ReadonlyArray<string> | undefined,
  ungatedRequests: ReadonlyArray<string> | undefined,
  features: FeatureTable
): ClientServing => {
  const actions = features.clientActions
  if (actions === undefined && (given(hooks) || given(customActions))) {
    throw new Error("widgethost: hooks and customActions are served by clientActionsFeature, which this engine was made without: add it to features (createEngine includes it)")
  }
  const problems = actions?.problems({ hooks, customActions }) ?? []
  const resolved = resolveClientSideWith({
    hooks: actions?.installed(hooks) ?? [],
    customActions: Object.keys(customActions),
    ...(versions === undefined ? {} : { versions }),
    ...(clientCapabilities === undefined ? {} : { clientCapabilities }),
    ...(ungatedRequests === undefined ? {} : { ungatedRequests }),
    features: features.names
  }, actions)
  if (Result.isFailure(resolved)) problems.push(...resolved.failure)
  if (problems.length > 0 || Result.isFailure(resolved)) throw new Error(`widgethost: the client's hooks cannot be served as given:\n- ${problems.join("\n- ")}`)
  return { hooks, customActions, side: resolved.success, actions }
}
