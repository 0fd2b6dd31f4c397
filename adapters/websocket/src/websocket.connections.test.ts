/**
 * The websocket transport's connections over time: one per widget, resuming within the grace
 * window, and how each kind of end closes the link and the session.
 */
import { assert, describe, it, vi } from "vitest"
import { CloseCode } from "./link-endings.ts"
import { answer, connect, fromWidget, refusedStatus, roundTrip, start, toWidget, useTransportCleanup } from "./websocket.test-kit.ts"

useTransportCleanup()

describe("websocket transport: one connection per widget", () => {
  it("onDuplicate refuse: a second connection gets 409 and the first keeps the session", async () => {
    const { register, sessions, transport } = await start()
    const { uri } = register("w", { echo: true })
    const first = await connect(uri)
    assert.equal(await refusedStatus(uri), 409)
    first.ws.send(fromWidget(1))
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    assert.equal(sessions.length, 1)
    assert.equal(transport.stats().refused.duplicate, 1)
  })

  it("onDuplicate replace: the first connection is closed with 4409 and the session continues on the second", async () => {
    const { register, sessions, transport } = await start({ onDuplicate: "replace" })
    const { uri } = register("w", { echo: true })
    const first = await connect(uri)
    first.ws.send(fromWidget(1))
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    const second = await connect(uri)
    const { code } = await first.closed
    assert.equal(code, CloseCode.Replaced)
    second.ws.send(fromWidget(2))
    await vi.waitFor(() => assert.equal(second.inbox.length, 1))
    sessions[0]!.send(toWidget("w", 9))
    await vi.waitFor(() => assert.equal(second.inbox.length, 2))
    assert.equal(first.inbox.length, 1, "nothing reaches the replaced connection")
    assert.equal(sessions.length, 1)
    assert.deepEqual(sessions[0]!.events, ["receive", "receive"], "no transportDown/Up: the link never went away")
    assert.equal(transport.stats().closed[4409], 1)
  })
})

describe("websocket transport: reconnection", () => {
  it("resume within the grace window: messages sent meanwhile arrive exactly once, in order", async () => {
    const { register, sessions, transport } = await start({ resumeGraceMs: 10_000 })
    const { uri } = register()
    const first = await connect(uri)
    sessions[0]!.send(toWidget("w", 0))
    await vi.waitFor(() => assert.equal(first.inbox.length, 1))
    // Answered before the drop: nothing of the first link is delivered again.
    answer(first, first.inbox[0]!)
    await roundTrip(first, sessions[0]!)
    sessions[0]!.events.length = 0 // from here on, only the link's events
    first.ws.terminate()
    await vi.waitFor(() => assert.deepEqual(sessions[0]!.events, ["transportDown"]))
    for (let n = 1; n <= 5; n++) sessions[0]!.send(toWidget("w", n))
    const second = await connect(uri)
    await vi.waitFor(() => assert.equal(second.inbox.length, 5))
    assert.deepEqual(second.inbox.map((m) => m["requestId"]), ["host-1", "host-2", "host-3", "host-4", "host-5"])
    assert.deepEqual(sessions[0]!.events, ["transportDown", "transportUp"])
    sessions[0]!.send(toWidget("w", 6))
    await roundTrip(second, sessions[0]!)
    await vi.waitFor(() => assert.equal(second.inbox.length, 6))
    assert.deepEqual(second.inbox.map((m) => m["requestId"]).slice(5), ["host-6"])
    assert.equal(sessions.length, 1, "the same session")
    assert.equal(transport.stats().sessionsResumed, 1)
    assert.equal(first.inbox.length, 1)
  })

  it("the grace window expires: the session is closed, a new connection opens a new session, old sends go nowhere", async () => {
    const { register, sessions, timers, transport } = await start({ resumeGraceMs: 5000 })
    const { uri } = register()
    const first = await connect(uri)
    first.ws.close(4000, "bye for now")
    await vi.waitFor(() => assert.deepEqual(sessions[0]!.events, ["transportDown"]))
    sessions[0]!.send(toWidget("w", 1))
    timers.advance(4999)
    assert.isUndefined(sessions[0]!.closedWith)
    timers.advance(1)
    assert.match(sessions[0]!.closedWith ?? "", /did not reconnect within 5000 ms/)
    sessions[0]!.send(toWidget("w", 2))
    const second = await connect(uri)
    assert.equal(sessions.length, 2)
    sessions[1]!.send(toWidget("w", 3))
    await roundTrip(second, sessions[1]!)
    await vi.waitFor(() => assert.equal(second.inbox.length, 1))
    assert.deepEqual(second.inbox.map((m) => m["requestId"]), ["host-3"], "the old session's messages are not delivered")
    assert.deepEqual(transport.stats().dropped, { overflow: 0, stale: 1, unserialisable: 0 })
    assert.equal(transport.stats().sessionsExpired, 1)
    assert.equal(transport.stats().closed[4000], 1)
  })

  it("a widget closing with 1000 ends its session at once", async () => {
    const { register, sessions } = await start()
    const { uri } = register()
    const client = await connect(uri)
    client.ws.close(1000, "done")
    await vi.waitFor(() => assert.isDefined(sessions[0]!.closedWith))
    assert.deepEqual(sessions[0]!.events, ["close"])
    await connect(uri)
    assert.equal(sessions.length, 2)
  })

  it("resumeGraceMs 0 disables resuming", async () => {
    const { register, sessions } = await start({ resumeGraceMs: 0 })
    const client = await connect(register().uri)
    client.ws.terminate()
    await vi.waitFor(() => assert.isDefined(sessions[0]!.closedWith))
    assert.notInclude(sessions[0]!.events, "transportDown")
  })
})

describe("websocket transport: how connections end", () => {
  it("the engine closing the session closes the link with 1000 and its reason, after what it said last", async () => {
    const { register, sessions, transport } = await start()
    const client = await connect(register().uri)
    sessions[0]!.send(toWidget("w", 1))
    sessions[0]!.close("widget removed from room")
    const { code, reason } = await client.closed
    assert.equal(code, CloseCode.Normal)
    assert.equal(reason, "widget removed from room")
    assert.deepEqual(client.inbox.map((m) => m["requestId"]), ["host-1"])
    assert.equal(transport.stats().closed[1000], 1)
  })

  it("unregister closes with 4410 and the session; the token is then refused", async () => {
    const { register, sessions, transport } = await start()
    const registration = register()
    const client = await connect(registration.uri)
    registration.unregister()
    registration.unregister()
    const { code } = await client.closed
    assert.equal(code, CloseCode.Unregistered)
    assert.equal(sessions[0]!.closedWith, "widget unregistered")
    assert.equal(await refusedStatus(registration.uri), 401)
    assert.equal(transport.stats().registered, 0)
  })

  it("a session that throws closes the link with 1011 and is closed", async () => {
    const { register, sessions } = await start()
    const client = await connect(register("w", { throwOnReceive: true }).uri)
    client.ws.send(fromWidget(1))
    const { code } = await client.closed
    assert.equal(code, CloseCode.InternalError)
    assert.isDefined(sessions[0]!.closedWith)
  })

  it("close() ends every connection with 1001 and every session, then refuses nothing because nothing listens", async () => {
    const { register, sessions, transport } = await start()
    const a = await connect(register("a").uri)
    const b = await connect(register("b").uri)
    await transport.close()
    assert.equal((await a.closed).code, CloseCode.GoingAway)
    assert.equal((await b.closed).code, CloseCode.GoingAway)
    assert.deepEqual(sessions.map((s) => s.closedWith), ["transport closed", "transport closed"])
    assert.equal(transport.stats().closed[1001], 2)
  })

  it("every end is counted once under its code", async () => {
    const { register, transport } = await start()
    const a = await connect(register("a").uri)
    a.ws.close(4000)
    await a.closed
    const b = await connect(register("b").uri)
    b.ws.send(Buffer.from([0]))
    await b.closed
    const c = await connect(register("c").uri)
    c.ws.terminate()
    await c.closed
    await vi.waitFor(() => assert.deepEqual(transport.stats().closed, { 1003: 1, 1006: 1, 4000: 1 }))
    assert.equal(transport.stats().accepted, 3)
  })
})
