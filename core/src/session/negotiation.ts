/**
 * Capability negotiation: the initial exchange (MSC2764 + MSC2871) and re-exchange (MSC2974).
 * Approved capabilities only ever grow; a denied one is never prompted again in the session.
 */
import { CORE_CACHE_LIMITS, type CoreCaches, remember, shareList } from "../core-caches.ts"
import { compilePermissions } from "../permissions.ts"
import { classify } from "../policy.ts"
import { ProtocolError } from "../protocol-error.ts"
import { noFeatures } from "./feature.ts"
import { loadGrantedState } from "./state-sync.ts"
import { none, type PendingToWidget, type RawRequest, type SessionState, sweepsToTimeout } from "./state.ts"
import type { Stepper } from "./step.ts"

const union = (caches: CoreCaches, a: ReadonlyArray<string>, b: ReadonlyArray<string>): ReadonlyArray<string> => {
  // Nothing to add (most rounds deny nothing): no set of `a` to build.
  if (b.length === 0) return a
  let added: string[] | undefined
  const seen = new Set(a)
  for (const item of b) {
    if (seen.has(item)) continue
    seen.add(item)
    ;(added ??= []).push(item)
  }
  // Nothing new: keep the same array (idle sessions share nothing they don't need to copy).
  // Otherwise one array of exactly the union's length (one grown by `push` keeps room for 17
  // entries), shared with every session that has the same list: each keeps it for its whole life.
  return added === undefined ? a : shareList(caches, a.concat(added))
}

/**
 * The chart entered `negotiating`: ask for the widget's capabilities. Its versions are asked only
 * when they matter (receiving state: update_state or send_event), so most sessions start with one
 * exchange. The request's timeout is the chart's (`negotiating.asking`), not the sweep's.
 */
export const askCapabilities = (s: Stepper): void => {
  s.sendRequest("capabilities", {}, "capabilities")
}

/**
 * The chart's capabilities clock ticks every timeout/`sweepsToTimeout`, as the request sweep
 * does: a tick while the link is down (`linkDown`) does not count, since no answer can come
 * then, so a widget away during negotiation has what was left of its timeout once back. The
 * chart asks `capabilitiesDue` first: a tick that would be the last counted one is the timeout.
 */
export const capabilitiesDue = (state: SessionState): boolean => {
  if (state.linkDown) return false
  for (const pending of state.pendingToWidget.values()) if (pending.purpose === "capabilities") return pending.sweeps + 1 >= sweepsToTimeout
  return true
}

/** A tick that is not the timeout: the `capabilities` request ages by one, unless the link is down. */
export const ageCapabilitiesRequest = (s: Stepper): void => {
  if (s.state.linkDown) return
  let aged: Map<string, PendingToWidget> | undefined
  for (const [requestId, pending] of s.state.pendingToWidget) {
    if (pending.purpose !== "capabilities") continue
    aged ??= new Map(s.state.pendingToWidget)
    aged.set(requestId, { ...pending, sweeps: pending.sweeps + 1 })
  }
  if (aged !== undefined) s.set({ pendingToWidget: aged })
}

/** The chart's capabilities timeout: an unanswered `capabilities` request counts as asking for nothing. */
export const onCapabilitiesTimeout = (s: Stepper): void => {
  for (const [requestId, pending] of s.state.pendingToWidget) {
    if (pending.purpose !== "capabilities") continue
    s.settle(requestId)
    s.count("timedOut")
    s.report({ _tag: "RequestTimedOut", action: pending.action, requestId })
  }
  if (s.state.approval === undefined) weigh(s, [])
}

/** Reads the capability list out of a `capabilities` answer; anything else counts as none. */
export const capabilitiesOf = (response: unknown): ReadonlyArray<string> => {
  const list = (response as { capabilities?: unknown } | null)?.capabilities
  return Array.isArray(list) ? list.filter((item): item is string => typeof item === "string") : []
}

/** The engine's one copy of `capability` (`CoreCaches.capabilities`); long strings are kept as they are. */
const intern = (caches: CoreCaches, capability: string): string => {
  if (capability.length > 256) return capability
  return caches.capabilities.get(capability) ?? remember(caches.capabilities, capability, capability, CORE_CACHE_LIMITS.capabilities)
}

const sameList = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((item, index) => item === b[index])

/**
 * Weighs requested capabilities: already approved ones need nothing, denied ones stay denied,
 * the policy decides what it can, and only the rest goes to the approver.
 */
export const weigh = (s: Stepper, incoming: ReadonlyArray<string>): void => {
  const { config } = s.state
  const fresh = [...new Set(incoming.map((capability) => intern(s.caches, capability)))]
  const considered = fresh.slice(0, config.limits.maxCapabilitiesPerRequest)
  // A first negotiation has nothing approved or denied yet: no sets to build for that.
  const approved = s.state.approved.length === 0 ? undefined : new Set(s.state.approved)
  const denied = s.state.denied.length === 0 ? undefined : new Set(s.state.denied)
  const autoApproved: string[] = []
  const autoDenied: string[] = fresh.slice(config.limits.maxCapabilitiesPerRequest)
  const ask: string[] = []
  for (const capability of considered) {
    if (approved?.has(capability) === true || denied?.has(capability) === true) continue
    const verdict = classify(config.policy, { id: config.widgetId, ...(config.origin === undefined ? {} : { origin: config.origin }) }, capability, config.client, s.caches, (config.features ?? noFeatures).names)
    if (verdict._tag === "Approve") autoApproved.push(capability)
    else if (verdict._tag === "Deny") autoDenied.push(capability)
    else ask.push(capability)
  }
  s.set({ requested: union(s.caches, s.state.requested, fresh), denied: union(s.caches, s.state.denied, autoDenied) })
  if (ask.length === 0) return grant(s, autoApproved, [])
  const ticket = s.nextSeq()
  s.set({ approval: { ticket, asked: ask, autoApproved } })
  s.emit({ _tag: "AskApprover", ticket, requested: ask, alreadyApproved: s.state.approved })
  // The chart waits for the answer, with the approval timeout (`limits.approvalTimeoutMs`).
  s.signal({ type: "negotiation.prompted" })
}

/**
 * Settles an approval round: grow the approved set, tell the widget, queue what it unlocks (state
 * loads start as the chart enters `ready`), then weigh what was asked meanwhile.
 */
const grant = (s: Stepper, newlyApproved: ReadonlyArray<string>, newlyDenied: ReadonlyArray<string>): void => {
  const before = s.state.permissions
  const grown = union(s.caches, s.state.approved, newlyApproved)
  // Most widgets get all they ask for: then both lists are one array.
  const approved = sameList(grown, s.state.requested) ? s.state.requested : grown
  const permissions = approved.length === s.state.approved.length ? before : compilePermissions(approved, s.caches)
  s.set({ approved, permissions, denied: union(s.caches, s.state.denied, newlyDenied), approval: undefined })
  s.signal({ type: "negotiation.granted" })
  s.sendRequest("notify_capabilities", { requested: s.state.requested, approved }, "notify")
  if (permissions !== before) {
    s.emit({ _tag: "Subscribe", permissions, homeRoom: s.state.homeRoom })
    const stateKeyOf = (k: (typeof before.receivableState)[number]) => `${k.type}\u0000${k.stateKey ?? "\u0001"}`
    const known = before.receivableState.length === 0 ? undefined : new Set(before.receivableState.map(stateKeyOf))
    const added = known === undefined ? permissions.receivableState : permissions.receivableState.filter((k) => !known.has(stateKeyOf(k)))
    if (added.length > 0) loadGrantedState(s, added)
  }
  const queued = s.state.queuedCapabilities
  if (queued.length > 0) {
    s.set({ queuedCapabilities: none })
    weigh(s, queued)
  }
}

/** The approver answered. It can only approve what it was asked; the rest of the ask is denied. */
export const onApprovalDecided = (s: Stepper, ticket: number, decided: ReadonlyArray<string>): void => {
  const approval = s.state.approval
  if (approval === undefined || approval.ticket !== ticket) return // stale or forged ticket
  const granted = new Set(decided)
  grant(s, [...approval.autoApproved, ...approval.asked.filter((c) => granted.has(c))], approval.asked.filter((c) => !granted.has(c)))
}

export const onApprovalTimeout = (s: Stepper): void => {
  const approval = s.state.approval
  if (approval === undefined) return
  s.report({ _tag: "ApprovalTimedOut", requested: approval.asked })
  s.emit({ _tag: "CancelApproval", ticket: approval.ticket })
  grant(s, approval.autoApproved, approval.asked)
}

/** The chart's MSC2974 rate window ended: the budget is whole again. */
export const onCapabilityWindowEnd = (s: Stepper): void => s.set({ capabilityRequestsInWindow: 0 })

/** MSC2974 `request_capabilities`: acknowledged at once, weighed, then re-notified. */
export const requestCapabilities = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const list = data.capabilities
  if (!Array.isArray(list) || !list.every((c) => typeof c === "string")) {
    return s.fail(raw, ProtocolError.Malformed({ issue: "capabilities must be an array of strings" }))
  }
  const { budget } = s.state.config.limits.capabilityRequests
  if (s.state.capabilityRequestsInWindow >= budget) return s.fail(raw, ProtocolError.RateLimited({ action: "request_capabilities" }))
  if (s.state.capabilityRequestsInWindow === 0) s.armWindow() // the chart ends the window after `windowMs`
  s.set({ capabilityRequestsInWindow: s.state.capabilityRequestsInWindow + 1 })
  s.reply(raw, {})
  if (s.state.approval !== undefined) {
    // One prompt at a time: what is asked meanwhile is weighed when the open prompt settles.
    s.set({ queuedCapabilities: union(s.caches, s.state.queuedCapabilities, list), requested: union(s.caches, s.state.requested, list) })
    return
  }
  weigh(s, list)
}
