/**
 * Side-by-side scenarios of negotiation and the room actions: send_event (delayed too),
 * update_delayed_event, read_events, read_relations.
 */
import { VIEWED_ROOM } from "./widget-pair.ts"
import { ROOM, ask, event, receiveMessage, sendMessage, type Scenario } from "./side-by-side.ts"

export const roomScenarios: ReadonlyArray<Scenario> = [
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
  }
]
