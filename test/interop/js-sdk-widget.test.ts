/**
 * A real Matrix client talks to an engine-hosted widget (issue #6): matrix-js-sdk 36 registers
 * and logs in on the embedded homeserver and joins a (clear) room in which the engine's account,
 * through its HTTP homeserver port, hosts a scripted widget on real timers. Messages go both
 * ways: the client's message reaches the widget as a toWidget `send_event`; the widget's
 * fromWidget `send_event` reaches the client through its own /sync, in its room timeline.
 */
import * as sdk from "matrix-js-sdk"
import type { Logger } from "matrix-js-sdk/lib/logger.js"
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { quietLogger } from "../src/js-sdk-logger.ts"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { createEngine } from "@widgethost/engine"
import { RealtimeWidget, roomWidget, waitUntil } from "../src/engine-fixture.ts"
import { approveAll } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"


// Modules of the SDK that log through its global logger or a child made when they load (sync,
// RTC) are silenced for the run; the client's own logger collects into `logs` below.
type Level = Parameters<typeof sdkGlobalLogger.setLevel>[0]
const moduleLoggers = [sdkGlobalLogger, sdkGlobalLogger.withPrefix("MatrixRTCSessionManager")]
let levels: Array<number> = []
beforeAll(() => {
  levels = moduleLoggers.map((l) => l.getLevel())
  for (const l of moduleLoggers) l.setLevel("silent", false)
})
afterAll(() => moduleLoggers.forEach((l, i) => l.setLevel(levels[i] as Level, false)))

let hs: EmbeddedHomeserver | undefined
const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await (async () => c())().catch(() => undefined)
  await hs?.close()
  hs = undefined
})

/** Registers through user-interactive auth as a client does (401 with flows, then the registration token), then logs in. */
const registerAndLogin = async (baseUrl: string, token: string, username: string, password: string, log: Logger): Promise<sdk.MatrixClient> => {
  const anon = sdk.createClient({ baseUrl, logger: log })
  let session: string | undefined
  try {
    await anon.registerRequest({ username, password })
    throw new Error("registration without auth should have asked for user-interactive auth")
  } catch (e) {
    if (!(e instanceof sdk.MatrixError) || e.httpStatus !== 401) throw e
    session = (e.data as { session?: string }).session
  }
  await anon.registerRequest({ username, password, auth: { type: sdk.AuthType.RegistrationToken, token, ...(session !== undefined && { session }) } })
  const res = await anon.loginRequest({ type: "m.login.password", identifier: { type: "m.id.user", user: username }, password })
  const client = sdk.createClient({ baseUrl, userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id, logger: log })
  cleanups.push(() => client.stopClient())
  return client
}

const prepared = (client: sdk.MatrixClient, timeoutMs = 30_000): Promise<void> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${client.getUserId()} never reached PREPARED`)), timeoutMs)
    client.on(sdk.ClientEvent.Sync, (state) => {
      if (state === sdk.SyncState.Prepared) {
        clearTimeout(timer)
        resolve()
      }
    })
  })

/** Resolves with the first live timeline event in `roomId` matching `pred`. */
const timelineEvent = (client: sdk.MatrixClient, roomId: string, what: string, pred: (event: sdk.MatrixEvent) => boolean, timeoutMs = 30_000): Promise<sdk.MatrixEvent> =>
  new Promise((resolve, reject) => {
    const onTimeline = (event: sdk.MatrixEvent, room: sdk.Room | undefined) => {
      if (room?.roomId !== roomId || !pred(event)) return
      clearTimeout(timer)
      client.off(sdk.RoomEvent.Timeline, onTimeline)
      resolve(event)
    }
    const timer = setTimeout(() => {
      client.off(sdk.RoomEvent.Timeline, onTimeline)
      reject(new Error(`${client.getUserId()} never saw ${what}`))
    }, timeoutMs)
    client.on(sdk.RoomEvent.Timeline, onTimeline)
  })

describe("matrix-js-sdk and an engine-hosted widget on the embedded homeserver", { timeout: 120_000 }, () => {
  it("the client's message reaches the widget; the widget's message reaches the client's room timeline", async () => {
    hs = await startEmbeddedHomeserver()
    const logs: Array<string> = []
    const log = quietLogger(logs)
    try {
      // The engine's side: an account with its own HTTP port, an engine subscribed before start().
      await hs.ensureUser("widgethost", "widgethost-password")
      const errors: Array<unknown> = []
      const port = await connectHomeserver({
        baseUrl: hs.baseUrl,
        auth: { user: "widgethost", password: "widgethost-password" },
        sync: { timeoutMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 400 },
        retry: { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 5 },
        requestTimeoutMs: 20_000,
        onError: (e) => errors.push(e)
      })
      cleanups.push(() => port.stop())
      const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
      cleanups.push(() => engine.stop())
      const { room_id: roomId } = await port.http.request<{ room_id: string }>({
        method: "POST",
        path: "/_matrix/client/v3/createRoom",
        body: { preset: "public_chat", visibility: "public", name: "widgets", room_alias_name: "widgets" }
      })
      const firstSync = port.nextSync()
      port.start()
      await firstSync

      // The client: registers, logs in, syncs, joins the room by alias.
      const carol = await registerAndLogin(hs.baseUrl, hs.registrationToken!, "carol", "carol-password", log)
      const carolPrepared = prepared(carol)
      await carol.startClient({ initialSyncLimit: 10 })
      await carolPrepared
      const joined = await carol.joinRoom("#widgets:localhost")
      expect(joined.roomId).toBe(roomId)

      const widget = new RealtimeWidget({
        engine,
        widget: roomWidget("chat", roomId),
        capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"]
      })
      await widget.ready()

      // Client → widget.
      const { event_id: fromClient } = await carol.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "hello widget" })
      await waitUntil("the widget to receive the client's message", () => widget.events().some((e) => e.event_id === fromClient), 30_000, () => widget.received)
      const atWidget = widget.events().filter((e) => e.event_id === fromClient)
      expect(atWidget).toHaveLength(1)
      expect(atWidget[0]).toMatchObject({ type: "m.room.message", room_id: roomId, sender: "@carol:localhost", content: { msgtype: "m.text", body: "hello widget" } })

      // Widget → client.
      const content = { msgtype: "m.text", body: "hello from the widget" }
      const carolSeesWidget = timelineEvent(carol, roomId, '"hello from the widget"', (e) => e.getSender() === port.userId && e.getContent()["body"] === content.body)
      const sent = await widget.call("send_event", { type: "m.room.message", content })
      expect(sent["room_id"]).toBe(roomId)
      expect(sent["event_id"]).toMatch(/^\$/)
      const atClient = await carolSeesWidget
      expect(atClient.getId()).toBe(sent["event_id"])
      expect(atClient.getType()).toBe("m.room.message")
      expect(atClient.getContent()).toEqual(content)
      expect(atClient.getRoomId()).toBe(roomId)
      // Once in the client's live timeline.
      const inTimeline = carol
        .getRoom(roomId)!
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getId() === sent["event_id"])
      expect(inTimeline).toHaveLength(1)

      // The widget also sees its own message come back once, from the homeserver.
      await waitUntil("the widget's own echo", () => widget.events().some((e) => e.event_id === sent["event_id"]))
      await port.nextSync()
      expect(widget.events().map((e) => [e.sender, e.content["body"]])).toEqual([
        ["@carol:localhost", "hello widget"],
        [port.userId, "hello from the widget"]
      ])
    } catch (e) {
      // The SDK's own complaints are the fastest route to what the server got wrong.
      console.error(logs.join("\n"))
      throw e
    }
  })
})
