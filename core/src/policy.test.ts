import { describe, expect, it } from "vitest"
import { type ClientHook, type ClientSide, noClientSide } from "./client-side.ts"
import { type ApprovalPolicy, classify, type Verdict } from "./policy.ts"

const approveAll: ApprovalPolicy = { rules: [{ capability: "*", decision: "approve" }] }
const serving = (...hooks: ReadonlyArray<ClientHook>): ClientSide => ({ ...noClientSide, hooks: new Set(hooks) })

/** given a policy, the client's hooks and a capability, want the verdict. */
const table: ReadonlyArray<{ readonly name: string; readonly policy: ApprovalPolicy; readonly client: ClientSide; readonly capability: string; readonly want: Verdict }> = [
  { name: "engine-served capability: the rule decides", policy: approveAll, client: noClientSide, capability: "m.turn_servers", want: { _tag: "Approve", rule: 0 } },
  { name: "m.always_on_screen without its hook: unserved, even under approve-all", policy: approveAll, client: noClientSide, capability: "m.always_on_screen", want: { _tag: "Deny", reason: "unserved" } },
  { name: "m.always_on_screen with setAlwaysOnScreen: the rule decides", policy: approveAll, client: serving("setAlwaysOnScreen"), capability: "m.always_on_screen", want: { _tag: "Approve", rule: 0 } },
  { name: "m.sticker without sendSticker: unserved", policy: approveAll, client: serving("navigate"), capability: "m.sticker", want: { _tag: "Deny", reason: "unserved" } },
  { name: "m.sticker with sendSticker and no rule: asked", policy: { rules: [] }, client: serving("sendSticker"), capability: "m.sticker", want: { _tag: "Ask" } },
  { name: "unstable navigate without its hook: unserved", policy: approveAll, client: serving("sendSticker"), capability: "org.matrix.msc2931.navigate", want: { _tag: "Deny", reason: "unserved" } },
  { name: "stable navigate with its hook", policy: approveAll, client: serving("navigate"), capability: "m.navigate", want: { _tag: "Approve", rule: 0 } },
  { name: "modals need openModal (close_modal alone serves no source widget)", policy: approveAll, client: serving("closeModal", "setButtonEnabled"), capability: "org.matrix.msc2790.modals", want: { _tag: "Deny", reason: "unserved" } },
  { name: "modals with openModal", policy: approveAll, client: serving("openModal"), capability: "m.modals", want: { _tag: "Approve", rule: 0 } },
  { name: "a deny rule still denies a served one", policy: { rules: [{ capability: "m.sticker", decision: "deny" }] }, client: serving("sendSticker"), capability: "m.sticker", want: { _tag: "Deny", reason: "rule" } },
  { name: "a known client-side capability in clientCapabilities is still unserved without its hook", policy: { ...approveAll, clientCapabilities: ["m.always_on_screen"] }, client: noClientSide, capability: "m.always_on_screen", want: { _tag: "Deny", reason: "unserved" } },
  { name: "an opaque capability the client declares: the rule decides", policy: { ...approveAll, clientCapabilities: ["m.capability.screenshot"] }, client: noClientSide, capability: "m.capability.screenshot", want: { _tag: "Approve", rule: 0 } },
  { name: "an opaque capability nobody declares: unrecognised", policy: approveAll, client: serving(...["navigate" as const]), capability: "io.element.requires_client", want: { _tag: "Deny", reason: "unrecognised" } },
  { name: "invalid before anything else", policy: approveAll, client: noClientSide, capability: "m.send.state_event:a\\x", want: { _tag: "Deny", reason: "invalid" } }
]

describe("classify", () => {
  it.each(table)("$name", ({ policy, client, capability, want }) => {
    expect(classify(policy, { id: "w" }, capability, client)).toStrictEqual(want)
  })

  it.each(["m.always_on_screen", "m.sticker", "m.navigate", "m.modals"])("%s with its hook, on an engine made without clientActionsFeature: unserved before the rules", (capability) => {
    const everyHook = serving("setAlwaysOnScreen", "sendSticker", "navigate", "openModal")
    expect(classify(approveAll, { id: "w" }, capability, everyHook, undefined, new Set())).toStrictEqual({ _tag: "Deny", reason: "unserved" })
    expect(classify(approveAll, { id: "w" }, capability, everyHook, undefined, new Set(["clientActions"]))).toStrictEqual({ _tag: "Approve", rule: 0 })
  })

  it("without a client description nothing client-side is served", () => {
    expect(classify(approveAll, { id: "w" }, "m.sticker")).toStrictEqual({ _tag: "Deny", reason: "unserved" })
  })
})
