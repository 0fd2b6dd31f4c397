/**
 * What the drop-in serves on the client's side of the engine, from the driver and from the
 * client's `action:` listeners.
 *
 * - MSC2931 `navigate` is the driver's `navigate` (the engine checks the capability and the URI).
 * - The other client-side actions (MSC2764 `set_always_on_screen` and `m.sticker`, MSC2790
 *   modals) are served, with the reference, by the client's own `action:<name>` listeners, which
 *   take the request over with `preventDefault()`. So their hooks are installed (the driver may
 *   approve their capabilities, as with the reference), and a request no listener took over is
 *   answered as the reference answers it: an unknown action.
 * - Proposals the engine does not serve itself (MSC4039 media, MSC4533 LiveKit) are custom
 *   actions calling the driver, gated by their capability as the reference gates them. One the
 *   engine serves (a later engine may serve media itself) is left to the engine.
 */
import { ENGINE_ACTIONS, type StickerRequest } from "@widgethost/core"
import type { ClientHooks, CustomAction, HookContext } from "@widgethost/engine"
import type { WidgetDriver } from "matrix-widget-api"
import { driverFailure } from "./driver-errors.ts"

const unknownAction = (context: HookContext): Promise<never> => Promise.reject(new Error(`Unknown or unsupported from-widget action: ${context.action}`))

/** The engine's client hooks for a driver. */
export const driverHooks = (driver: WidgetDriver): ClientHooks => ({
  navigate: async (uri) => {
    try {
      await driver.navigate(uri)
    } catch (error) {
      const failure = driverFailure(driver, error, "Error handling navigation")
      throw failure instanceof Error ? failure : new Error("Error handling navigation")
    }
  },
  setAlwaysOnScreen: (_value: boolean, context) => unknownAction(context),
  sendSticker: (_sticker: StickerRequest, context) => unknownAction(context),
  openModal: (_modal, context) => unknownAction(context),
  setButtonEnabled: (_button, _enabled, context) => unknownAction(context),
  closeModal: (_data, context) => unknownAction(context)
})

interface DriverAction {
  readonly actions: ReadonlyArray<string>
  /** Any of these approved lets the widget ask. */
  readonly capabilities: ReadonlyArray<string>
  /** The reference's words when the driver fails. */
  readonly words: string
  readonly run: (driver: WidgetDriver, data: Readonly<Record<string, unknown>>) => Promise<Readonly<Record<string, unknown>>>
}

const UPLOAD = "org.matrix.msc4039.upload_file"
const DOWNLOAD = "org.matrix.msc4039.download_file"
const LIVEKIT_TOKEN = "org.matrix.msc4533.rtc_livekit_get_token"
const LIVEKIT_LEAVE = "org.matrix.msc4533.rtc_livekit_delegate_delayed_leave"

const DRIVER_ACTIONS: ReadonlyArray<DriverAction> = [
  {
    actions: ["org.matrix.msc4039.get_media_config"],
    capabilities: [UPLOAD],
    words: "Unexpected error while getting the media configuration",
    run: async (driver) => ({ ...(await driver.getMediaConfig()) })
  },
  {
    actions: [UPLOAD],
    capabilities: [UPLOAD],
    words: "Unexpected error while uploading a file",
    run: async (driver, data) => ({ content_uri: (await driver.uploadFile(data["file"] as XMLHttpRequestBodyInit)).contentUri })
  },
  {
    actions: [DOWNLOAD],
    capabilities: [DOWNLOAD],
    words: "Unexpected error while downloading a file",
    run: async (driver, data) => {
      if (typeof data["content_uri"] !== "string") throw new TypeError("content_uri must be a string")
      return { file: (await driver.downloadFile(data["content_uri"])).file }
    }
  },
  {
    actions: [LIVEKIT_TOKEN],
    capabilities: [LIVEKIT_TOKEN],
    words: "Unexpected error while getting a LiveKit token",
    run: async (driver, data) => ({ ...(await driver.getRtcLivekitToken(data as never)) })
  },
  {
    actions: [LIVEKIT_LEAVE],
    capabilities: [LIVEKIT_LEAVE],
    words: "Unexpected error while delegating a LiveKit delayed leave",
    run: async (driver, data) => ({ ...(await driver.delegateRtcLivekitDelayedLeave(data as never)) })
  }
]

/** The versions these actions make true, advertised only when every action of one is served here. */
const DRIVER_VERSIONS: ReadonlyArray<{ readonly version: string; readonly actions: ReadonlyArray<string> }> = [
  { version: "org.matrix.msc4039", actions: ["org.matrix.msc4039.get_media_config", UPLOAD, DOWNLOAD] },
  { version: "org.matrix.msc4533", actions: [LIVEKIT_TOKEN, LIVEKIT_LEAVE] }
]

export interface DriverActions {
  readonly customActions: Readonly<Record<string, CustomAction>>
  readonly apiVersions: ReadonlyArray<string>
  /** Their capabilities, opaque to the engine: the driver decides them. */
  readonly capabilities: ReadonlyArray<string>
}

/** The custom actions that call the driver, skipping any the engine serves itself. */
export const driverActions = (driver: WidgetDriver): DriverActions => {
  const customActions: Record<string, CustomAction> = {}
  const capabilities = new Set<string>()
  for (const served of DRIVER_ACTIONS) {
    for (const action of served.actions) {
      if (ENGINE_ACTIONS.has(action)) continue
      for (const capability of served.capabilities) capabilities.add(capability)
      customActions[action] = async (data, context) => {
        if (!served.capabilities.some((c) => context.approved.includes(c))) throw new Error("Missing capability")
        try {
          return await served.run(driver, data)
        } catch (error) {
          // A custom action's refusal carries a message only: processError's matrix_api_error is not passed on.
          throw new Error(served.words, { cause: driverFailure(driver, error, served.words) })
        }
      }
    }
  }
  const apiVersions = DRIVER_VERSIONS.filter((v) => v.actions.every((action) => action in customActions)).map((v) => v.version)
  return { customActions, apiVersions, capabilities: [...capabilities] }
}
