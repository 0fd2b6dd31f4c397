/**
 * Session features: the proposals beyond the core ones (MSC2764 base, MSC2762, MSC2871, MSC2974,
 * MSC3009, MSC3846) as modules an engine is given, so a host that does not use one does not ship
 * it: a bundler drops every feature nobody passes (`session/features.ts` defines them).
 *
 * This file is the data both sides read. A session serves a feature's actions, approves its
 * capabilities and advertises its versions only when the engine was given the feature; without
 * it, its capabilities are denied as unserved and its actions refused as not included, so a
 * widget is never promised what nothing here would serve.
 */
import type { Capability } from "../capabilities.ts"
import { type CapabilityDescriptions, coreCapabilityDescriptions } from "../capability-description.ts"
import type { ClientOutcome } from "../client-call.ts"
import type { ClientHandlers, ClientHooks, HookCall, runClientCall } from "../client-hooks.ts"
import type { ClientOfferChecks } from "../client-offer.ts"
import type { ClientHook } from "../client-side.ts"
import type { openIdPrompt } from "../openid-approver.ts"
import type { ToDeviceEvent } from "../matrix.ts"
import { SUPPORTED_API_VERSIONS } from "../versions.ts"
import type { CallResult } from "./input.ts"
import type { PortCalls } from "./port-call.ts"
import type { PendingCall, RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

/** Tables looked up by what a widget or client wrote: `constructor` must find nothing, not Object's. */
const nullPrototype = <T extends object>(table: T): T => Object.assign(Object.create(null) as T, table)

export type FeatureName = "toDevice" | "delayedEvents" | "relations" | "userDirectory" | "media" | "openId" | "roomAccountData" | "rtc" | "clientActions"

export type FeatureAction = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>) => void
type Answers = { readonly [Tag in PendingCall["_tag"]]?: (s: Stepper, pending: Extract<PendingCall, { _tag: Tag }>, result: CallResult) => void }

/** A client-side fromWidget action's handler (`client-calls.ts`), given the action's name. */
export type ClientActionHandler = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>, action: string) => void

/**
 * The client-side actions (`clientActionsFeature`): the session's side (check, ask the client,
 * shape its answer, time it out) and the engine's (check the hooks given, call one).
 */
export interface ClientActions extends ClientOfferChecks {
  /** The handler of a client-side action, or undefined when no hook or custom action serves it. */
  readonly handler: (s: Stepper, action: string) => ClientActionHandler | undefined
  readonly answered: (s: Stepper, ticket: number, outcome: ClientOutcome) => void
  /** The timeout sweep for client calls: true while some remain. */
  readonly sweep: (s: Stepper) => boolean
  /** The document or session is gone: the client stops. */
  readonly withdraw: (s: Stepper) => void
  /** What is wrong with the hooks and custom actions given (`clientHookProblems`). */
  readonly problems: (client: ClientHandlers) => string[]
  /** The hooks given as functions. */
  readonly installed: (hooks: ClientHooks) => ReadonlyArray<ClientHook>
  readonly hookCall: (...args: ConstructorParameters<typeof HookCall>) => HookCall
  readonly run: typeof runClientCall
}

/** One optional proposal: the fromWidget actions it serves and how it takes what comes back. */
export interface SessionFeature {
  readonly name: FeatureName
  /** Its fromWidget actions, stable and unstable names; each calls the homeserver (bounded by `limits.maxPendingCalls`). */
  readonly actions: Readonly<Record<string, FeatureAction>>
  /** Answers to the homeserver calls its actions started, by pending call. */
  readonly answers?: Answers
  /** How the engine runs the homeserver requests its actions emit (`port-call.ts`). */
  readonly calls?: PortCalls
  /** Its capabilities in words, for the approver's prompt (`capability-description.ts`). */
  readonly descriptions?: CapabilityDescriptions
  /** MSC3819: to-device messages the router routed to the session. */
  readonly toDevice?: (s: Stepper, event: ToDeviceEvent) => void
  /** MSC1960: the OpenID approver answered. */
  readonly openIdDecided?: (s: Stepper, ticket: number, allowed: boolean) => void
  /** MSC1960: how the engine asks its OpenID approver (`openid-approver.ts`). */
  readonly openIdPrompt?: typeof openIdPrompt
  /** MSC2764, MSC2931, MSC2790 and the client's custom actions: served by the client's hooks. */
  readonly clientActions?: ClientActions
}

/** The features an engine was given, resolved once per engine and shared by its sessions' configs. */
export interface FeatureTable {
  readonly names: ReadonlySet<FeatureName>
  /** Without a prototype: an action named `constructor` finds no handler. */
  readonly actions: Readonly<Record<string, FeatureAction | undefined>>
  readonly answers: Answers
  readonly calls: PortCalls
  /** The core's capability descriptions and those of the features included. */
  readonly descriptions: CapabilityDescriptions
  readonly toDevice: ((s: Stepper, event: ToDeviceEvent) => void) | undefined
  readonly openIdDecided: ((s: Stepper, ticket: number, allowed: boolean) => void) | undefined
  readonly openIdPrompt: typeof openIdPrompt | undefined
  readonly clientActions: ClientActions | undefined
  /** `supported_api_versions` without the versions of features not included. */
  readonly versions: ReadonlyArray<string>
}

/**
 * Which feature serves each fromWidget action: a request for one not included gets
 * `NotIncluded`, and a client's custom action may not take these names either way.
 */
export const FEATURE_ACTIONS: Readonly<Record<string, FeatureName | undefined>> = nullPrototype({
  send_to_device: "toDevice",
  update_delayed_event: "delayedEvents",
  "org.matrix.msc4157.update_delayed_event": "delayedEvents",
  read_relations: "relations",
  "org.matrix.msc3869.read_relations": "relations",
  user_directory_search: "userDirectory",
  "org.matrix.msc3973.user_directory_search": "userDirectory",
  get_media_config: "media",
  "org.matrix.msc4039.get_media_config": "media",
  upload_file: "media",
  "org.matrix.msc4039.upload_file": "media",
  download_file: "media",
  "org.matrix.msc4039.download_file": "media",
  get_openid: "openId",
  "com.beeper.read_room_account_data": "roomAccountData",
  get_rtc_transports: "rtc",
  "org.matrix.msc4515.get_rtc_transports": "rtc",
  rtc_livekit_get_token: "rtc",
  "org.matrix.msc4533.rtc_livekit_get_token": "rtc",
  rtc_livekit_delegate_delayed_leave: "rtc",
  "org.matrix.msc4533.rtc_livekit_delegate_delayed_leave": "rtc",
  // The client's hooks serve these (`HOOK_ACTIONS`); custom actions need the feature too.
  navigate: "clientActions",
  "org.matrix.msc2931.navigate": "clientActions",
  set_always_on_screen: "clientActions",
  "m.sticker": "clientActions",
  open_modal: "clientActions",
  set_button_enabled: "clientActions",
  close_modal: "clientActions"
})

/** Which feature serves each capability kind; kinds not named here are the core's (or the client's). */
export const CAPABILITY_FEATURES: { readonly [Tag in Capability["_tag"]]?: FeatureName } = {
  ToDevice: "toDevice",
  SendDelayedEvent: "delayedEvents",
  UpdateDelayedEvent: "delayedEvents",
  UserDirectorySearch: "userDirectory",
  UploadFile: "media",
  DownloadFile: "media",
  RoomAccountData: "roomAccountData",
  RtcTransports: "rtc",
  RtcLivekitGetToken: "rtc",
  RtcLivekitDelegateDelayedLeave: "rtc",
  AlwaysOnScreen: "clientActions",
  Sticker: "clientActions",
  Navigate: "clientActions",
  Modals: "clientActions"
}

/** Which feature an advertised version stands for (MSC3869 and MSC1960 need no capability, but they have actions). */
export const VERSION_FEATURES: Readonly<Record<string, FeatureName | undefined>> = nullPrototype({
  "org.matrix.msc3819": "toDevice",
  "org.matrix.msc3869": "relations",
  "org.matrix.msc3973": "userDirectory",
  "org.matrix.msc4039": "media",
  "org.matrix.msc4157": "delayedEvents",
  "org.matrix.msc4515": "rtc",
  "org.matrix.msc4533": "rtc",
  // Advertised when the client's hooks (or custom actions) serve them, which needs the feature.
  "org.matrix.msc2931": "clientActions",
  "org.matrix.msc2790": "clientActions",
  "org.matrix.msc3817": "clientActions"
})

/** `versions` without those of features that `names` lacks. */
export const servedVersions = (versions: ReadonlyArray<string>, names: ReadonlySet<FeatureName>): ReadonlyArray<string> => {
  const kept = versions.filter((version) => {
    const feature = VERSION_FEATURES[version]
    return feature === undefined || names.has(feature)
  })
  return kept.length === versions.length ? versions : kept
}

/**
 * Resolves the features an engine is given into the table its sessions read.
 *
 * @example featureTable([toDeviceFeature]).names.has("toDevice") // true
 */
export const featureTable = (features: ReadonlyArray<SessionFeature>): FeatureTable => {
  const actions = Object.create(null) as Record<string, FeatureAction>
  const answers: Record<string, unknown> = {}
  const calls: Record<string, unknown> = {}
  const descriptions: Record<string, unknown> = { ...coreCapabilityDescriptions }
  let toDevice: FeatureTable["toDevice"]
  let openIdDecided: FeatureTable["openIdDecided"]
  let openIdPrompt: FeatureTable["openIdPrompt"]
  let clientActions: FeatureTable["clientActions"]
  for (const feature of features) {
    Object.assign(actions, feature.actions)
    Object.assign(answers, feature.answers)
    Object.assign(calls, feature.calls)
    Object.assign(descriptions, feature.descriptions)
    toDevice ??= feature.toDevice
    openIdDecided ??= feature.openIdDecided
    openIdPrompt ??= feature.openIdPrompt
    clientActions ??= feature.clientActions
  }
  const names = new Set(features.map((feature) => feature.name))
  return Object.freeze({ names, actions, answers, calls, descriptions, toDevice, openIdDecided, openIdPrompt, clientActions, versions: servedVersions(SUPPORTED_API_VERSIONS, names) })
}

/** A session given no features: the core proposals only. */
export const noFeatures: FeatureTable = /* @__PURE__ */ featureTable([])

/** Whether a capability kind is served by the features in `names` (or needs none). */
export const featureServes = (names: ReadonlySet<FeatureName>, tag: Capability["_tag"]): boolean => {
  const feature = CAPABILITY_FEATURES[tag]
  return feature === undefined || names.has(feature)
}
