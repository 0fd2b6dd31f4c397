/**
 * Every way the drop-in answers differently from matrix-widget-api's reference ClientWidgetApi,
 * and how a described difference is checked (drop-in-side-by-side.test.ts).
 */

/**
 * Every way the drop-in answers differently from the reference, and why. Each is a bug of the
 * reference (or a contract it leaves to chance) that the engine fixes.
 */
export const INTENDED_DIFFERENCES = {
  "room-resolved":
    "The engine resolves the room a request acts in (the viewed room when the widget names none) and checks it before calling the driver, which is told that room. The reference passes null and the driver picks the viewed room later, which may no longer be the room the widget was checked for.",
  "parent-delay-id":
    "matrix-widget-api 1.19's WidgetDriver takes no parent_delay_id: the reference logs a warning and schedules an unparented event (a silent drop of part of the request). The drop-in refuses it, nothing sent, unless the driver takes the parent (Element Web's six-parameter sendDelayedEvent).",
  "read-limit":
    "read_events and read_relations without a limit: the engine asks the driver for at most limits.readEventsMaxLimit (100) events; the reference passes 0 (\"as many as possible\") or nothing, and lets one request pull a whole timeline.",
  "viewed-room":
    "read_relations naming the viewed room: the reference demands m.timeline for it (send_event and read_events do not); the engine treats the viewed room alike in every action.",
  "initial-state":
    "After state capabilities are granted, the engine always sends update_state, empty when nothing matches (no room viewed), so the widget knows the initial load is over; the reference sends nothing when it has no room to read.",
  "no-empty-prompt":
    "A widget asking for no capabilities: the reference still calls validateCapabilities with an empty set; the engine asks the driver only when there is something to decide.",
  "no-viewed-room":
    "read_events with no viewed room: the reference falls back to the deprecated readRoomEvents/readStateEvents with roomIds null (the driver decides where to read); the engine refuses, as it never reads a room it has not named and checked.",
  "state-once":
    "A state event the client feeds through both feedEvent and feedStateUpdate (Element Web does so for each timeline state event) reaches an update_state widget once, as update_state; the reference sends it twice (send_event, then update_state): a double notification.",
  "openid-flow":
    "get_openid: the engine answers `request` at once and sends the outcome in openid_credentials (MSC1960's asynchronous flow) however fast the driver decides; the reference answers `allowed` with the token inline when the driver decides synchronously. Both are valid MSC1960; WidgetApi handles either.",
  "double-reply":
    "An action listener that replies without preventDefault(): the reference answers the request twice (its own error, then the listener's reply); the drop-in drops the listener's reply, so the widget gets one answer.",
  "source-check":
    "A message from another window that claims the widget's id: the reference serves it (its transport checks neither event.source nor origin) and replies into the widget's frame; the drop-in's postMessage transport takes only the widget iframe's own window at the widget's origin.",
  "stable-names":
    "Stable names (MSC2762 m.send.event:…, m.receive.event:…, the stable read_events action): the reference knows only the unstable spellings, approving the capability but refusing to act on it; the engine honours both.",
  "rate-limit":
    "MSC2974 request_capabilities: the engine allows limits.capabilityRequests (5 a minute) and refuses the rest, so a widget cannot flood the user with prompts; the reference prompts for each.",
  "upload-checked":
    "upload_file: the engine asks the media config before each upload and refuses a file over m.upload.size before anything is sent (MSC4039's limit), and hands the driver the file as a Blob or bytes (a string widget file becomes its UTF-8 bytes); the reference uploads whatever it is given, however large, and passes the widget's value through.",
  "file-as-blob":
    "download_file over postMessage: the engine answers the file as a Blob with the bytes the driver gave (a Blob, bytes or a string), one shape for every driver; the reference passes the driver's value through as it is, so a widget gets whatever type its host's driver happened to return.",
  "screenshot-approved":
    "takeScreenshot of a widget not approved for m.capability.screenshot: the reference asks it anyway; the drop-in refuses, nothing sent, as MSC2764 lets a client ask only a widget approved for the capability (and warns that screenshots can be huge or not images). Element Web offers screenshots only where hasCapability says so, so its use is unchanged.",
  "malformed":
    "A request whose data is not an object makes the reference's handler throw: the widget gets no answer at all (a silent drop). The engine answers every request, with an error here."
} as const

export type DifferenceId = keyof typeof INTENDED_DIFFERENCES

/** How the drop-in's side of an intended difference is checked when it is a description rather than a value. */
export const describedChecks: Record<string, (observed: unknown) => boolean> = {
  "update_state once": (observed) => {
    const byAction = observed as Record<string, unknown[]>
    return byAction["send_event"] === undefined && (byAction["update_state"] ?? []).filter((d) => JSON.stringify(d).includes("$t1")).length === 1
  },
  "openid_credentials allowed": (observed) => {
    const creds = (observed as Record<string, Array<{ state?: string; access_token?: string }>>)["openid_credentials"] ?? []
    return creds.length === 1 && creds[0]!.state === "allowed" && creds[0]!.access_token === "token"
  },
  "no screenshot sent": (observed) => !("screenshot" in (observed as Record<string, unknown[]>)),
  "update_state empty": (observed) => JSON.stringify((observed as Record<string, unknown[]>)["update_state"]) === JSON.stringify([{ state: [] }]),
  "validateCapabilities 1 + 5": (observed) => (observed as Array<[string]>).filter(([method]) => method === "validateCapabilities").length === 6,
  "notify_capabilities 1 + 5": (observed) => ((observed as Record<string, unknown[]>)["notify_capabilities"] ?? []).length === 6
}
