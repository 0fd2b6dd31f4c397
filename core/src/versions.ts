/**
 * The Widget API versions this engine implements on its own, as answered to
 * `supported_api_versions`. Only versions whose every action is served appear here: a widget uses
 * this list to decide what it may ask for, so advertising something half-built would be a lie.
 * Versions the client's hooks serve (`HOOK_VERSIONS`: MSC2931, MSC2790) and the client's own are
 * added per engine, by `resolveClientSide`.
 */
export const SUPPORTED_API_VERSIONS: ReadonlyArray<string> = [
  "0.0.1",
  "0.0.2",
  "org.matrix.msc2762", // send/receive/read events
  "org.matrix.msc2762_update_state", // toWidget update_state (how matrix-widget-api names it)
  "org.matrix.msc2871", // notify_capabilities
  "org.matrix.msc2876", // read_events
  "org.matrix.msc2974", // request_capabilities
  "org.matrix.msc3819", // to-device messages
  "town.robin.msc3846", // TURN servers
  "org.matrix.msc3869", // read_relations
  "org.matrix.msc3973", // user_directory_search
  "org.matrix.msc4039", // get_media_config, upload_file, download_file
  "org.matrix.msc4515", // get_rtc_transports
  "org.matrix.msc4533" // rtc_livekit_get_token, rtc_livekit_delegate_delayed_leave
]

/** Versions a widget may announce that mean "I understand toWidget update_state". */
export const UPDATE_STATE_VERSIONS: ReadonlyArray<string> = ["org.matrix.msc2762_update_state"]
