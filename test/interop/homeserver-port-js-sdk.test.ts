/**
 * The homeserver port over a real matrix-js-sdk 36 `MatrixClient` (`fromMatrixClient`, with the
 * client's Rust crypto) against the embedded homeserver: every case of the shared port table
 * (`test/src/homeserver-port-cases.ts`, which the HTTP port runs too), and what is particular to
 * riding on a client: its own TURN poller, its local echoes, history from its first sync. The
 * table's delayed-event cases run again against the newer MSC4140 revisions the embedded
 * homeserver can speak (the delayed_event endpoint, unstable and stable), which the SDK's own
 * calls do not: a server of those ignores the 2025 query parameter and would send at once.
 */
import { Effect } from "effect"
import * as sdk from "matrix-js-sdk"
import { afterEach, describe, expect, it, vi } from "vitest"
import type { HomeserverUpdate } from "@widgethost/core"
import { fromPromisePort } from "@widgethost/core/effect"
import { type DelayedEventsShape, type EmbeddedHomeserver, type EmbeddedHomeserverOptions, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { fromMatrixClient, type MatrixClientPort } from "@widgethost/matrix-js-sdk"
import { portCases } from "../src/homeserver-port-cases.ts"
import { type Account, clientApi, eventually, type PortCase, type PortWorld } from "../src/homeserver-port-world.ts"
import { quietLogger, silenceJsSdk } from "../src/js-sdk-logger.ts"


const cleanups: Array<() => unknown> = []
const logs: Array<string> = []
silenceJsSdk(logs)
afterEach(async (context) => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined)
  if (context.task.result?.state === "fail") process.stderr.write(`${logs.slice(-200).join("\n")}\n`)
  logs.length = 0
})

interface ClientWorld extends PortWorld {
  readonly client: sdk.MatrixClient
  readonly promisePort: MatrixClientPort
}

interface WorldOptions {
  readonly homeserver?: EmbeddedHomeserverOptions | undefined
  /** Before anyone connects. */
  readonly before?: ((hs: EmbeddedHomeserver) => void) | undefined
  /** Before the client starts (it has crypto; the port is not made yet). */
  readonly prepare?: (client: sdk.MatrixClient, alice: Account) => Promise<void> | void
}

/** Alice on a matrix-js-sdk client with Rust crypto, hosting through `fromMatrixClient`, past her first sync. */
const world = async ({ homeserver, before, prepare }: WorldOptions = {}): Promise<ClientWorld> => {
  const hs = await startEmbeddedHomeserver(homeserver)
  cleanups.push(() => hs.close())
  before?.(hs)
  const alice = await hs.createUser("alice", "alice-secret")
  const bob = await hs.createUser("bob", "bob-secret")
  const aliceAccount = { ...alice, api: clientApi(hs.baseUrl, alice.accessToken) }
  const client = sdk.createClient({ baseUrl: hs.baseUrl, userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId, logger: quietLogger(logs) })
  await client.initRustCrypto({ useIndexedDB: false })
  await prepare?.(client, aliceAccount)
  const promisePort = fromMatrixClient(client)
  cleanups.push(() => client.stopClient())
  cleanups.push(() => promisePort.stop())
  const port = fromPromisePort(promisePort)
  const updates: Array<HomeserverUpdate> = []
  port.subscribe((update) => updates.push(update))
  const prepared = new Promise<void>((resolve) => client.on(sdk.ClientEvent.Sync, (state) => state === sdk.SyncState.Prepared && resolve()))
  await client.startClient({ initialSyncLimit: 10 })
  await prepared
  return {
    hs,
    port,
    promisePort,
    client,
    updates,
    alice: aliceAccount,
    bob: { ...bob, api: clientApi(hs.baseUrl, bob.accessToken) },
    joined: (roomId) => eventually(`alice's client in ${roomId}`, () => client.getRoom(roomId)?.getMyMembership() === "join"),
    defer: (cleanup) => void cleanups.push(cleanup),
    logs
  }
}

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect)

const delayedEventCases = portCases.filter((c) => c.name.startsWith("delayed events"))
const ENDPOINT_REVISIONS: ReadonlyArray<DelayedEventsShape> = ["endpoint", "endpoint-stable"]

describe("the homeserver port over a matrix-js-sdk client, on the embedded homeserver", { timeout: 60_000 }, () => {
  it.each(portCases)("$name", async (c: PortCase) => c.run(await world({ homeserver: c.homeserver, before: c.before })))

  describe.each(ENDPOINT_REVISIONS)("the server speaking MSC4140's %s revision", (delayedEvents) => {
    it("the table has delayed-event cases to run", () => expect(delayedEventCases.length).toBeGreaterThanOrEqual(2))

    it.each(delayedEventCases)("$name", async (c: PortCase) => c.run(await world({ homeserver: { ...c.homeserver, delayedEvents }, before: c.before })))

    it("the delayed_event endpoint has no parent delays: refused, nothing scheduled", async () => {
      const w = await world({ homeserver: { delayedEvents } })
      const { room_id: roomId } = await w.alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {})
      await w.joined(roomId)
      const failure = await run(Effect.flip(w.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.matrix.msc3401.call.member", stateKey: "x", content: {}, delayMs: 1_000, parentDelayId: "parent" })))
      expect(failure.message).toContain("no parent delays")
      const scheduled = await w.alice.api<{ delayed_events: ReadonlyArray<unknown> }>("GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events")
      expect(scheduled.delayed_events).toEqual([])
    })

    it("send: the delayed state event is sent now", async () => {
      const w = await world({ homeserver: { delayedEvents } })
      const { room_id: roomId } = await w.alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {})
      await w.joined(roomId)
      const { delayId } = await run(w.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.matrix.msc3401.call.member", stateKey: "_@alice:localhost_D", content: { left: true }, delayMs: 60_000 }))
      await run(w.port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: delayId!, action: "send" }))
      const state = await w.alice.api<Array<{ type: string; state_key: string }>>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state`)
      expect(state.filter((e) => e.type === "org.matrix.msc3401.call.member").map((e) => e.state_key)).toEqual(["_@alice:localhost_D"])
    })
  })

  it("the client's own sends (its local echoes) reach subscribers once, as the server's copy", async () => {
    const w = await world()
    const { room_id: roomId } = await w.alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {})
    await w.joined(roomId)
    const echo = w.client.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "sent by the client itself" })
    const local = w.client.getRoom(roomId)!.getLiveTimeline().getEvents().find((e) => e.getContent()["body"] === "sent by the client itself")
    expect(local?.status).not.toBeNull() // a local echo is in the timeline…
    const { event_id: eventId } = await echo
    const marker = await run(w.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.marker", content: {} }))
    await eventually("the marker", () => w.updates.some((u) => u._tag === "RoomEvent" && u.event.event_id === marker.eventId))
    const mine = w.updates.flatMap((u) => (u._tag === "RoomEvent" && u.event.content["body"] === "sent by the client itself" ? [u.event.event_id] : []))
    // …but subscribers get it once, with the server's id, before what was sent after it.
    expect(mine).toEqual([eventId])
    const order = w.updates.flatMap((u) => (u._tag === "RoomEvent" && (u.event.event_id === eventId || u.event.event_id === marker.eventId) ? [u.event.event_id] : []))
    expect(order).toEqual([eventId, marker.eventId])
  })

  it("live only: the history of the client's first sync never reaches subscribers, nor what came before a port was made", async () => {
    let roomId = ""
    const w = await world({
      prepare: async (_client, alice) => {
        ;({ room_id: roomId } = await alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {}))
        await alice.api("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/old`, { msgtype: "m.text", body: "history" })
      }
    })
    expect(w.client.getRoom(roomId)?.getLiveTimeline().getEvents().some((e) => e.getContent()["body"] === "history")).toBe(true)
    const later = fromMatrixClient(w.client)
    cleanups.push(() => later.stop())
    const laterUpdates: Array<HomeserverUpdate> = []
    later.subscribe((u) => laterUpdates.push(u))
    const now = await run(w.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body: "now" } }))
    await eventually("the new message at both ports", () => [w.updates, laterUpdates].every((updates) => updates.some((u) => u._tag === "RoomEvent" && u.event.event_id === now.eventId)))
    for (const updates of [w.updates, laterUpdates]) expect(updates.map((u) => u._tag === "RoomEvent" && u.event.event_id)).toEqual([now.eventId])
  })

  it("TURN from the client's own poller: its credentials, no request of the port's own", async () => {
    const turn = { uris: ["turn:127.0.0.1:3478?transport=udp"], sharedSecret: "s3cret", ttlSeconds: 3_600 }
    // Node has no WebRTC, so the SDK would not poll; a browser client would. Make it poll, as there.
    const w = await world({ homeserver: { turn }, prepare: (client) => void ((client as unknown as { canSupportVoip: boolean }).canSupportVoip = true) })
    await eventually("the client's poller to fetch credentials", () => w.client.getTurnServers().length > 0)
    expect(w.client.pollingTurnServers).toBe(true)
    const fetches = vi.spyOn(w.client, "turnServer")
    const answer = await run(w.port.turnServers())
    const [own] = w.client.getTurnServers()
    expect(answer).toMatchObject({ uris: own!.urls, username: own!.username, password: own!.credential })
    expect(answer.ttl).toBeGreaterThan(3_500)
    expect(fetches).not.toHaveBeenCalled()
  })

  it("a delayed room event in an encrypted room is refused (the SDK would send it in clear); nothing is sent", async () => {
    const w = await world()
    const { room_id: roomId } = await w.alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", {
      initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }]
    })
    await w.joined(roomId)
    const failure = await run(Effect.flip(w.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { body: "later" }, delayMs: 60_000 })))
    expect(failure.message).toContain("unencrypted")
    const scheduled = await w.alice.api<{ delayed_events: ReadonlyArray<unknown> }>("GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events")
    expect(scheduled.delayed_events).toEqual([])
  })
})
