/**
 * `createEngine`: the engine with every optional feature unless told otherwise, the convenient
 * default. A browser host that wants to ship only what it uses calls `createLeanEngine` with the
 * features it needs instead: importing `createEngine` keeps every feature in the bundle, and the
 * recorder of chart steps (`recordedSteps`), which the lean engine runs without unless given it.
 *
 * @example
 * const engine = createEngine({ homeserver, approver: async ({ requested }) => requested })
 * const session = engine.openSession({ widget, send: (message) => iframe.postMessage(message, origin) })
 * session.frameLoaded()
 */
import { allFeatures } from "@widgethost/core"
import { createLeanEngine } from "./engine.ts"
import type { Engine, EngineOptions } from "./engine-options.ts"
import { recordedSteps } from "./recorded-steps.ts"

export const createEngine = (options: EngineOptions): Engine =>
  createLeanEngine({ ...options, features: options.features ?? allFeatures, recordedSteps: options.recordedSteps ?? recordedSteps })
