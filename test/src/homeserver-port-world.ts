/**
 * The world a homeserver port case runs in ({@link PortWorld}: the port under test, what it
 * delivered, alice's raw client-server API, a second account) and the helpers the cases share.
 * The cases themselves are `homeserver-port-cases.ts`.
 */
import { Effect } from "effect"
import { expect } from "vitest"
import { HomeserverError, type HomeserverPort, type HomeserverUpdate, type RoomEvent, type ToDeviceEvent } from "@widgethost/core"
import type { EmbeddedHomeserver, EmbeddedHomeserverOptions } from "@widgethost/embedded-homeserver"
import * as sdk from "matrix-js-sdk"
import { quietLogger } from "./js-sdk-logger.ts"

/** Alice's (or bob's) raw client-server API with their access token; a non-2xx answer rejects with `{ status, body }`. */
export type Api = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => Promise<T>

export const clientApi =
  (baseUrl: string, accessToken: string): Api =>
  async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${accessToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const json: unknown = await res.json()
    if (!res.ok) throw Object.assign(new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`), { status: res.status, body: json })
    return json as T
  }

export interface Account {
  readonly userId: string
  readonly deviceId: string
  readonly accessToken: string
  readonly api: Api
}

export interface PortWorld {
  readonly hs: EmbeddedHomeserver
  readonly port: HomeserverPort
  /** What `port.subscribe` delivered, in order. */
  readonly updates: Array<HomeserverUpdate>
  /** The port's account. */
  readonly alice: Account
  /** Another account on the same server (not syncing unless a case makes it). */
  readonly bob: Account
  /** Resolves once the port knows it is in the room (a client that syncs has synced the join). */
  readonly joined: (roomId: string) => Promise<void>
  /** Registers a cleanup for the end of the test. */
  readonly defer: (cleanup: () => unknown) => void
  /** Collects matrix-js-sdk log lines, shown when the test fails. */
  readonly logs: Array<string>
}

export interface PortCase {
  readonly name: string
  readonly homeserver?: EmbeddedHomeserverOptions
  /** Runs before the port connects (e.g. a fault the port's first requests meet). */
  readonly before?: (hs: EmbeddedHomeserver) => void
  readonly run: (world: PortWorld) => Promise<void>
}

/** Polls `cond` until it holds; fails naming `what` after `timeoutMs`. */
export const eventually = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The media id of an `mxc://localhost/<id>` URI; fails the case for any other. */
export const mediaIdOf = (uri: string): string => {
  const match = /^mxc:\/\/localhost\/([A-Za-z0-9_-]+)$/.exec(uri)
  expect(match, uri).not.toBeNull()
  return match![1]!
}

export const run = <A>(effect: Effect.Effect<A, HomeserverError>) => Effect.runPromise(effect)
export const failureOf = <A>(effect: Effect.Effect<A, HomeserverError>) => Effect.runPromise(Effect.flip(effect))

export const roomEvents = (world: PortWorld, roomId: string): Array<RoomEvent> =>
  world.updates.flatMap((u) => (u._tag === "RoomEvent" && u.event.room_id === roomId ? [u.event] : []))
export const toDevice = (world: PortWorld): Array<ToDeviceEvent> => world.updates.flatMap((u) => (u._tag === "ToDevice" ? [u.event] : []))
export const bodies = (events: ReadonlyArray<RoomEvent>) => events.filter((e) => e.type === "m.room.message").map((e) => e.content["body"])

/** Alice makes a room (with `body` as createRoom's) and waits until her port knows it. */
export const roomOf = async (world: PortWorld, body: Record<string, unknown> = {}): Promise<string> => {
  const { room_id: roomId } = await world.alice.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", body)
  await world.joined(roomId)
  return roomId
}

export const say = (world: PortWorld, roomId: string, body: string) =>
  run(world.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))

/** Waits until the port delivered the event `eventId` of `roomId`, and answers it. */
export const delivered = async (world: PortWorld, roomId: string, eventId: string): Promise<RoomEvent> => {
  await eventually(`the port to deliver ${eventId}`, () => roomEvents(world, roomId).some((e) => e.event_id === eventId))
  return roomEvents(world, roomId).find((e) => e.event_id === eventId)!
}

/** A syncing matrix-js-sdk client with Rust crypto (in memory) for `account`. */
export const cryptoClient = async (world: PortWorld, account: Account): Promise<sdk.MatrixClient> => {
  const client = sdk.createClient({ baseUrl: world.hs.baseUrl, userId: account.userId, accessToken: account.accessToken, deviceId: account.deviceId, logger: quietLogger(world.logs) })
  await client.initRustCrypto({ useIndexedDB: false })
  world.defer(() => client.stopClient())
  const prepared = new Promise<void>((resolve) => client.on(sdk.ClientEvent.Sync, (state) => state === sdk.SyncState.Prepared && resolve()))
  await client.startClient({ initialSyncLimit: 10 })
  await prepared
  return client
}

/** Alice's encrypted room with bob in it, bob on a syncing client with crypto; both sides know each other. */
export const encryptedRoomWithBob = async (world: PortWorld): Promise<{ bob: sdk.MatrixClient; roomId: string }> => {
  const bob = await cryptoClient(world, world.bob)
  const roomId = await roomOf(world, {
    preset: "private_chat",
    invite: [world.bob.userId],
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }]
  })
  await eventually("bob's invite", () => bob.getRoom(roomId) !== null)
  await bob.joinRoom(roomId)
  // Alice's side learns bob is in (to share the room key with him) from the room's timeline.
  await eventually("the port to see bob join", () => roomEvents(world, roomId).some((e) => e.type === "m.room.member" && e.state_key === world.bob.userId && e.content["membership"] === "join"))
  await eventually("bob's view of the encrypted room", async () => (await bob.getCrypto()!.isEncryptionEnabledInRoom(roomId)) && bob.getRoom(roomId)?.getMyMembership() === "join")
  return { bob, roomId }
}

