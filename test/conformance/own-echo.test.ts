/**
 * Conformance: what a widget gets back of its own events. The homeserver echoes every event it
 * accepts to the account's sync (the in-memory port publishes it at once, the HTTP port when
 * `/sync` brings it), and the engine delivers it like anyone else's, by the receive rules:
 * - a message-like event it may receive comes back as toWidget `send_event` with the event id of
 *   its own answer (and the account as `sender`), exactly once;
 * - a state event it may receive comes back as `update_state` to a widget that announced
 *   `org.matrix.msc2762_update_state`, else as `send_event`;
 * - nothing comes back that it may not receive, nothing of a delayed event before it is sent,
 *   and nothing at all of a refused request.
 * The echo and the answer race (here the echo comes first; over HTTP usually the answer): a
 * widget matches them by `event_id`, so the order is not asserted.
 *
 * matrix-widget-api differs in one row: its host feeds every timeline event through `feedEvent`,
 * state events included, and room state changes through `feedStateUpdate` as well, so an
 * update_state widget gets its own state event twice there (`send_event` and `update_state`).
 * Here it gets it once, as the state change it is (see `deliverRoomEvent` in core).
 */
import type { WidgetMessage } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, ROOM } from "../src/index.ts"

const OTHER = "!other:localhost"
const UPDATE_STATE = ["0.0.2", "org.matrix.msc2762_update_state"]
const PLAIN = ["0.0.2"]

interface Row {
  readonly name: string
  readonly given: { readonly capabilities: ReadonlyArray<string>; readonly versions: ReadonlyArray<string> }
  readonly send: Record<string, unknown>
  /** The toWidget requests the send causes, as [action, type of the echoed event]; ids are checked against the answer. */
  readonly want: ReadonlyArray<readonly [action: "send_event" | "update_state", type: string]>
}

const MESSAGE = { type: "m.room.message", content: { msgtype: "m.text", body: "mine" } }
const STATE = { type: "org.example.board", state_key: "", content: { cells: [] } }

const rows: ReadonlyArray<Row> = [
  { name: "a message it may receive: send_event, once", given: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"], versions: PLAIN }, send: MESSAGE, want: [["send_event", "m.room.message"]] },
  { name: "a message it may only send: nothing", given: { capabilities: ["m.send.event:m.room.message"], versions: PLAIN }, send: MESSAGE, want: [] },
  { name: "a message its msgtype filter excludes: nothing", given: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message#m.notice"], versions: PLAIN }, send: MESSAGE, want: [] },
  {
    name: "a state event, update_state widget: update_state, once (matrix-widget-api: send_event too)",
    given: { capabilities: ["m.send.state_event:org.example.board", "m.receive.state_event:org.example.board"], versions: UPDATE_STATE },
    send: STATE,
    want: [["update_state", "org.example.board"]]
  },
  {
    name: "a state event, widget without update_state: send_event, once",
    given: { capabilities: ["m.send.state_event:org.example.board", "m.receive.state_event:org.example.board"], versions: PLAIN },
    send: STATE,
    want: [["send_event", "org.example.board"]]
  },
  {
    name: "a redaction it may receive: send_event of the m.room.redaction",
    given: { capabilities: ["m.send.event:m.room.redaction", "m.receive.event:m.room.redaction"], versions: PLAIN },
    send: { type: "m.room.redaction", content: { redacts: "$target" } },
    want: [["send_event", "m.room.redaction"]]
  },
  {
    name: "into another room granted by m.timeline: its echo from there",
    given: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message", `m.timeline:${OTHER}`], versions: PLAIN },
    send: { ...MESSAGE, room_id: OTHER },
    want: [["send_event", "m.room.message"]]
  },
  { name: "a delayed message: no echo before it is sent", given: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message", "m.send.delayed_event"], versions: PLAIN }, send: { ...MESSAGE, delay: 5000 }, want: [] },
  { name: "a refused send: no echo", given: { capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"], versions: PLAIN }, send: { ...MESSAGE, sticky_duration_ms: 1000 }, want: [] }
]

/** Negotiates and lets the initial state load (and its acks) settle, so only the send's effects remain. */
const settled = async (given: Row["given"]): Promise<Harness> => {
  const h = new Harness({ approver: approveAll })
  await h.ready(given.capabilities, given.versions)
  h.ackAll(given.capabilities, given.versions)
  await flush()
  h.take()
  return h
}

const echoedEvents = (request: WidgetMessage): ReadonlyArray<{ readonly event_id: string; readonly type: string; readonly sender: string; readonly room_id: string }> => {
  const data = request.data as { state?: ReadonlyArray<never> }
  return request.action === "update_state" ? (data.state ?? []) : [request.data as never]
}

describe("a widget's own events, echoed", () => {
  it.each(rows)("$name", async ({ given, send, want }) => {
    const h = await settled(given)
    const id = h.request("send_event", send)
    await flush()
    const out = h.take()
    const answers = out.filter((m) => m.api === "fromWidget" && m.requestId === id)
    expect(answers).toHaveLength(1)
    const answer = (answers[0] as { response: { event_id?: string; room_id?: string } }).response
    const pushed = Harness.requests(out)
    expect(pushed.map((m) => [m.action, ...echoedEvents(m).map((e) => e.type)])).toEqual(want.map(([action, type]) => [action, type]))
    for (const request of pushed) {
      // The echo is the event the answer named: same id, same room, the account as sender.
      expect(echoedEvents(request)).toEqual([expect.objectContaining({ event_id: answer.event_id, room_id: answer.room_id, sender: h.homeserver.userId })])
    }
  })

  it("the echo of a delayed event comes once it is sent, like anyone's", async () => {
    const h = await settled({ capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message", "m.send.delayed_event"], versions: PLAIN })
    h.request("send_event", { ...MESSAGE, delay: 5000 })
    await flush()
    h.take()
    // What the homeserver does when the delay runs out: the event enters the timeline.
    h.homeserver.inject({ ...MESSAGE, room_id: ROOM, sender: h.homeserver.userId })
    expect(Harness.requests(h.take()).map((m) => [m.action, (m.data as { sender: string }).sender])).toEqual([["send_event", h.homeserver.userId]])
  })
})
