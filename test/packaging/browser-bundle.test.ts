/**
 * What a browser app pays for our browser entries (the engine, the postMessage transport and the
 * core they use), bundled exactly as bench row 10 does: the lean one (`createLeanEngine`, the
 * core proposals only) and the full one (`createEngine`, every optional feature), each held to a
 * gzip budget, and free of the effect runtime, which stays at the Node edges and behind
 * `@widgethost/core/effect`.
 */
import { describe, expect, it } from "vitest"
import { browserEntry, bundled, leanBrowserEntry } from "../bench/bundle-size.ts"

// Raising a budget is a decision, not a fix: first look at what the new bytes are (bench row 10).
// Lean: 39.3 KB gzipped when the optional features became modules; measured 114.4 KB minified,
// 36.19 KB gzipped once client-side actions became clientActionsFeature, recorded steps an
// engine option, and port calls and capability descriptions came with their features (issue #14
// asks for 36; what is left is mostly xstate's runtime, ~11 KB, and the core proposals). The
// round-trip and heap work of the same stop then added 3 KB minified (reused Stepper, shared
// routing entries, session configs, spare collections): 117.4 KB minified, 37.14 KB gzipped.
// Moving the hook and custom-action checks of the client's offer into clientActionsFeature
// (`client-offer.ts`): 116.2 KB minified, 36.80 KB gzipped; making the sentences of the errors
// only features raise (TooLarge, ClientTimedOut) where they are raised: 116.0 / 36.75.
const LEAN_GZIP_BUDGET_KB = 36.8
// Every feature: 142.2 KB minified, 43.74 KB gzipped, then 145.2 / 44.67 with the same work;
// the two moves above cost the full bundle what their seams take: 145.3 / 44.78.
const FULL_GZIP_BUDGET_KB = 44.8

const effectModules = (inputs: ReadonlyArray<string>) => inputs.filter((path) => /(^|\/)node_modules\/effect\//.test(path))

describe("the browser entry", () => {
  it(`lean (createLeanEngine) is at most ${LEAN_GZIP_BUDGET_KB} KB gzipped`, async () => {
    const { gzipped, minified } = await bundled(leanBrowserEntry)
    expect(gzipped, `${minified.toFixed(1)} KB minified, ${gzipped.toFixed(1)} KB gzipped`).toBeLessThanOrEqual(LEAN_GZIP_BUDGET_KB)
  }, 60_000)

  it(`with every feature (createEngine) is at most ${FULL_GZIP_BUDGET_KB} KB gzipped`, async () => {
    const { gzipped, minified } = await bundled(browserEntry)
    expect(gzipped, `${minified.toFixed(1)} KB minified, ${gzipped.toFixed(1)} KB gzipped`).toBeLessThanOrEqual(FULL_GZIP_BUDGET_KB)
  }, 60_000)

  it("lean bundles no optional feature's module, and the full entry bundles each", async () => {
    const featureModules = /core\/src\/(session\/(to-device|delayed-events|relations|user-directory|media|openid|room-account-data|rtc-transports|rtc-livekit|client-calls)|client-hooks|openid-approver)\.ts$/
    const lean = await bundled(leanBrowserEntry)
    const full = await bundled(browserEntry)
    expect(lean.kept.filter((path) => featureModules.test(path))).toEqual([])
    expect(full.kept.filter((path) => featureModules.test(path))).toHaveLength(12)
  }, 60_000)

  it("bundles no module of effect", async () => {
    const { inputs } = await bundled(browserEntry)
    expect(inputs.some((path) => path.includes("node_modules/xstate/")), "the bundle's third-party modules are listed").toBe(true)
    expect(effectModules(inputs)).toEqual([])
    expect(effectModules((await bundled(leanBrowserEntry)).inputs)).toEqual([])
    // The same check sees effect where it is meant to be: the Effect-port bridge.
    const bridge = await bundled(`export { fromEffectPort } from "@widgethost/core/effect"`)
    expect(effectModules(bridge.inputs)).not.toEqual([])
  }, 60_000)
})
