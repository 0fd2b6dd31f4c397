/**
 * The websocket transport under a slow reader: its own queue overflows (never stalling others),
 * the gap notice on resume, and the write hook that hears each message as it reaches the socket.
 */
import { assert, describe, it, vi } from "vitest"
import { CloseCode } from "./link-endings.ts"
import { TRANSPORT_GAP_ACTION } from "./transport-types.ts"
import { answer, connect, FakeSession, fromWidget, roundTrip, settle, start, toWidget, useTransportCleanup } from "./websocket.test-kit.ts"

useTransportCleanup()

describe("websocket transport: backpressure", () => {
  it("a slow reader overflows its own queue (4507, counted), never stalls others, and learns the gap on resume", async () => {
    const { register, sessions, transport } = await start({ highWaterMarkBytes: 64 * 1024, outboundQueueLimit: 20 })
    const slow = await connect(register("slow").uri)
    const fast = await connect(register("fast", { echo: true }).uri)
    const slowSession = sessions[0]!
    slow.ws.pause()
    const pad = "x".repeat(16 * 1024)
    let sent = 0
    while (transport.stats().overflows === 0 && sent < 20_000) {
      for (let i = 0; i < 16; i++) slowSession.send({ ...toWidget("slow", sent++), data: { pad } })
      await settle()
    }
    assert.equal(transport.stats().overflows, 1, "the queue overflowed")
    const dropped = transport.stats().dropped.overflow
    assert.isAbove(dropped, 0)
    // The other widget is unaffected.
    fast.ws.send(fromWidget(1))
    await vi.waitFor(() => assert.equal(fast.inbox.length, 1))
    // Messages after the overflow wait for the resume.
    await vi.waitFor(() => assert.include(slowSession.events, "transportDown"))
    slowSession.send(toWidget("slow", 100_000))
    slow.ws.resume()
    const { code, reason } = await slow.closed
    assert.equal(code, CloseCode.Overflow)
    assert.match(reason, /outbound queue overflow/)
    const delivered = slow.inbox.length
    assert.isBelow(delivered, sent, "the backlog was dropped, not buffered without bound")
    assert.equal(transport.stats().closed[4507], 1)
  })

  it("on resume after an overflow the widget first gets the gap notice, then what came after; its answer is not passed on", async () => {
    const { register, sessions, transport } = await start({ highWaterMarkBytes: 1024, outboundQueueLimit: 3 })
    const { uri } = register("w")
    const first = await connect(uri)
    first.ws.terminate()
    await vi.waitFor(() => assert.deepEqual(sessions[0]!.events, ["transportDown"]))
    // Disconnected: 4 messages overflow a queue of 3; the backlog is dropped.
    for (let n = 1; n <= 4; n++) sessions[0]!.send(toWidget("w", n))
    assert.deepEqual(transport.stats().dropped.overflow, 4)
    sessions[0]!.send(toWidget("w", 5))
    const second = await connect(uri)
    await vi.waitFor(() => assert.equal(second.inbox.length, 2))
    const [gap, next] = second.inbox
    assert.deepEqual(gap, { api: "toWidget", widgetId: "w", requestId: "widgethost-gap-1", action: TRANSPORT_GAP_ACTION, data: { dropped: 4, reason: "overflow" } })
    assert.equal(next?.["requestId"], "host-5")
    second.ws.send(JSON.stringify({ ...gap, response: { error: { message: "unknown action" } } }))
    await roundTrip(second, sessions[0]!)
    assert.equal(sessions[0]!.received.length, 1, "only the marker reached the session")
  })
})

describe("websocket transport: write hook", () => {
  it("hears of each marked message right before it reaches the socket: not while it waits, never once dropped", async () => {
    const { transport } = await start({ outboundQueueLimit: 3 })
    const written: Array<number> = []
    const sessions: Array<FakeSession> = []
    const { uri } = transport.register(
      "w",
      (send) => {
        const session = new FakeSession("w", send)
        sessions.push(session)
        return session
      },
      {
        onWrite: {
          mark: (message) => (message.action === "test" ? (message.data["n"] as number) : undefined),
          written: (n: number) => void written.push(n)
        }
      }
    )
    const first = await connect(uri)
    const session = sessions[0]!
    session.send(toWidget("w", 1))
    session.send({ ...toWidget("w", 99), action: "other" })
    assert.deepEqual(written, [1], "written at once on a live link; unmarked messages are not reported")
    await vi.waitFor(() => assert.equal(first.inbox.length, 2))
    answer(first, first.inbox[0]!)
    await roundTrip(first, session)
    session.events.length = 0 // from here on, only the link's events
    // host-99 is left unanswered: it goes again on the next link, unreported (it was written once).
    first.ws.terminate()
    await vi.waitFor(() => assert.deepEqual(session.events, ["transportDown"]))
    session.send(toWidget("w", 2))
    session.send(toWidget("w", 3))
    assert.deepEqual(written, [1], "queued while the widget is away: not yet written")
    const second = await connect(uri)
    await vi.waitFor(() => assert.equal(second.inbox.length, 3))
    assert.deepEqual(second.inbox.map((m) => m["requestId"]), ["host-99", "host-2", "host-3"])
    assert.deepEqual(written, [1, 2, 3])
    for (const m of second.inbox) answer(second, m)
    await roundTrip(second, session)
    second.ws.terminate()
    await vi.waitFor(() => assert.deepEqual(session.events.filter((e) => e !== "receive"), ["transportDown", "transportUp", "transportDown"]))
    for (let n = 4; n <= 7; n++) session.send(toWidget("w", n))
    assert.equal(transport.stats().dropped.overflow, 4)
    session.send(toWidget("w", 8))
    const third = await connect(uri)
    await vi.waitFor(() => assert.equal(third.inbox.length, 2))
    assert.deepEqual(written, [1, 2, 3, 8], "the dropped backlog is never reported")
  })
})
