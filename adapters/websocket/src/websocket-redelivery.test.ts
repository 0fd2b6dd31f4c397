/**
 * Redelivery across reconnects, over real sockets: a toWidget request written to a link that
 * dropped before the widget answered goes again, in order and ahead of the backlog, on the
 * connection that resumes (or replaces) the session; an answer settles it for good; past
 * `outboundQueueLimit` unanswered the oldest are forgotten, counted and announced in the gap
 * notice. The widget dedupes by request id (widget-client does).
 */
import { afterEach, assert, describe, it, vi } from "vitest"
import { WebSocket } from "ws"
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import { TRANSPORT_GAP_ACTION, type WebsocketTransport, type WebsocketTransportOptions } from "./transport-types.ts"
import { startWebsocketTransport } from "./websocket.ts"

/** A session that records what the widget sent it and what the transport told it. */
interface Recorded {
  readonly session: WidgetSession
  readonly send: (message: WidgetMessage) => void
  readonly received: Array<Record<string, unknown>>
  readonly events: Array<string>
}

const recordingSession = (widgetId: string, send: (message: WidgetMessage) => void): Recorded => {
  const received: Array<Record<string, unknown>> = []
  const events: Array<string> = []
  const session: WidgetSession = {
    widgetId,
    receive: (raw) => void received.push(raw as Record<string, unknown>),
    frameLoaded: () => undefined,
    transportDown: () => void events.push("down"),
    transportUp: () => void events.push("up"),
    close: () => void events.push("close"),
    onClose: () => () => undefined
  }
  return { session, send, received, events }
}

const request = (n: number): WidgetMessage => ({ api: "toWidget", widgetId: "w", requestId: `host-${n}`, action: "send_event", data: { n } })

let transports: Array<WebsocketTransport> = []
let sockets: Array<WebSocket> = []
afterEach(async () => {
  for (const ws of sockets) ws.terminate()
  await Promise.all(transports.map((t) => t.close()))
  transports = []
  sockets = []
})

const start = async (options: WebsocketTransportOptions = {}) => {
  const transport = await startWebsocketTransport({ resumeGraceMs: 30_000, ...options })
  transports.push(transport)
  const sessions: Array<Recorded> = []
  const { uri } = transport.register("w", (send) => {
    const recorded = recordingSession("w", send)
    sessions.push(recorded)
    return recorded.session
  })
  return { transport, sessions, uri }
}

const connect = async (uri: string) => {
  const ws = new WebSocket(uri)
  sockets.push(ws)
  const inbox: Array<Record<string, unknown>> = []
  ws.on("message", (data) => inbox.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>))
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  return { ws, inbox, ids: () => inbox.map((m) => m["requestId"]) }
}

/** The widget acknowledges a request, and the session has it before the test goes on. */
const acknowledge = async (ws: WebSocket, message: Record<string, unknown>, session: Recorded) => {
  ws.send(JSON.stringify({ ...message, response: {} }))
  await vi.waitFor(() => assert.isTrue(session.received.some((m) => m["requestId"] === message["requestId"] && "response" in m)))
}

/** Drops the link as a network would (no close frame) and waits until the session is suspended. */
const drop = async (ws: WebSocket, session: Recorded) => {
  const downs = session.events.filter((e) => e === "down").length
  ws.terminate()
  await vi.waitFor(() => assert.equal(session.events.filter((e) => e === "down").length, downs + 1))
}

describe("websocket transport: redelivery of unanswered toWidget requests", () => {
  it("resume: what was written and not answered goes again, in order, before what was queued; answered ones do not", async () => {
    const { transport, sessions, uri } = await start()
    const first = await connect(uri)
    const s = sessions[0]!
    for (const n of [1, 2, 3]) s.send(request(n))
    await vi.waitFor(() => assert.equal(first.inbox.length, 3))
    await acknowledge(first.ws, first.inbox[1]!, s)
    await drop(first.ws, s)
    s.send(request(4))
    const second = await connect(uri)
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["host-1", "host-3", "host-4"]))
    assert.deepEqual(second.inbox[0], first.inbox[0], "the very same message")
    assert.equal(transport.stats().redelivered, 2)
    // Answered on the new link: settled, so a further drop and resume delivers nothing again.
    for (const m of second.inbox) await acknowledge(second.ws, m, s)
    await drop(second.ws, s)
    const third = await connect(uri)
    s.send(request(5))
    await vi.waitFor(() => assert.deepEqual(third.ids(), ["host-5"]))
    assert.equal(transport.stats().redelivered, 2)
    assert.equal(sessions.length, 1, "one session throughout")
  })

  it("a replacing connection gets what the replaced one left unanswered", async () => {
    const { sessions, uri } = await start({ onDuplicate: "replace" })
    const first = await connect(uri)
    sessions[0]!.send(request(1))
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    const second = await connect(uri)
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["host-1"]))
  })

  it("answers from the widget are still passed to the session, and the widget's own requests are never redelivered", async () => {
    const { sessions, uri } = await start()
    const first = await connect(uri)
    const s = sessions[0]!
    // The session answering a fromWidget request is not a request of its own.
    s.send({ api: "fromWidget", widgetId: "w", requestId: "widget-1", action: "send_event", data: {}, response: { event_id: "$1" } })
    s.send(request(1))
    await vi.waitFor(() => assert.equal(first.inbox.length, 2))
    await acknowledge(first.ws, first.inbox[1]!, s)
    await drop(first.ws, s)
    const second = await connect(uri)
    s.send(request(2))
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["host-2"]))
  })

  it("past outboundQueueLimit unanswered, the oldest are forgotten: counted, and announced first on resume", async () => {
    const { transport, sessions, uri } = await start({ outboundQueueLimit: 3 })
    const first = await connect(uri)
    const s = sessions[0]!
    for (let n = 1; n <= 5; n++) s.send(request(n))
    await vi.waitFor(() => assert.equal(first.inbox.length, 5))
    assert.equal(transport.stats().forgotten, 2)
    assert.equal(transport.stats().closed[4507], undefined, "a widget that reads but does not answer is not an overflow")
    await drop(first.ws, s)
    const second = await connect(uri)
    await vi.waitFor(() => assert.equal(second.inbox.length, 4))
    assert.deepEqual(second.inbox[0], { api: "toWidget", widgetId: "w", requestId: "widgethost-gap-1", action: TRANSPORT_GAP_ACTION, data: { dropped: 2, reason: "overflow" } })
    assert.deepEqual(second.ids().slice(1), ["host-3", "host-4", "host-5"])
  })

  it("the gap notice is a request like the others: unanswered at a drop, it goes again; answered, it does not", async () => {
    const { sessions, uri } = await start({ outboundQueueLimit: 2 })
    const first = await connect(uri)
    const s = sessions[0]!
    for (let n = 1; n <= 3; n++) s.send(request(n)) // host-1 is forgotten unanswered
    await vi.waitFor(() => assert.equal(first.inbox.length, 3))
    await acknowledge(first.ws, first.inbox[1]!, s)
    await acknowledge(first.ws, first.inbox[2]!, s)
    await drop(first.ws, s)
    const second = await connect(uri)
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["widgethost-gap-1"]))
    await drop(second.ws, s)
    const third = await connect(uri)
    await vi.waitFor(() => assert.deepEqual(third.ids(), ["widgethost-gap-1"], "the same notice again, not a new one"))
    third.ws.send(JSON.stringify({ ...third.inbox[0], response: {} }))
    s.send(request(4))
    await vi.waitFor(() => assert.deepEqual(third.ids(), ["widgethost-gap-1", "host-4"]))
    assert.isFalse(s.received.some((m) => m["requestId"] === "widgethost-gap-1"), "the transport's answer, not the session's")
    await drop(third.ws, s)
    const fourth = await connect(uri)
    s.send(request(5))
    await vi.waitFor(() => assert.deepEqual(fourth.ids(), ["host-4", "host-5"], "host-4 was never answered; the notice was"))
  })

  it("the widget's own request sent again after a drop: never the session's twice, one answer on the new link", async () => {
    const { transport, sessions, uri } = await start()
    const first = await connect(uri)
    const s = sessions[0]!
    const ask = (id: string) => ({ api: "fromWidget" as const, widgetId: "w", requestId: id, action: "send_event", data: { id } })
    const answer = (id: string): WidgetMessage => ({ ...ask(id), response: { event_id: `$${id}` } })
    for (const id of ["a", "b", "c"]) first.ws.send(JSON.stringify(ask(id)))
    await vi.waitFor(() => assert.equal(s.received.length, 3))
    s.send(answer("a")) // written to the first link: lost with it, as far as anyone knows
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    await drop(first.ws, s)
    s.send(answer("b")) // answered while the link is down: queued
    const second = await connect(uri)
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["b"]))
    // The widget has no answer for any of them (its reads were lost): it sends all three again.
    for (const id of ["a", "b", "c"]) second.ws.send(JSON.stringify(ask(id)))
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["b", "a"]))
    assert.deepEqual(second.inbox[1], first.inbox[0], "a's answer again, the very same")
    s.send(answer("c")) // c was still in flight: its one answer comes when ready
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["b", "a", "c"]))
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(s.received.length, 3, "the session saw each request once")
    assert.equal(second.inbox.length, 3, "one answer each")
    assert.deepEqual(transport.stats().repeats, { dropped: 2, answeredAgain: 1, answerLost: 0 })
  })

  it("a session that expired takes its unanswered requests with it: the next session's widget never sees them", async () => {
    const { sessions, uri } = await start({ resumeGraceMs: 50 })
    const first = await connect(uri)
    sessions[0]!.send(request(1))
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    await drop(first.ws, sessions[0]!)
    await vi.waitFor(() => assert.include(sessions[0]!.events, "close"))
    const second = await connect(uri)
    await vi.waitFor(() => assert.equal(sessions.length, 2))
    sessions[1]!.send(request(7))
    await vi.waitFor(() => assert.deepEqual(second.ids(), ["host-7"]))
  })
})
