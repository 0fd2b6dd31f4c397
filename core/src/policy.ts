import * as Result from "./result.ts"
import { type Capability, deniedByDescriptor, formatCapability, parseCapability } from "./capabilities.ts"
import { type ClientSide, hookFor, noClientSide } from "./client-side.ts"
import { isCryptoInternalToDeviceType } from "./crypto-types.ts"
import { CORE_CACHE_LIMITS, type CoreCaches, remember } from "./core-caches.ts"
import { featureServes, type FeatureName } from "./session/feature.ts"

/**
 * A rule of the approval policy. Every field present must match; the first matching rule wins.
 * Patterns are globs where `*` matches any run of characters. `capability` is matched against the
 * capability's canonical stable form, so one rule covers the `m.` and the unstable spelling alike.
 *
 * @example { widgetId: "call-*", capability: "m.turn_servers", decision: "approve" }
 */
export interface PolicyRule {
  readonly widgetId?: string
  readonly origin?: string
  readonly capability: string
  readonly decision: "approve" | "deny"
}

export interface ApprovalPolicy {
  readonly rules: ReadonlyArray<PolicyRule>
  /**
   * Opaque capabilities (such as `m.capability.screenshot`) that the embedding client itself
   * serves. Any other capability the engine does not understand is denied, as MSC2764 requires.
   * Capabilities the engine knows as client-side (`m.always_on_screen`, `m.sticker`, `m.navigate`,
   * `m.modals`) are served by their hooks, never by this list.
   */
  readonly clientCapabilities?: ReadonlyArray<string>
}

export const emptyPolicy: ApprovalPolicy = { rules: [] }

/**
 * `Deny` reasons: `invalid` does not parse; `unrecognised` is opaque and undeclared; `unserved` is a
 * client-side capability whose hook is not installed, or one of a feature the engine was built
 * without (`session/feature.ts`): approving it would promise what nobody does; `descriptor` contradicts a well-known type; `reserved` is the crypto layer's own
 * to-device traffic; `rule` a policy rule said so.
 */
export type Verdict =
  | { readonly _tag: "Approve"; readonly rule: number }
  /**
   * `unsupported`: a capability of a known proposal that nothing here can serve yet (MSC4407 sticky
   * events need MSC4354 support that no homeserver port has), told apart from `unrecognised` names.
   */
  | { readonly _tag: "Deny"; readonly reason: "invalid" | "unrecognised" | "unsupported" | "unserved" | "descriptor" | "reserved" | "rule" }
  | { readonly _tag: "Ask" }

export interface WidgetIdentity {
  readonly id: string
  readonly origin?: string
}

/**
 * Capabilities the grammar knows but the engine cannot serve. MSC4407 `send.sticky_event` needs a
 * homeserver that takes MSC4354's `sticky_duration_ms`, and `receive.sticky_event` needs the
 * sticky section of `/sync`; the homeserver port offers neither, so both are denied until it does.
 */
const unsupported: ReadonlySet<Capability["_tag"]> = new Set(["SendStickyEvent", "ReceiveStickyEvent"])

const compileGlob = (pattern: string): RegExp => {
  const source = pattern.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")
  return new RegExp(`^${source}$`, "s")
}

/** A policy glob as a regular expression, from the engine's caches when given them. */
const glob = (pattern: string, caches: CoreCaches | undefined): RegExp => {
  if (caches === undefined) return compileGlob(pattern)
  return caches.globs.get(pattern) ?? remember(caches.globs, pattern, compileGlob(pattern), CORE_CACHE_LIMITS.globs)
}

/**
 * Decides one requested capability without asking anybody, or says it needs asking. `client` says
 * what the embedding client serves (its hooks); without it, no client-side capability is served.
 * `caches` (the engine's) keep the rules' globs compiled; without them each is compiled afresh.
 * `features` are the optional features served (absent: every one).
 *
 * @example classify({ rules: [{ capability: "m.receive.event:*", decision: "approve" }] }, { id: "w" }, "org.matrix.msc2762.receive.event:m.room.message").\_tag === "Approve"
 */
export const classify = (policy: ApprovalPolicy, widget: WidgetIdentity, capability: string, client: ClientSide = noClientSide, caches?: CoreCaches, features?: ReadonlySet<FeatureName>): Verdict => {
  const parsed = parseCapability(capability)
  if (Result.isFailure(parsed)) return { _tag: "Deny", reason: "invalid" }
  const cap = parsed.success
  if (cap._tag === "Other" && !(policy.clientCapabilities ?? []).includes(capability)) return { _tag: "Deny", reason: "unrecognised" }
  // Before the rules: no rule can approve what nothing serves (a widget would believe it may).
  if (unsupported.has(cap._tag)) return { _tag: "Deny", reason: "unsupported" }
  const hook = hookFor(cap)
  if (hook !== undefined && !client.hooks.has(hook)) return { _tag: "Deny", reason: "unserved" }
  if (features !== undefined && !featureServes(features, cap._tag)) return { _tag: "Deny", reason: "unserved" }
  if (deniedByDescriptor(cap)) return { _tag: "Deny", reason: "descriptor" }
  if (cap._tag === "ToDevice" && isCryptoInternalToDeviceType(cap.eventType)) return { _tag: "Deny", reason: "reserved" }
  const canonical = formatCapability(cap, "stable")
  for (let index = 0; index < policy.rules.length; index++) {
    const rule = policy.rules[index]!
    if (rule.widgetId !== undefined && !glob(rule.widgetId, caches).test(widget.id)) continue
    if (rule.origin !== undefined && (widget.origin === undefined || !glob(rule.origin, caches).test(widget.origin))) continue
    const pattern = glob(rule.capability, caches)
    if (!pattern.test(canonical) && !pattern.test(capability)) continue
    return rule.decision === "approve" ? { _tag: "Approve", rule: index } : { _tag: "Deny", reason: "rule" }
  }
  return { _tag: "Ask" }
}

/**
 * The name policy rules give MSC1960's `get_openid`, which has no capability of its own (the
 * widget asks for the user's identity at any time after negotiation, and nothing is negotiated
 * for it). It is a policy name only: a widget asking for it as a capability gets it denied as
 * unrecognised, like any other capability the engine does not serve.
 */
export const OPENID_POLICY_CAPABILITY = "m.openid"

/**
 * Decides whether a widget may have an OpenID token without asking anybody. Only rules naming
 * `m.openid` exactly count (their widget and origin globs apply as usual): MSC1960 wants the user
 * asked, so a catch-all capability rule such as `*` never hands out the user's identity.
 *
 * @example classifyOpenId({ rules: [{ widgetId: "call-*", capability: "m.openid", decision: "approve" }] }, { id: "call-1" })._tag === "Approve"
 */
export const classifyOpenId = (policy: ApprovalPolicy, widget: WidgetIdentity, caches?: CoreCaches): Verdict => {
  for (let index = 0; index < policy.rules.length; index++) {
    const rule = policy.rules[index]!
    if (rule.capability !== OPENID_POLICY_CAPABILITY) continue
    if (rule.widgetId !== undefined && !glob(rule.widgetId, caches).test(widget.id)) continue
    if (rule.origin !== undefined && (widget.origin === undefined || !glob(rule.origin, caches).test(widget.origin))) continue
    return rule.decision === "approve" ? { _tag: "Approve", rule: index } : { _tag: "Deny", reason: "rule" }
  }
  return { _tag: "Ask" }
}
