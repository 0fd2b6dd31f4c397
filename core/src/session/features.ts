/**
 * The optional session features (see `feature.ts`), one export each, so that a host importing
 * only some of them bundles only those. `allFeatures` is what `createEngine` serves by default.
 *
 * @example createLeanEngine({ homeserver, features: [toDeviceFeature, delayedEventsFeature] })
 */
import {
  clientActionsDescriptions,
  delayedEventsDescriptions,
  mediaDescriptions,
  roomAccountDataDescriptions,
  rtcDescriptions,
  toDeviceDescriptions,
  userDirectoryDescriptions
} from "../capability-description.ts"
import { customActionProblem, hookVersionProblem } from "../client-offer.ts"
import { HOOK_VERSIONS } from "../client-side.ts"
import { clientHookProblems, hookCall, installedHooks, runClientCall } from "../client-hooks.ts"
import { openIdPrompt } from "../openid-approver.ts"
import { clientHandler, onClientAnswered, sweepClientCalls, withdrawClientCalls } from "./client-calls.ts"
import { updateDelayedEvent } from "./delayed-events.ts"
import { portCall } from "./port-call.ts"
import type { SessionFeature } from "./feature.ts"
import { downloadFile, getMediaConfig, onMedia, onUploadSizeCheck, uploadFile } from "./media.ts"
import { getOpenId, onOpenIdDecided, onOpenIdToken } from "./openid.ts"
import { onRelations, readRelations } from "./relations.ts"
import { onAccountDataPart, onAccountDataRooms, readRoomAccountData } from "./room-account-data.ts"
import { rtcLivekit } from "./rtc-livekit.ts"
import { getRtcTransports } from "./rtc-transports.ts"
import { deliverToDevice, sendToDevice } from "./to-device.ts"
import { userDirectorySearch } from "./user-directory.ts"

/** MSC3819: `send_to_device` both ways, `m.send.to_device:*` / `m.receive.to_device:*`. */
export const toDeviceFeature: SessionFeature = {
  name: "toDevice",
  descriptions: toDeviceDescriptions,
  actions: { send_to_device: sendToDevice },
  calls: { SendToDevice: /* @__PURE__ */ portCall("sendToDevice", "Done", (port, request) => port.sendToDevice(request)) },
  toDevice: deliverToDevice
}

/** MSC4157: `delay` on `send_event`, `update_delayed_event`, `m.send.delayed_event` / `m.update_delayed_event`. */
export const delayedEventsFeature: SessionFeature = {
  name: "delayedEvents",
  descriptions: delayedEventsDescriptions,
  actions: { update_delayed_event: updateDelayedEvent, "org.matrix.msc4157.update_delayed_event": updateDelayedEvent },
  calls: { UpdateDelayedEvent: /* @__PURE__ */ portCall("updateDelayedEvent", "Done", (port, request) => port.updateDelayedEvent(request)) }
}

/** MSC3869: `read_relations`, filtered by the widget's receive capabilities. */
export const relationsFeature: SessionFeature = {
  name: "relations",
  actions: { read_relations: readRelations, "org.matrix.msc3869.read_relations": readRelations },
  answers: { Relations: onRelations },
  calls: { ReadRelations: /* @__PURE__ */ portCall("readRelations", "Relations", (port, request) => port.readRelations(request.query)) }
}

/** MSC3973: `user_directory_search`, `m.user_directory_search`. */
export const userDirectoryFeature: SessionFeature = {
  name: "userDirectory",
  descriptions: userDirectoryDescriptions,
  actions: { user_directory_search: userDirectorySearch, "org.matrix.msc3973.user_directory_search": userDirectorySearch },
  calls: { UserDirectorySearch: /* @__PURE__ */ portCall("userDirectorySearch", "Body", (port, request) => port.userDirectorySearch(request)) }
}

/** MSC4039: `get_media_config`, `upload_file`, `download_file`, `m.upload_file` / `m.download_file`. */
export const mediaFeature: SessionFeature = {
  name: "media",
  descriptions: mediaDescriptions,
  actions: {
    get_media_config: getMediaConfig,
    "org.matrix.msc4039.get_media_config": getMediaConfig,
    upload_file: uploadFile,
    "org.matrix.msc4039.upload_file": uploadFile,
    download_file: downloadFile,
    "org.matrix.msc4039.download_file": downloadFile
  },
  answers: {
    UploadSizeCheck: (s, pending, result) => onUploadSizeCheck(s, pending.raw, pending.file, result),
    Media: (s, pending, result) => onMedia(s, pending.raw, pending.answer, result)
  },
  calls: {
    MediaConfig: /* @__PURE__ */ portCall("mediaConfig", "Body", (port) => port.mediaConfig()),
    UploadFile: /* @__PURE__ */ portCall("uploadFile", "Uploaded", (port, request) => port.uploadFile(request)),
    DownloadFile: /* @__PURE__ */ portCall("downloadFile", "Downloaded", (port, request) => port.downloadFile(request))
  }
}

/** MSC1960: `get_openid` (MSC1960 was merged into the draft spec unprefixed: there is no unstable name). */
export const openIdFeature: SessionFeature = {
  name: "openId",
  actions: { get_openid: getOpenId },
  answers: { OpenIdToken: (s, pending, result) => onOpenIdToken(s, pending.raw, pending.waiting, result) },
  calls: { RequestOpenIdToken: /* @__PURE__ */ portCall("requestOpenIdToken", "OpenIdToken", (port) => port.requestOpenIdToken()) },
  openIdDecided: onOpenIdDecided,
  openIdPrompt
}

/** `com.beeper.read_room_account_data` (matrix-widget-api's name; no proposal defines another). */
export const roomAccountDataFeature: SessionFeature = {
  name: "roomAccountData",
  descriptions: roomAccountDataDescriptions,
  actions: { "com.beeper.read_room_account_data": readRoomAccountData },
  answers: {
    AccountDataRooms: (s, pending, result) => onAccountDataRooms(s, pending.gather, result),
    AccountDataPart: (s, pending, result) => onAccountDataPart(s, pending.gather, pending.roomIndex, result)
  },
  calls: { ReadRoomAccountData: /* @__PURE__ */ portCall("readRoomAccountData", "AccountData", (port, request) => port.readRoomAccountData(request.roomId, request.type)) }
}

/** MatrixRTC for call widgets: MSC4515 `get_rtc_transports` and MSC4533 `rtc_livekit_*`. */
export const rtcFeature: SessionFeature = {
  name: "rtc",
  descriptions: rtcDescriptions,
  actions: {
    get_rtc_transports: getRtcTransports,
    "org.matrix.msc4515.get_rtc_transports": getRtcTransports,
    rtc_livekit_get_token: /* @__PURE__ */ rtcLivekit("get_token"),
    "org.matrix.msc4533.rtc_livekit_get_token": /* @__PURE__ */ rtcLivekit("get_token"),
    rtc_livekit_delegate_delayed_leave: /* @__PURE__ */ rtcLivekit("delegate_delayed_leave"),
    "org.matrix.msc4533.rtc_livekit_delegate_delayed_leave": /* @__PURE__ */ rtcLivekit("delegate_delayed_leave")
  },
  calls: {
    RtcTransports: /* @__PURE__ */ portCall("rtcTransports", "Body", (port) => port.rtcTransports()),
    RtcLivekit: /* @__PURE__ */ portCall("rtcLivekit", "Body", (port, request) => port.rtcLivekit(request))
  }
}

/**
 * The client-side actions, served by the client's hooks and custom actions (`EngineOptions.hooks`,
 * `customActions`): MSC2764 `set_always_on_screen` and `m.sticker` (`m.always_on_screen`,
 * `m.sticker`), MSC2931 `navigate` (`m.navigate`), MSC2790 `open_modal`, `set_button_enabled`,
 * `close_modal` (`m.modals`). Its actions are not in `actions`: each is served only when its hook
 * is installed (`HOOK_ACTIONS`).
 */
export const clientActionsFeature: SessionFeature = {
  name: "clientActions",
  descriptions: clientActionsDescriptions,
  actions: {},
  clientActions: {
    handler: clientHandler,
    answered: onClientAnswered,
    sweep: sweepClientCalls,
    withdraw: withdrawClientCalls,
    problems: clientHookProblems,
    installed: installedHooks,
    hookCall,
    run: runClientCall,
    // The checks of the client's offer that hooks and custom actions need.
    customActionProblem,
    versionProblem: hookVersionProblem,
    hookVersions: HOOK_VERSIONS
  }
}

/** Every optional feature: what `createEngine` serves unless told otherwise. */
export const allFeatures: ReadonlyArray<SessionFeature> = [
  toDeviceFeature,
  delayedEventsFeature,
  relationsFeature,
  userDirectoryFeature,
  mediaFeature,
  openIdFeature,
  roomAccountDataFeature,
  rtcFeature,
  clientActionsFeature
]
