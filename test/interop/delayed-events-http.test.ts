/**
 * MSC4157/MSC4140 through the HTTP homeserver port against the embedded homeserver, in each
 * revision it can speak (the 2025 query parameter, the 2026 delayed_event endpoint under its
 * unstable prefix, and the accepted text's stable endpoint): a delayed state event is scheduled
 * (a MatrixRTC delayed leave), restarted and cancelled, or sent at once, and the room's state
 * shows which. A server of an endpoint revision ignores the query parameter and would send at
 * once, so each schedule here proves the port spoke the server's revision.
 */
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { HomeserverError } from "@widgethost/core"
import { type DelayedEventsShape, type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const MEMBER = "org.matrix.msc3401.call.member"

const setUp = async (delayedEvents: DelayedEventsShape = "query-parameter") => {
  const hs: EmbeddedHomeserver = await startEmbeddedHomeserver({ delayedEvents })
  cleanups.push(() => hs.close())
  await hs.ensureUser("alice", "alice-secret")
  const port: MatrixHomeserver = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" } })
  cleanups.push(() => port.stop())
  const { room_id: roomId } = await port.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
  const leave = () =>
    Effect.runPromise(port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "_@alice:localhost_D", content: {}, delayMs: 60_000 }))
  const scheduled = async () => (await port.http.request<{ delayed_events: ReadonlyArray<{ delay_id: string }> }>({ method: "GET", path: "/_matrix/client/unstable/org.matrix.msc4140/delayed_events" })).delayed_events.map((d) => d.delay_id)
  const memberState = () => Effect.runPromise(port.readState(roomId, MEMBER))
  const update = (delayId: string, action: "cancel" | "restart" | "send") => Effect.runPromise(port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId, action }))
  return { leave, scheduled, memberState, update, port, hs, roomId }
}

const REVISIONS: ReadonlyArray<DelayedEventsShape> = ["query-parameter", "endpoint", "endpoint-stable"]

describe.each(REVISIONS)("delayed events over HTTP, the server speaking MSC4140's %s revision", (revision) => {
  it("schedules, restarts and cancels: the event is never sent", async () => {
    const { leave, scheduled, memberState, update } = await setUp(revision)
    const { delayId } = await leave()
    expect(delayId).toBeTypeOf("string")
    expect(await scheduled()).toEqual([delayId])
    await update(delayId!, "restart")
    expect(await scheduled()).toEqual([delayId])
    await update(delayId!, "cancel")
    expect(await scheduled()).toEqual([])
    expect(await memberState()).toEqual([])
  })

  it("send: the delayed event is sent now", async () => {
    const { leave, scheduled, memberState, update } = await setUp(revision)
    const { delayId } = await leave()
    await update(delayId!, "send")
    expect(await scheduled()).toEqual([])
    expect((await memberState()).map((e) => e.state_key)).toEqual(["_@alice:localhost_D"])
  })

  it("an unknown delay id is the server's 404", async () => {
    const { port } = await setUp(revision)
    const failure = await Effect.runPromise(Effect.flip(port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: "nope", action: "cancel" })))
    expect(failure).toBeInstanceOf(HomeserverError)
    expect([failure.http?.status, failure.http?.body["errcode"]]).toEqual([404, "M_NOT_FOUND"])
  })

  it("a delayed message in an encrypted room is scheduled encrypted, like any other", async () => {
    const { port } = await setUp(revision)
    const { room_id: roomId } = await port.http.request<{ room_id: string }>({
      method: "POST",
      path: "/_matrix/client/v3/createRoom",
      body: { initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] }
    })
    const { delayId } = await Effect.runPromise(port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.later", content: { secret: "s3cret" }, delayMs: 60_000 }))
    const listing = await port.http.request<{ scheduled: ReadonlyArray<{ delay_id: string; type: string; content: Record<string, unknown> }> }>({ method: "GET", path: "/_matrix/client/v1/delayed_events" })
    const entry = listing.scheduled.find((d) => d.delay_id === delayId)
    expect(entry?.type).toBe("m.room.encrypted")
    expect(JSON.stringify(entry?.content)).not.toContain("s3cret")
  })

})

describe("delayed events over HTTP: what a revision cannot carry", () => {
  it("the endpoint revisions have no parent delays: refused, nothing scheduled", async () => {
    for (const revision of ["endpoint", "endpoint-stable"] as const) {
      const { port, scheduled, roomId } = await setUp(revision)
      const failure = await Effect.runPromise(Effect.flip(port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "x", content: {}, delayMs: 1000, parentDelayId: "parent" })))
      expect(failure.message).toContain("no parent delays")
      expect(await scheduled()).toEqual([])
    }
  })

  it("a server without MSC4140 in /versions: the delayed send is refused and nothing is sent", async () => {
    const hs: EmbeddedHomeserver = await startEmbeddedHomeserver()
    cleanups.push(() => hs.close())
    await hs.ensureUser("bob", "bob-secret")
    // As Synapse before MSC4140: /versions without the feature (the delay parameter would be ignored).
    hs.injectFault({ path: /^\/_matrix\/client\/versions$/, times: 100, kind: { status: 200, body: { versions: ["v1.11"], unstable_features: {} } } })
    const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "bob", password: "bob-secret" } })
    cleanups.push(() => port.stop())
    const { room_id: roomId } = await port.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
    const failure = await Effect.runPromise(
      Effect.flip(port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "_@bob:localhost_D", content: {}, delayMs: 60_000 }))
    )
    expect(failure.message).toContain("does not support delayed events")
    expect(await Effect.runPromise(port.readState(roomId, MEMBER))).toEqual([])
    // Sends without a delay are not affected.
    expect(await Effect.runPromise(port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "_@bob:localhost_D", content: {} }))).toMatchObject({ roomId })
  })
})
