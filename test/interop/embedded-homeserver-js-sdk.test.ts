import * as sdk from "matrix-js-sdk"
import type { Logger } from "matrix-js-sdk/lib/logger.js"
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "vitest"
import { quietLogger } from "../src/js-sdk-logger.ts"
import type { EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"

/**
 * A real Matrix client against the embedded homeserver: matrix-js-sdk 36 registers (through the
 * user-interactive auth flow), logs in, syncs, creates and joins a room and exchanges messages,
 * each side seeing the other's message arrive through its own /sync loop. Whatever the SDK needs
 * from a server, the embedded homeserver has to provide.
 */


// Modules of the SDK that log through its global logger (sync, RTC) are silenced for the run;
// the clients' own loggers collect into `logs` below.
let globalLevel: number
beforeAll(() => {
  globalLevel = sdkGlobalLogger.getLevel()
  sdkGlobalLogger.setLevel("silent")
})
afterAll(() => sdkGlobalLogger.setLevel(globalLevel as Parameters<typeof sdkGlobalLogger.setLevel>[0]))

let hs: EmbeddedHomeserver | undefined
const clients: Array<sdk.MatrixClient> = []
afterEach(async () => {
  for (const c of clients.splice(0)) c.stopClient()
  await hs?.close()
  hs = undefined
})

/**
 * Registers through the UIA dance a client performs: first request → a bare 401 with the flows
 * (no errcode: nothing failed yet), then the registration token stage with the operator's token.
 */
const register = async (baseUrl: string, token: string, username: string, password: string, log: Logger): Promise<void> => {
  const anon = sdk.createClient({ baseUrl, logger: log })
  let session: string | undefined
  try {
    await anon.registerRequest({ username, password })
    assert.fail("registration without auth should have asked for user-interactive auth")
  } catch (e) {
    assert.instanceOf(e, sdk.MatrixError)
    assert.equal(e.httpStatus, 401)
    assert.isUndefined((e.data as { errcode?: unknown }).errcode)
    session = (e.data as { session?: string }).session
    assert.deepEqual((e.data as { flows?: unknown }).flows, [{ stages: [sdk.AuthType.RegistrationToken] }])
  }
  const done = await anon.registerRequest({ username, password, auth: { type: sdk.AuthType.RegistrationToken, token, ...(session !== undefined && { session }) } })
  assert.equal(done.user_id, `@${username}:localhost`)
}

const login = async (baseUrl: string, username: string, password: string, log: Logger): Promise<sdk.MatrixClient> => {
  const anon = sdk.createClient({ baseUrl, logger: log })
  const res = await anon.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: username }, password })
  const client = sdk.createClient({ baseUrl, userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id, logger: log })
  clients.push(client)
  return client
}

const prepared = (client: sdk.MatrixClient): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.getUserId()} never reached PREPARED`)), 15_000)
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === sdk.SyncState.Prepared) {
        clearTimeout(timer)
        resolve()
      }
    })
  })

/** Resolves with the first live timeline event in `roomId` from `sender` with the given body. */
const messageArrives = (client: sdk.MatrixClient, roomId: string, sender: string, body: string): Promise<sdk.MatrixEvent> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.getUserId()} never saw "${body}"`)), 15_000)
    const onTimeline = (event: sdk.MatrixEvent, room: sdk.Room | undefined) => {
      if (room?.roomId !== roomId || event.getSender() !== sender || event.getContent().body !== body) return
      clearTimeout(timer)
      client.off(sdk.RoomEvent.Timeline, onTimeline)
      resolve(event)
    }
    client.on(sdk.RoomEvent.Timeline, onTimeline)
  })

describe("matrix-js-sdk against the embedded homeserver", () => {
  it("two users register, log in, share a public room and see each other's messages through sync", async () => {
    hs = await startEmbeddedHomeserver()
    const logs: Array<string> = []
    const log = quietLogger(logs)
    try {
      await register(hs.baseUrl, hs.registrationToken!, "alice", "alice-password", log)
      await register(hs.baseUrl, hs.registrationToken!, "bob", "bob-password", log)
      const alice = await login(hs.baseUrl, "alice", "alice-password", log)
      const bob = await login(hs.baseUrl, "bob", "bob-password", log)
      const alicePrepared = prepared(alice)
      const bobPrepared = prepared(bob)
      await alice.startClient({ initialSyncLimit: 10 })
      await bob.startClient({ initialSyncLimit: 10 })
      await Promise.all([alicePrepared, bobPrepared])

      const { room_id: roomId } = await alice.createRoom({
        visibility: sdk.Visibility.Public,
        preset: sdk.Preset.PublicChat,
        name: "interop",
        room_alias_name: "interop"
      })
      const directory = await bob.publicRooms({})
      assert.include(
        directory.chunk.map((r) => r.room_id),
        roomId
      )
      const joined = await bob.joinRoom("#interop:localhost")
      assert.equal(joined.roomId, roomId)

      const bobSeesAlice = messageArrives(bob, roomId, "@alice:localhost", "hello bob")
      await alice.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hello bob" })
      const atBob = await bobSeesAlice

      const aliceSeesBob = messageArrives(alice, roomId, "@bob:localhost", "hi alice")
      await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hi alice" })
      const atAlice = await aliceSeesBob

      assert.equal(atBob.getRoomId(), roomId)
      assert.equal(atAlice.getRoomId(), roomId)
      // Both clients' room models agree on who is in the room and what it is called.
      for (const client of [alice, bob]) {
        const room = client.getRoom(roomId)!
        assert.equal(room.name, "interop")
        assert.sameMembers(
          room.getJoinedMembers().map((m) => m.userId),
          ["@alice:localhost", "@bob:localhost"]
        )
      }
      // The sender's own echo arrives once, matched to its local echo by transaction id.
      const ownMessages = alice
        .getRoom(roomId)!
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getContent().body === "hello bob")
      assert.lengthOf(ownMessages, 1)
      assert.equal(ownMessages[0]!.status, null)
    } catch (e) {
      // The SDK's own complaints are the fastest route to what the server got wrong.
      console.error(logs.join("\n"))
      throw e
    }
  })
})
