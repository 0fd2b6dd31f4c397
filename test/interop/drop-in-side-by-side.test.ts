/**
 * The same scripted widget sessions, with matrix-widget-api's real `WidgetApi` on the widget
 * side, against the reference `ClientWidgetApi` and against the drop-in
 * (`@widgethost/client-widget-api`), each with its own copy of the same recording driver. Each
 * session yields named observations (what the widget got back, what toWidget requests reached it,
 * how many replies each request got, what the driver was asked); the two hosts must agree on every
 * one, except those a scenario lists under `intended`, each naming an entry of
 * {@link INTENDED_DIFFERENCES} and saying what the drop-in does instead.
 *
 * Normalised before comparing, and so not counted as differences: error wording (the widget gets
 * an error either way; the engine words its own and adds a `code`), request ids, the order of
 * toWidget requests of different actions, and when the host asks the widget's versions (toWidget
 * `supported_api_versions`: the reference asks before each read_events and state push, the engine
 * once, when state delivery depends on the answer; a widget answers either from the same list).
 */
import { afterEach, assert, beforeAll, describe, it, vi } from "vitest"
import { type Answer, HOST_ORIGIN, type HostKind, type PairOptions, VIEWED_ROOM, WIDGET_ID, WIDGET_ORIGIN, WidgetPair } from "../src/drop-in/widget-pair.ts"
import { FakeWindow } from "../bench/fake-window.ts"
import { polyfillForWidgetApi } from "../src/drop-in/widget-pair.ts"

/**
 * Every way the drop-in answers differently from the reference, and why. Each is a bug of the
 * reference (or a contract it leaves to chance) that the engine fixes.
 */
const INTENDED_DIFFERENCES = {
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

type DifferenceId = keyof typeof INTENDED_DIFFERENCES
type Observations = Record<string, unknown>

interface Scenario {
  readonly name: string
  readonly options?: PairOptions
  readonly run: (pair: WidgetPair) => Promise<Observations>
  /** Observations where the drop-in intentionally differs: which difference, and what it yields instead. */
  readonly intended?: Readonly<Record<string, { readonly id: DifferenceId; readonly dropIn: unknown }>>
}

/** An answer as compared: the response, or that it was an error (with its `matrix_api_error`, if any). */
const shape = (answer: Answer): unknown => {
  if (answer === "no answer") return "no answer"
  if ("response" in answer) return { response: answer.response }
  const detail = answer.error["matrix_api_error"]
  return detail === undefined ? "error" : { error: { matrix_api_error: detail } }
}

const ask = async (pair: WidgetPair, action: string, data: Record<string, unknown>) => shape(await pair.ask(action, data))

/** How one of the host's own calls ended: its value, or that it rejected (wording aside). */
const hostCall = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    (value) => ({ resolved: value ?? null }),
    () => "rejected"
  )

/** A download's answer with a Blob `file` read out (JSON shows a Blob as `{}`), to compare its bytes. */
const withFileRead = async (answer: unknown): Promise<unknown> => {
  const file = (answer as { response?: { file?: unknown } }).response?.file
  return file instanceof Blob ? { response: { file: { blob: await file.text(), type: file.type } } } : answer
}

/** toWidget requests by action, each action's in order (data only). */
const toWidgetByAction = (pair: WidgetPair): Record<string, unknown[]> => {
  const out: Record<string, unknown[]> = {}
  for (const [action, data] of pair.toWidget()) if (action !== "supported_api_versions") (out[action] ??= []).push(data)
  return out
}

const ROOM = "!room:example.org"
const sendMessage = "org.matrix.msc2762.send.event:m.room.message"
const receiveMessage = "org.matrix.msc2762.receive.event:m.room.message"
const event = (overrides: Record<string, unknown> = {}) => ({
  type: "m.room.message",
  sender: "@bob:example.org",
  content: { msgtype: "m.text", body: "hi" },
  origin_server_ts: 1,
  event_id: "$e1",
  room_id: VIEWED_ROOM,
  unsigned: {},
  ...overrides
})
const topic = (id: string) => ({ type: "m.room.topic", sender: "@bob:example.org", content: { topic: id }, origin_server_ts: 2, event_id: id, room_id: VIEWED_ROOM, state_key: "", unsigned: {} })

const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "negotiation: the driver approves, the widget is told, the host says ready",
    options: { capabilities: [sendMessage, receiveMessage, "io.element.requires_client"] },
    run: async (pair) => ({
      events: pair.hostEvents,
      approved: pair.approvedOnWidget(),
      hasCapability: [pair.host.hasCapability(sendMessage), pair.host.hasCapability("m.sticker")],
      canSend: [pair.host.canSendRoomEvent("m.room.message"), pair.host.canSendRoomEvent("m.room.topic")]
    })
  },
  {
    name: "negotiation: the driver approves part",
    options: { capabilities: [sendMessage, receiveMessage], driver: { approve: () => [receiveMessage] } },
    run: async (pair) => ({ approved: pair.approvedOnWidget(), canReceive: pair.host.canReceiveRoomEvent("m.room.message"), canSend: pair.host.canSendRoomEvent("m.room.message") })
  },
  {
    name: "send_event to a named room with its timeline",
    options: { capabilities: [sendMessage, `org.matrix.msc2762.timeline:${ROOM}`] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: { body: "x" }, room_id: ROOM }) })
  },
  {
    name: "send_event to the viewed room",
    options: { capabilities: [sendMessage] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: { body: "x" } }) }),
    intended: { driver: { id: "room-resolved", dropIn: [["validateCapabilities", [sendMessage]], ["sendEvent", "m.room.message", { body: "x" }, null, VIEWED_ROOM]] } }
  },
  {
    name: "send_event state event to a named room",
    options: { capabilities: ["org.matrix.msc2762.send.state_event:m.room.topic", `org.matrix.msc2762.timeline:${ROOM}`] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.topic", state_key: "", content: { topic: "t" }, room_id: ROOM }) })
  },
  {
    name: "send_event without the capability: refused, the driver not asked",
    options: { capabilities: [receiveMessage] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: {}, room_id: ROOM }) })
  },
  {
    name: "send_event to a room without its timeline: refused",
    options: { capabilities: [sendMessage] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: {}, room_id: "!other:example.org" }) })
  },
  {
    name: "delayed send_event without the delayed-event capability: refused",
    options: { capabilities: [sendMessage, `org.matrix.msc2762.timeline:${ROOM}`] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: {}, room_id: ROOM, delay: 5000 }) })
  },
  {
    name: "delayed send_event with the capability",
    options: { capabilities: [sendMessage, `org.matrix.msc2762.timeline:${ROOM}`, "org.matrix.msc4157.send.delayed_event"] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: {}, room_id: ROOM, delay: 5000 }) })
  },
  {
    name: "delayed send_event with a parent_delay_id (1.19 driver)",
    options: { capabilities: [sendMessage, `org.matrix.msc2762.timeline:${ROOM}`, "org.matrix.msc4157.send.delayed_event"] },
    run: async (pair) => ({ answer: await ask(pair, "send_event", { type: "m.room.message", content: {}, room_id: ROOM, delay: 5000, parent_delay_id: "p" }) }),
    intended: {
      answer: { id: "parent-delay-id", dropIn: "error" },
      driver: { id: "parent-delay-id", dropIn: [["validateCapabilities", [sendMessage, "org.matrix.msc4157.send.delayed_event", `org.matrix.msc2762.timeline:${ROOM}`].sort()]] }
    }
  },
  {
    name: "update_delayed_event: cancel, restart, send",
    options: { capabilities: ["org.matrix.msc4157.update_delayed_event"] },
    run: async (pair) => ({
      cancel: await ask(pair, "org.matrix.msc4157.update_delayed_event", { delay_id: "d1", action: "cancel" }),
      restart: await ask(pair, "org.matrix.msc4157.update_delayed_event", { delay_id: "d2", action: "restart" }),
      send: await ask(pair, "org.matrix.msc4157.update_delayed_event", { delay_id: "d3", action: "send" })
    })
  },
  {
    name: "update_delayed_event without the capability: refused",
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc4157.update_delayed_event", { delay_id: "d1", action: "cancel" }) })
  },
  {
    name: "read_events: message events of the viewed room",
    options: { capabilities: [receiveMessage], driver: { readRoomTimeline: async () => [event()] } },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2876.read_events", { type: "m.room.message", limit: 5 }) })
  },
  {
    name: "read_events without a limit",
    options: { capabilities: [receiveMessage], driver: { readRoomTimeline: async () => [event()] } },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2876.read_events", { type: "m.room.message" }) }),
    intended: { driver: { id: "read-limit", dropIn: [["validateCapabilities", [receiveMessage]], ["readRoomTimeline", VIEWED_ROOM, "m.room.message", null, null, 100, null]] } }
  },
  {
    name: "read_events without the capability: refused",
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2876.read_events", { type: "net.example.test", state_key: true }) })
  },
  {
    name: "read_events with no viewed room",
    options: { capabilities: ["org.matrix.msc2762.receive.state_event:net.example.test"], viewedRoom: null },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2876.read_events", { type: "net.example.test", state_key: true }) }),
    intended: {
      answer: { id: "no-viewed-room", dropIn: "error" },
      toWidget: { id: "initial-state", dropIn: "update_state empty" }
    }
  },
  {
    name: "read_relations: the driver's chunk, filtered by capability",
    options: {
      capabilities: [receiveMessage, `org.matrix.msc2762.timeline:${VIEWED_ROOM}`],
      driver: { readEventRelations: async () => ({ chunk: [event(), event({ type: "m.reaction", event_id: "$r" })], nextBatch: "n" }) }
    },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3869.read_relations", { event_id: "$parent", room_id: VIEWED_ROOM, limit: 10 }) })
  },
  {
    name: "read_relations without a limit",
    options: { capabilities: [receiveMessage, `org.matrix.msc2762.timeline:${VIEWED_ROOM}`] },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3869.read_relations", { event_id: "$parent", room_id: VIEWED_ROOM }) }),
    intended: {
      driver: { id: "read-limit", dropIn: [["validateCapabilities", [receiveMessage, `org.matrix.msc2762.timeline:${VIEWED_ROOM}`]], ["readEventRelations", "$parent", VIEWED_ROOM, null, null, null, null, 100, null]] }
    }
  },
  {
    name: "read_relations in the viewed room without naming it",
    options: { capabilities: [receiveMessage] },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3869.read_relations", { event_id: "$parent", limit: 10 }) }),
    intended: { driver: { id: "room-resolved", dropIn: [["validateCapabilities", [receiveMessage]], ["readEventRelations", "$parent", VIEWED_ROOM, null, null, null, null, 10, null]] } }
  },
  {
    name: "read_relations naming the viewed room, without its timeline",
    options: { capabilities: [receiveMessage] },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3869.read_relations", { event_id: "$parent", room_id: VIEWED_ROOM, limit: 10 }) }),
    intended: {
      answer: { id: "viewed-room", dropIn: { response: { chunk: [] } } },
      driver: { id: "viewed-room", dropIn: [["validateCapabilities", [receiveMessage]], ["readEventRelations", "$parent", VIEWED_ROOM, null, null, null, null, 10, null]] }
    }
  },
  {
    name: "a widget asking for no capabilities",
    options: { capabilities: [] },
    run: async (pair) => ({ approved: pair.approvedOnWidget(), events: pair.hostEvents }),
    intended: { driver: { id: "no-empty-prompt", dropIn: [] } }
  },
  {
    name: "read_relations: the driver fails, processError expresses a matrix_api_error",
    options: {
      capabilities: [receiveMessage, `org.matrix.msc2762.timeline:${VIEWED_ROOM}`],
      driver: {
        readEventRelations: () => Promise.reject(new Error("M_FORBIDDEN")),
        processError: () => ({ matrix_api_error: { http_status: 403, http_headers: {}, url: "https://hs/relations", response: { errcode: "M_FORBIDDEN", error: "no" } } })
      }
    },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3869.read_relations", { event_id: "$parent", room_id: VIEWED_ROOM, limit: 10 }) })
  },
  {
    name: "user_directory_search: results in the wire's names",
    options: { capabilities: ["org.matrix.msc3973.user_directory_search"], driver: { searchUserDirectory: async () => ({ limited: true, results: [{ userId: "@a:x", displayName: "A", avatarUrl: "mxc://a" }, { userId: "@b:x" }] }) } },
    run: async (pair) => ({
      found: await ask(pair, "org.matrix.msc3973.user_directory_search", { search_term: "a", limit: 5 }),
      empty: await ask(pair, "org.matrix.msc3973.user_directory_search", { search_term: "" }),
      negative: await ask(pair, "org.matrix.msc3973.user_directory_search", { search_term: "a", limit: -1 }),
      missing: await ask(pair, "org.matrix.msc3973.user_directory_search", {})
    })
  },
  {
    name: "user_directory_search without the capability: refused",
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc3973.user_directory_search", { search_term: "a" }) })
  },
  {
    name: "MSC4039 media: config, upload, download with the capabilities",
    options: { capabilities: ["org.matrix.msc4039.upload_file", "org.matrix.msc4039.download_file"] },
    run: async (pair) => ({
      config: await ask(pair, "org.matrix.msc4039.get_media_config", {}),
      upload: await ask(pair, "org.matrix.msc4039.upload_file", { file: "data" }),
      download: await withFileRead(await ask(pair, "org.matrix.msc4039.download_file", { content_uri: "mxc://example.org/f" }))
    }),
    intended: {
      download: { id: "file-as-blob", dropIn: { response: { file: { blob: "file-data", type: "" } } } },
      driver: {
        id: "upload-checked",
        dropIn: [
          ["validateCapabilities", ["org.matrix.msc4039.download_file", "org.matrix.msc4039.upload_file"]],
          ["getMediaConfig"],
          ["getMediaConfig"],
          ["uploadFile", { 0: 100, 1: 97, 2: 116, 3: 97 }],
          ["downloadFile", "mxc://example.org/f"]
        ]
      }
    }
  },
  {
    name: "MSC4039 media without the capabilities: refused",
    run: async (pair) => ({ config: await ask(pair, "org.matrix.msc4039.get_media_config", {}), upload: await ask(pair, "org.matrix.msc4039.upload_file", { file: "data" }) })
  },
  {
    name: "send_to_device with and without the capability",
    options: { capabilities: ["org.matrix.msc3819.send.to_device:org.example.ping"] },
    run: async (pair) => ({
      allowed: await ask(pair, "send_to_device", { type: "org.example.ping", encrypted: false, messages: { "@b:x": { DEV: { n: 1 } } } }),
      refused: await ask(pair, "send_to_device", { type: "org.example.other", encrypted: false, messages: { "@b:x": { DEV: { n: 1 } } } })
    })
  },
  {
    name: "feedEvent: what the widget may receive reaches it",
    options: { capabilities: [receiveMessage] },
    run: async (pair) => {
      await pair.host.feedEvent(event())
      await pair.host.feedEvent(event({ type: "m.reaction", event_id: "$r" }))
      await pair.host.feedEvent(event({ room_id: "!elsewhere:example.org", event_id: "$x" }))
      await pair.settle()
      return {}
    }
  },
  {
    name: "feedToDevice: what the widget may receive reaches it",
    options: { capabilities: ["org.matrix.msc3819.receive.to_device:org.example.ping"] },
    run: async (pair) => {
      await pair.host.feedToDevice({ type: "org.example.ping", sender: "@b:x", content: { n: 1 } }, true)
      await pair.host.feedToDevice({ type: "org.example.other", sender: "@b:x", content: { n: 2 } }, false)
      await pair.settle()
      return {}
    }
  },
  {
    name: "feedEvent and feedStateUpdate of one timeline state event",
    options: { capabilities: ["org.matrix.msc2762.receive.state_event:m.room.topic"] },
    run: async (pair) => {
      await pair.settle()
      void pair.host.feedEvent(topic("$t1"))
      void pair.host.feedStateUpdate(topic("$t1"))
      await pair.settle()
      return {}
    },
    intended: { toWidget: { id: "state-once", dropIn: "update_state once" } }
  },
  {
    name: "navigate with a matrix.to URI",
    options: { capabilities: ["org.matrix.msc2931.navigate"] },
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2931.navigate", { uri: "https://matrix.to/#/#room:example.org" }) })
  },
  {
    name: "navigate without the capability: refused",
    run: async (pair) => ({ answer: await ask(pair, "org.matrix.msc2931.navigate", { uri: "https://matrix.to/#/#room:example.org" }) })
  },
  {
    name: "get_openid: the driver allows at once",
    run: async (pair) => ({ answer: await ask(pair, "get_openid", {}) }),
    intended: {
      answer: { id: "openid-flow", dropIn: { response: { state: "request" } } },
      toWidget: { id: "openid-flow", dropIn: "openid_credentials allowed" }
    }
  },
  {
    name: "TURN servers: watch, the first credentials, unwatch",
    options: { capabilities: ["town.robin.msc3846.turn_servers"] },
    run: async (pair) => ({
      watch: await ask(pair, "watch_turn_servers", {}),
      unwatch: await ask(pair, "unwatch_turn_servers", {})
    })
  },
  {
    name: "an action listener takes a custom action over and replies",
    run: async (pair) => {
      pair.host.on("action:io.element.join", (ev: CustomEvent<{ requestId: string }>) => {
        ev.preventDefault()
        pair.host.transport.reply(ev.detail as never, { joined: true })
      })
      return { answer: await ask(pair, "io.element.join", {}) }
    }
  },
  {
    name: "an action listener replies without preventDefault",
    run: async (pair) => {
      pair.host.on("action:io.element.join", (ev: CustomEvent<{ requestId: string }>) => pair.host.transport.reply(ev.detail as never, { joined: true }))
      return { answer: await ask(pair, "io.element.join", {}) }
    },
    intended: {
      answer: { id: "double-reply", dropIn: "error" },
      replies: { id: "double-reply", dropIn: { "io.element.join": [1], supported_api_versions: [1, 1] } }
    }
  },
  {
    name: "an unknown action: refused",
    run: async (pair) => ({ answer: await ask(pair, "org.example.nothing", {}) })
  },
  {
    name: "another window claims the widget's id",
    options: { capabilities: [sendMessage] },
    run: async (pair) => {
      const impostor = new FakeWindow(WIDGET_ORIGIN, pair.hostWindow)
      impostor.parentProxy().postMessage({ api: "fromWidget", widgetId: WIDGET_ID, requestId: "spoof", action: "send_event", data: { type: "m.room.message", content: { body: "spoofed" } } }, HOST_ORIGIN)
      await pair.settle()
      return {}
    },
    intended: {
      driver: { id: "source-check", dropIn: [["validateCapabilities", [sendMessage]]] },
      replies: { id: "source-check", dropIn: { supported_api_versions: [1, 1] } }
    }
  },
  {
    name: "stable capability and action names",
    options: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] },
    run: async (pair) => ({
      send: await ask(pair, "send_event", { type: "m.room.message", content: { body: "x" }, room_id: VIEWED_ROOM }),
      read: await ask(pair, "read_events", { type: "m.room.message", limit: 1 }),
      canSend: pair.host.canSendRoomEvent("m.room.message")
    }),
    intended: {
      send: { id: "stable-names", dropIn: { response: { room_id: VIEWED_ROOM, event_id: "$sent0" } } },
      read: { id: "stable-names", dropIn: { response: { events: [] } } },
      canSend: { id: "stable-names", dropIn: true },
      driver: {
        id: "stable-names",
        dropIn: [
          ["validateCapabilities", ["m.receive.event:m.room.message", "m.send.event:m.room.message"]],
          ["sendEvent", "m.room.message", { body: "x" }, null, VIEWED_ROOM],
          ["readRoomTimeline", VIEWED_ROOM, "m.room.message", null, null, 1, null]
        ]
      }
    }
  },
  {
    name: "seven request_capabilities in a burst",
    run: async (pair) => {
      const answers: unknown[] = []
      for (let i = 0; i < 7; i++) answers.push(await ask(pair, "org.matrix.msc2974.request_capabilities", { capabilities: [`org.matrix.msc2762.receive.event:org.example.t${i}`] }))
      return { answers }
    },
    intended: {
      answers: { id: "rate-limit", dropIn: [...Array.from({ length: 5 }, () => ({ response: {} })), "error", "error"] },
      driver: { id: "rate-limit", dropIn: "validateCapabilities 1 + 5" },
      toWidget: { id: "rate-limit", dropIn: "notify_capabilities 1 + 5" }
    }
  },
  {
    name: "MSC2790 modal notifications to a WidgetApi widget, which never announces org.matrix.msc2790",
    options: { handles: ["widget_config", "button_clicked", "close_modal"] },
    run: async (pair) => ({
      config: await hostCall(pair.host.sendWidgetConfig({ type: "m.custom", url: "https://modal.example.org/", name: "Modal" })),
      clicked: await hostCall(pair.host.notifyModalWidgetButtonClicked("m.ok")),
      closed: await hostCall(pair.host.notifyModalWidgetClose({ "m.exited": true }))
    })
  },
  {
    name: "theme, language and visibility changes",
    options: { handles: ["theme_change", "language_change", "visibility"] },
    run: async (pair) => ({
      theme: await hostCall(pair.host.updateTheme({ name: "dark" })),
      language: await hostCall(pair.host.updateLanguage("fr")),
      visibility: await hostCall(pair.host.updateVisibility(false))
    })
  },
  {
    name: "getWidgetVersions: the widget's supported_api_versions answer",
    run: async (pair) => ({ versions: await pair.host.getWidgetVersions(), again: await pair.host.getWidgetVersions() })
  },
  {
    name: "takeScreenshot of a widget approved for screenshots",
    options: { capabilities: ["m.capability.screenshot"], handles: ["screenshot"] },
    run: async (pair) => ({ answer: await hostCall(pair.host.takeScreenshot()) })
  },
  {
    name: "takeScreenshot of a widget not approved for screenshots",
    options: { handles: ["screenshot"] },
    run: async (pair) => ({ answer: await hostCall(pair.host.takeScreenshot()) }),
    intended: {
      answer: { id: "screenshot-approved", dropIn: "rejected" },
      toWidget: { id: "screenshot-approved", dropIn: "no screenshot sent" }
    }
  },
  {
    name: "a request whose data is not an object",
    options: { capabilities: [sendMessage] },
    run: async (pair) => {
      pair.widgetWindow.parentProxy().postMessage({ api: "fromWidget", widgetId: WIDGET_ID, requestId: "bad", action: "send_event", data: null }, HOST_ORIGIN)
      await pair.settle()
      return { answered: pair.inbox.filter((m) => m["requestId"] === "bad").map((m) => ("error" in (m["response"] as object) ? "error" : "response")) }
    },
    intended: { answered: { id: "malformed", dropIn: ["error"] }, replies: { id: "malformed", dropIn: { supported_api_versions: [1, 1], send_event: [1] } } }
  }
]

/** How the drop-in's side of an intended difference is checked when it is a description rather than a value. */
const describedChecks: Record<string, (observed: unknown) => boolean> = {
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

const runScenario = async (kind: HostKind, scenario: Scenario): Promise<Observations> => {
  // Every widget asks for something (see "no-empty-prompt" for one that asks for nothing).
  const pair = new WidgetPair(kind, { handles: ["theme_change"], capabilities: ["io.element.requires_client"], ...scenario.options })
  pairs.push(pair)
  await pair.load()
  const observed = await scenario.run(pair)
  await pair.settle()
  return { ...observed, toWidget: toWidgetByAction(pair), replies: pair.repliesPerRequest(), driver: pair.driver.calls }
}

const pairs: WidgetPair[] = []
beforeAll(() => {
  polyfillForWidgetApi()
  // matrix-widget-api logs every capability grant and many refusals.
  for (const level of ["log", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(() => undefined)
})
afterEach(() => {
  for (const pair of pairs.splice(0)) pair.stop()
})

describe("drop-in side by side with matrix-widget-api's ClientWidgetApi", () => {
  it.each(scenarios)("$name", async (scenario) => {
    const reference = await runScenario("reference", scenario)
    const dropIn = await runScenario("drop-in", scenario)
    const keys = [...new Set([...Object.keys(reference), ...Object.keys(dropIn)])]
    const differing = keys.filter((key) => JSON.stringify(reference[key]) !== JSON.stringify(dropIn[key]))
    const intended = scenario.intended ?? {}
    for (const key of differing) {
      assert.isDefined(intended[key], `${key} differs and is not listed as intended:\n reference: ${JSON.stringify(reference[key])}\n drop-in:   ${JSON.stringify(dropIn[key])}`)
    }
    for (const [key, { id, dropIn: want }] of Object.entries(intended)) {
      const wantText = JSON.stringify(want)
      assert.include(differing, key, `${key} is listed as an intended difference (${id}) but both hosts agree: ${JSON.stringify(dropIn[key])}`)
      assert.isString(INTENDED_DIFFERENCES[id])
      const check = typeof want === "string" ? describedChecks[want] : undefined
      if (check !== undefined) assert.isTrue(check(dropIn[key]), `${key}: the drop-in should do ${wantText}, it did ${JSON.stringify(dropIn[key])}`)
      else assert.deepEqual(dropIn[key], want, `${key} (${id})`)
    }
  })

  it("every intended difference is exercised by some scenario", () => {
    const used = new Set(scenarios.flatMap((s) => Object.values(s.intended ?? {}).map((d) => d.id)))
    assert.sameMembers([...used], Object.keys(INTENDED_DIFFERENCES))
  })
})
