/**
 * Conformance: an engine made without some optional features (`createLeanEngine`) is honest about
 * it. A capability of a feature not included is never approved (nothing would serve it), even by
 * an approver that approves everything; an action of one gets one spec-shaped error naming the
 * feature; its versions are not advertised. What is included is served as by `createEngine`.
 */
import { allFeatures, clientActionsFeature, FEATURE_ACTIONS, type FeatureName, HOOK_ACTIONS, mediaFeature, type SessionFeature, toDeviceFeature } from "@widgethost/core"
import { createLeanEngine } from "@widgethost/engine"
import { fromEffectPort } from "@widgethost/core/effect"
import { describe, expect, it } from "vitest"
import { answeringHooks, approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"

const CORE = ["m.send.event:m.room.message", "m.receive.event:m.room.message", "m.receive.state_event:m.room.name", "m.timeline:*", "m.turn_servers"]

/** MSC2764, MSC2931, MSC2790: served by the client's hooks, through `clientActionsFeature`. */
const CLIENT_CAPABILITIES = ["m.always_on_screen", "m.sticker", "org.matrix.msc2931.navigate", "m.modals"]

const notified = (messages: ReturnType<Harness["take"]>) =>
  Harness.requests(messages)
    .filter((m) => m.action === "notify_capabilities")
    .map((m) => (m.data as { approved: ReadonlyArray<string> }).approved)
    .at(-1)

interface CapabilityCase {
  readonly name: string
  readonly features: ReadonlyArray<SessionFeature>
  readonly ask: ReadonlyArray<string>
  readonly approved: ReadonlyArray<string>
}

const capabilityCases: ReadonlyArray<CapabilityCase> = [
  {
    name: "no features: only the core proposals' capabilities are approved",
    features: [],
    ask: [...CORE, "m.send.to_device:m.call.invite", "org.matrix.msc3819.receive.to_device:m.call.invite", "m.send.delayed_event", "m.update_delayed_event", "m.user_directory_search", "m.upload_file", "m.download_file", "com.beeper.capabilities.receive.room_account_data:m.fully_read", "rtc_transports", "rtc_livekit_get_token", "rtc_livekit_delegate_delayed_leave"],
    approved: CORE
  },
  {
    name: "to-device only: its capabilities are approved, media's are not",
    features: [toDeviceFeature],
    ask: [...CORE, "m.send.to_device:m.call.invite", "m.upload_file"],
    approved: [...CORE, "m.send.to_device:m.call.invite"]
  },
  {
    name: "every feature: as createEngine",
    features: allFeatures,
    ask: [...CORE, "m.send.to_device:m.call.invite", "m.send.delayed_event", "m.upload_file", "rtc_transports"],
    approved: [...CORE, "m.send.to_device:m.call.invite", "m.send.delayed_event", "m.upload_file", "rtc_transports"]
  }
]

describe("a lean engine approves only what its features serve", () => {
  it.each(capabilityCases)("$name", async ({ features, ask, approved }) => {
    const h = new Harness({ approver: approveAll, features })
    const seen = await h.ready(ask)
    expect(notified(seen)).toEqual(approved)
  })

  it("without clientActionsFeature the client-side capabilities are denied as unserved, whatever the policy says", async () => {
    const h = new Harness({ approver: approveAll, policy: { rules: [{ capability: "*", decision: "approve" }] }, features: [] })
    const seen = await h.ready([...CORE, ...CLIENT_CAPABILITIES])
    expect(notified(seen)).toEqual(CORE)
    expect(h.session.info().denied).toEqual(expect.arrayContaining(CLIENT_CAPABILITIES))
  })

  it("with clientActionsFeature and the hooks, they are approved as by createEngine", async () => {
    const h = new Harness({ approver: approveAll, features: [clientActionsFeature], hooks: answeringHooks })
    const seen = await h.ready([...CORE, ...CLIENT_CAPABILITIES])
    expect(notified(seen)).toEqual([...CORE, ...CLIENT_CAPABILITIES])
  })
})

/** Every action of an optional feature, with the feature that serves it. */
const featureActions = Object.entries(FEATURE_ACTIONS) as ReadonlyArray<[string, FeatureName]>

describe("a lean engine refuses the actions of features it was made without", () => {
  it.each(featureActions)("%s (%s): one error naming the feature", async (action, feature) => {
    const h = new Harness({ approver: approveAll, features: [] })
    await h.ready(CORE)
    h.take()
    const id = h.request(action, {})
    await flush()
    const answers = h.take().filter((m) => m.requestId === id)
    expect(answers).toEqual([expect.objectContaining({ response: { error: { message: `Unsupported action: ${action} (this host was built without the ${feature} feature)`, code: "NotIncluded" } } })])
  })

  it("a feature included serves its action; one left out still refuses", async () => {
    const h = new Harness({ approver: approveAll, features: [toDeviceFeature] })
    await h.ready(["m.send.to_device:m.call.invite"])
    h.take()
    const messages = { "@u:hs": { DEVICE: { body: "hi" } } }
    const sent = h.request("send_to_device", { type: "m.call.invite", messages })
    const media = h.request("get_media_config", {})
    await flush()
    expect(h.responseTo(sent)).toEqual({})
    expect(h.homeserver.toDeviceSent).toEqual([{ type: "m.call.invite", encrypted: true, messages }])
    expect(h.responseTo(media)).toEqual({ error: { message: "Unsupported action: get_media_config (this host was built without the media feature)", code: "NotIncluded" } })
  })

  it("with clientActionsFeature, a hook's action is served when its hook is installed and unknown when not", async () => {
    const navigated: string[] = []
    const h = new Harness({ approver: approveAll, features: [clientActionsFeature], hooks: { navigate: async (uri) => void navigated.push(uri) } })
    await h.ready(["org.matrix.msc2931.navigate"])
    h.take()
    const served = h.request("org.matrix.msc2931.navigate", { uri: "https://matrix.to/#/#room:hs" })
    const unhooked = h.request("set_always_on_screen", { value: true })
    await flush()
    expect(h.responseTo(served)).toEqual({})
    expect(navigated).toEqual(["https://matrix.to/#/#room:hs"])
    expect(h.responseTo(unhooked)).toEqual({ error: { message: "Unknown or unsupported action: set_always_on_screen", code: "UnknownAction" } })
  })
})

describe("a lean engine without clientActionsFeature refuses to be given what only it serves", () => {
  const lean = (options: Partial<Parameters<typeof createLeanEngine>[0]>) => () =>
    createLeanEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver()), subscribe: false, ...options })

  it.each<[string, Partial<Parameters<typeof createLeanEngine>[0]>]>([
    ["a hook", { hooks: { navigate: async () => {} } }],
    ["a custom action", { customActions: { "io.element.join": async () => ({}) } }]
  ])("%s: the engine is not made", (_name, options) => {
    expect(lean(options)).toThrow(/clientActionsFeature, which this engine was made without/)
    expect(lean({ ...options, features: [clientActionsFeature] })).not.toThrow()
  })

  it.each(["org.matrix.msc2931", "org.matrix.msc2790", "org.matrix.msc3817"])("the extra version %s", (version) => {
    expect(lean({ apiVersions: [version] })).toThrow(new RegExp(`${version.replaceAll(".", "\\.")} promises the clientActions feature`))
  })

  it("no hooks given (an empty table) is no offer", () => {
    expect(lean({ hooks: {}, customActions: {} })).not.toThrow()
  })

  // The hook and custom-action checks of the client's offer come with the feature (`client-offer.ts`).
  it.each<[string, Partial<Parameters<typeof createLeanEngine>[0]>, string]>([
    ["a version a missing hook serves", { apiVersions: ["org.matrix.msc2931"] }, "versions: org.matrix.msc2931 promises what hooks.navigate would serve, and it is not installed"],
    ["a version no custom action serves", { apiVersions: ["org.matrix.msc3817"] }, "versions: org.matrix.msc3817 promises org.matrix.msc3817.create_room, which no custom action serves"],
    ["an engine action as a custom action", { customActions: { send_event: async () => ({}) } }, "customActions: send_event is served by the engine and cannot be overridden"]
  ])("given clientActionsFeature, %s is still refused", (_name, options, want) => {
    expect(lean({ ...options, features: [clientActionsFeature] })).toThrow(want)
  })
})

describe("a lean engine advertises only the versions it serves", () => {
  it.each<[string, ReadonlyArray<SessionFeature>, ReadonlyArray<string>, ReadonlyArray<string>]>([
    ["no features", [], ["0.0.2", "org.matrix.msc2762", "org.matrix.msc2974", "town.robin.msc3846"], ["org.matrix.msc3819", "org.matrix.msc3869", "org.matrix.msc3973", "org.matrix.msc4039", "org.matrix.msc4515", "org.matrix.msc4533"]],
    ["media only", [mediaFeature], ["0.0.2", "org.matrix.msc4039"], ["org.matrix.msc3819", "org.matrix.msc4515"]],
    ["no features, asked for the hooks' versions", [], ["0.0.2"], ["org.matrix.msc2931", "org.matrix.msc2790"]],
    ["clientActions with every hook", [clientActionsFeature], ["0.0.2", "org.matrix.msc2931", "org.matrix.msc2790"], ["org.matrix.msc4039"]]
  ])("%s", async (_name, features, has, lacks) => {
    const h = new Harness({ features, ...(features.includes(clientActionsFeature) ? { hooks: answeringHooks } : {}) })
    const id = h.request("supported_api_versions")
    const versions = (h.responseTo(id) as { supported_versions: ReadonlyArray<string> }).supported_versions
    expect(versions).toEqual(expect.arrayContaining([...has]))
    for (const version of lacks) expect(versions).not.toContain(version)
  })

  it("refuses, when the engine is made, an extra version that promises a feature left out", () => {
    const make = () => createLeanEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver()), subscribe: false, apiVersions: ["org.matrix.msc3819"] })
    expect(make).toThrow(/org\.matrix\.msc3819 promises the toDevice feature/)
    expect(() => createLeanEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver()), subscribe: false, apiVersions: ["org.matrix.msc3819"], features: [toDeviceFeature] })).not.toThrow()
  })
})

describe("the feature tables agree with the features", () => {
  it("every action a feature serves is listed as that feature's, and every listed action is served by allFeatures", () => {
    // The client-side actions are served by hooks (`HOOK_ACTIONS`), not by the feature's own table.
    const actionsOf = (feature: SessionFeature) => (feature.clientActions === undefined ? Object.keys(feature.actions) : [...HOOK_ACTIONS.keys()])
    const served = allFeatures.flatMap((feature) => actionsOf(feature).map((action) => [action, feature.name] as const))
    expect(Object.fromEntries(served)).toEqual({ ...FEATURE_ACTIONS })
    expect(new Set(allFeatures.map((feature) => feature.name)).size).toBe(allFeatures.length)
  })
})
