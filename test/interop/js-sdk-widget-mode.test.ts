/**
 * matrix-js-sdk as a widget (issue #20): its embedded client (`createRoomWidgetClient`, on
 * matrix-widget-api's `WidgetApi`) runs unchanged in Node over our websocket transport, through
 * the widget kit's window shim, hosted by our engine on the embedded homeserver. It reaches
 * SYNCING, gets the room state through `update_state`, hears a live message another account
 * sends, reads history, sends a message and a state event that the other account sees, and
 * exchanges clear to-device messages with it both ways.
 */
import * as sdk from "matrix-js-sdk"
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js"
import { WidgetApi } from "matrix-widget-api"
import { WebSocket } from "ws"
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import type { WidgetDefinition } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { approveAll } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { installWidgetWindow, type WebSocketConstructor, websocketTransport } from "@widgethost/widget-client"
import { waitUntil } from "../src/engine-fixture.ts"
import { fromEffectPort } from "@widgethost/core/effect"

// matrix-js-sdk calls Promise.withResolvers (Node 22); polyfilled for this test only.
beforeAll(() => {
  const P = Promise as unknown as { withResolvers?: () => unknown }
  P.withResolvers ??= () => {
    let resolve: unknown, reject: unknown
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    return { promise, resolve, reject }
  }
  sdkGlobalLogger.setLevel("silent", false)
  // matrix-widget-api logs every message it sends with console.log.
  vi.spyOn(console, "log").mockImplementation(() => undefined)
})
afterAll(() => vi.restoreAllMocks())

let hs: EmbeddedHomeserver | undefined
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await (async () => cleanup())().catch(() => undefined)
  await hs?.close()
  hs = undefined
})

const authed = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" })

describe("matrix-js-sdk in widget mode over the websocket transport", { timeout: 60_000 }, () => {
  it("reaches SYNCING, gets room state and live events, reads history, and sends what another account sees", async () => {
    hs = await startEmbeddedHomeserver({ registration: "open" })
    const alice = await hs.ensureUser("alice", "alice-password")
    const bob = await hs.ensureUser("bob", "bob-password")
    const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: authed(alice.accessToken), body: JSON.stringify({ preset: "public_chat", name: "Widget room" }) })
    const { room_id: roomId } = (await created.json()) as { room_id: string }
    await fetch(`${hs.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { method: "POST", headers: authed(bob.accessToken), body: "{}" })
    const bobSays = (body: string) =>
      fetch(`${hs!.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Math.random()}`, { method: "PUT", headers: authed(bob.accessToken), body: JSON.stringify({ msgtype: "m.text", body }) })
    await bobSays("before the widget")

    // The host: alice's account, our engine, our websocket transport.
    const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { accessToken: alice.accessToken, deviceId: alice.deviceId, userId: alice.userId }, sync: { timeoutMs: 1000 } })
    const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
    const firstSync = port.nextSync()
    port.start()
    await firstSync
    const transport = await startWebsocketTransport()
    cleanups.push(() => port.stop(), () => engine.stop(), () => transport.close())
    const widget: WidgetDefinition = { id: "js-sdk", kind: "room", roomId, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }
    const { uri } = transport.register(widget.id, (send) => engine.openSession({ widget, send, waitForIframeLoad: false }))

    // The widget: the js-sdk's embedded client, unchanged, over the websocket.
    const socket = await websocketTransport(uri, { WebSocket: WebSocket as unknown as WebSocketConstructor })
    cleanups.push(installWidgetWindow(socket), () => socket.close())
    const api = new WidgetApi(widget.id)
    // sendEvent/receiveEvent, not sendMessage/receiveMessage: true, which asks for
    // `m.room.message#`, a filter on the empty msgtype that matrix-widget-api's host reads so too.
    const client = sdk.createRoomWidgetClient(
      api,
      { sendEvent: ["m.room.message"], receiveEvent: ["m.room.message"], sendToDevice: ["org.example.ping"], receiveToDevice: ["org.example.ping"], sendState: [{ eventType: "m.room.topic", stateKey: "" }], receiveState: [{ eventType: "m.room.name", stateKey: "" }, { eventType: "m.room.topic", stateKey: "" }] },
      roomId,
      { baseUrl: hs.baseUrl, userId: alice.userId, deviceId: alice.deviceId },
      true
    )
    cleanups.push(() => client.stopClient())
    let syncState: string | null = null
    client.on(sdk.ClientEvent.Sync, (state) => (syncState = state))
    await client.startClient()
    await waitUntil("SYNCING", () => syncState === sdk.SyncState.Syncing)

    // Room state arrived through update_state.
    await waitUntil("the room's name", () => client.getRoom(roomId)?.currentState.getStateEvents("m.room.name", "")?.getContent()["name"] === "Widget room")

    // A live message from bob.
    const heard: Array<string> = []
    client.on(sdk.RoomEvent.Timeline, (event) => {
      if (event.getType() === "m.room.message" && event.getSender() === bob.userId) heard.push(event.getContent()["body"] as string)
    })
    await bobSays("live")
    await waitUntil("bob's live message", () => heard.includes("live"))

    // History, through read_events.
    const history = await api.readRoomEvents("m.room.message", 10)
    expect(history.map((e) => (e.content as { body?: string }).body)).toContain("before the widget")

    // What the widget sends, bob sees.
    await client.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "from the js-sdk widget" })
    await client.sendStateEvent(roomId, "m.room.topic" as never, { topic: "set by the widget" } as never, "")
    const messages = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, { headers: authed(bob.accessToken) })
    const chunk = ((await messages.json()) as { chunk: Array<{ type: string; sender: string; content: Record<string, unknown> }> }).chunk
    expect(chunk.some((e) => e.type === "m.room.message" && e.sender === alice.userId && e.content["body"] === "from the js-sdk widget")).toBe(true)
    const topic = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic/`, { headers: authed(bob.accessToken) })
    expect(await topic.json()).toEqual({ topic: "set by the widget" })

    // To-device, clear, both ways: bob to alice's device reaches the widget; the widget's reaches bob.
    const toDevice: Array<unknown> = []
    client.on(sdk.ClientEvent.ToDeviceEvent, (event) => toDevice.push([event.getType(), event.getSender(), event.getContent()]))
    await fetch(`${hs.baseUrl}/_matrix/client/v3/sendToDevice/org.example.ping/${Math.random()}`, { method: "PUT", headers: authed(bob.accessToken), body: JSON.stringify({ messages: { [alice.userId]: { [alice.deviceId]: { n: 1 } } } }) })
    await waitUntil("bob's to-device message", () => toDevice.length === 1)
    expect(toDevice).toEqual([["org.example.ping", bob.userId, { n: 1 }]])
    await client.queueToDevice({ eventType: "org.example.ping", batch: [{ userId: bob.userId, deviceId: bob.deviceId, payload: { n: 2 } }] })
    // Bob's own /sync: the first one without a token carries what waits for his device.
    const bobSync = async () => ((await (await fetch(`${hs!.baseUrl}/_matrix/client/v3/sync?timeout=2000`, { headers: authed(bob.accessToken) })).json()) as { to_device?: { events: Array<unknown> } }).to_device?.events ?? []
    const bobGot = await bobSync()
    expect(bobGot).toEqual([{ type: "org.example.ping", sender: alice.userId, content: { n: 2 } }])
  })
})
