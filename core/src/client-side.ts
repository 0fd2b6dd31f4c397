/**
 * What the embedding client serves itself: the fromWidget actions that act in the client's own UI
 * (MSC2764 stickers and always-on-screen, MSC2931 navigation, MSC2790 modals), each through a hook
 * the client installs, and custom actions of its own (`io.element.join`, ...). The engine checks
 * capabilities and input; the client only decides and acts.
 *
 * A capability is approved only if something serves it, and `supported_api_versions` lists only
 * what is served: both read this description, made once per engine (`resolveClientSide`).
 */
import type { Capability } from "./capabilities.ts"
import { SUPPORTED_API_VERSIONS } from "./versions.ts"

/** The hooks an embedding client can install, one per client-side fromWidget action. */
export type ClientHook = "navigate" | "setAlwaysOnScreen" | "sendSticker" | "openModal" | "setButtonEnabled" | "closeModal"

export const CLIENT_HOOKS: ReadonlyArray<ClientHook> = ["navigate", "setAlwaysOnScreen", "sendSticker", "openModal", "setButtonEnabled", "closeModal"]

export interface ClientSide {
  /** Hooks the client installed. */
  readonly hooks: ReadonlySet<ClientHook>
  /** fromWidget actions the client serves with its own handlers. */
  readonly customActions: ReadonlySet<string>
  /** The `supported_api_versions` answer: the engine's own, those the hooks serve, the client's extra. */
  readonly versions: ReadonlyArray<string>
  /**
   * Version-gated toWidget requests (`VERSION_GATED_REQUESTS`) the client sends without waiting
   * for the widget's versions or checking them: absent, none.
   */
  readonly ungatedRequests?: ReadonlyArray<string>
}

/** A client that serves nothing of its own. */
export const noClientSide: ClientSide = {
  hooks: new Set(),
  customActions: new Set(),
  versions: SUPPORTED_API_VERSIONS
}

/** fromWidget actions served by a hook, stable and unstable names (MSC2790's are unprefixed: its version covers them). */
export const HOOK_ACTIONS: ReadonlyMap<string, ClientHook> = new Map<string, ClientHook>([
  ["navigate", "navigate"],
  ["org.matrix.msc2931.navigate", "navigate"],
  ["set_always_on_screen", "setAlwaysOnScreen"],
  // MSC2764 names the sticker action after its capability.
  ["m.sticker", "sendSticker"],
  ["open_modal", "openModal"],
  ["set_button_enabled", "setButtonEnabled"],
  ["close_modal", "closeModal"]
])

/** Versions advertised exactly when every hook their actions need is installed. */
export const HOOK_VERSIONS: ReadonlyArray<{ readonly version: string; readonly hooks: ReadonlyArray<ClientHook> }> = [
  { version: "org.matrix.msc2931", hooks: ["navigate"] },
  { version: "org.matrix.msc2790", hooks: ["openModal", "setButtonEnabled", "closeModal"] }
]

type ClientCapabilityTag = "AlwaysOnScreen" | "Sticker" | "Navigate" | "Modals"

/** The hook that serves each client-side capability (MSC2790: only `open_modal` needs `m.modals`). */
const capabilityHooks: Readonly<Record<ClientCapabilityTag, ClientHook>> = {
  AlwaysOnScreen: "setAlwaysOnScreen",
  Sticker: "sendSticker",
  Navigate: "navigate",
  Modals: "openModal"
}

/** The hook a client-side capability needs, or undefined for capabilities the engine serves or never serves. */
export const hookFor = (capability: Capability): ClientHook | undefined =>
  capability._tag in capabilityHooks ? capabilityHooks[capability._tag as ClientCapabilityTag] : undefined
