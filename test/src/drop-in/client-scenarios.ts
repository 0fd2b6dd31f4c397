/**
 * Side-by-side scenarios of everything else a widget and its client exchange: user directory,
 * media, to-device, what the client feeds in, navigation, OpenID, TURN, action listeners, and
 * requests the hosts must refuse or survive.
 */
import { HOST_ORIGIN, VIEWED_ROOM, WIDGET_ID, WIDGET_ORIGIN } from "./widget-pair.ts"
import { FakeWindow } from "../../bench/fake-window.ts"
import { ask, event, hostCall, receiveMessage, sendMessage, topic, type Scenario, withFileRead } from "./side-by-side.ts"

export const clientScenarios: ReadonlyArray<Scenario> = [
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
