/**
 * matrix-js-sdk as a widget (issue #20): its embedded client (`createRoomWidgetClient`, on
 * matrix-widget-api's `WidgetApi`) runs unchanged in Node over our websocket transport, through
 * the widget kit's window shim, hosted by our engine on the embedded homeserver. It reaches
 * SYNCING, gets the room state through `update_state`, hears a live message another account
 * sends, reads history, sends a message and a state event that the other account sees, and
 * exchanges clear to-device messages with it both ways; in an encrypted room, it exchanges
 * Olm-encrypted to-device messages with a js-sdk peer on Rust crypto (the host encrypts and
 * decrypts: the widget holds no keys). The Chromium twin, over postMessage, is
 * `js-sdk-widget-mode-browser.test.ts`.
 */
import * as sdk from "matrix-js-sdk"
import type { RoomWidgetClient } from "matrix-js-sdk/lib/embedded.js"
import { WidgetApi } from "matrix-widget-api"
import { WebSocket } from "ws"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import type { WidgetDefinition } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { approveAll } from "@widgethost/testing"
import { startWebsocketTransport } from "@widgethost/websocket"
import { installWidgetWindow, type WebSocketConstructor, websocketTransport } from "@widgethost/widget-client"
import { waitUntil } from "../src/engine-fixture.ts"
import { quietLogger, silenceJsSdk } from "../src/js-sdk-logger.ts"
import { fromEffectPort } from "@widgethost/core/effect"

// matrix-js-sdk calls Promise.withResolvers (Node 22); polyfilled for this test only.
beforeAll(() => {
  const P = Promise as unknown as { withResolvers?: () => unknown }
  P.withResolvers ??= () => {
    let resolve: unknown, reject: unknown
    const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    return { promise, resolve, reject }
  }
})
// The SDK's loggers, matrix-widget-api's console.log of every message and the Rust crypto's
// tracing go to `sdkLogs`, printed when a test fails.
const sdkLogs: Array<string> = []
silenceJsSdk(sdkLogs)

const homeservers: Array<EmbeddedHomeserver> = []
const cleanups: Array<() => unknown> = []
afterEach(async (context) => {
  if (context.task.result?.state === "fail") process.stderr.write(`${sdkLogs.slice(-100).join("\n")}\n`)
  sdkLogs.length = 0
  for (const cleanup of cleanups.splice(0).reverse()) await (async () => cleanup())().catch(() => undefined)
  for (const hs of homeservers.splice(0)) await hs.close()
})

const waitUntilAsync = async (what: string, cond: () => Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const authed = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" })

/**
 * Alice's account hosts the js-sdk's embedded client as a widget (our engine, our websocket
 * transport, the kit's window shim) in a public room with Bob, who said one thing before the
 * widget started; resolves once the client is SYNCING.
 */
const hostJsSdkWidget = async (options: { readonly encrypted?: boolean } = {}) => {
  const hs = await startEmbeddedHomeserver({ registration: "open" })
  homeservers.push(hs)
  const alice = await hs.ensureUser("alice", "alice-password")
  const bob = await hs.ensureUser("bob", "bob-password")
  const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: authed(alice.accessToken), body: JSON.stringify({ preset: "public_chat", name: "Widget room", ...(options.encrypted === true ? { initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] } : {}) }) })
  const { room_id: roomId } = (await created.json()) as { room_id: string }
  await fetch(`${hs.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { method: "POST", headers: authed(bob.accessToken), body: "{}" })
  const bobSays = (body: string) =>
    fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Math.random()}`, { method: "PUT", headers: authed(bob.accessToken), body: JSON.stringify({ msgtype: "m.text", body }) })
  await bobSays("before the widget")

  // The host: alice's account, our engine, our websocket transport.
  const portErrors: Array<unknown> = []
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { accessToken: alice.accessToken, deviceId: alice.deviceId, userId: alice.userId }, sync: { timeoutMs: 1000 }, onError: (e) => portErrors.push(e) })
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

  return { hs, alice, bob, roomId, client, api, bobSays, portErrors }
}

describe("matrix-js-sdk in widget mode over the websocket transport", { timeout: 60_000 }, () => {
  it("reaches SYNCING, gets room state and live events, reads history, and sends what another account sees", async () => {
    const { hs, alice, bob, roomId, client, api, bobSays } = await hostJsSdkWidget()
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
    const bobSync = async () => ((await (await fetch(`${hs.baseUrl}/_matrix/client/v3/sync?timeout=2000`, { headers: authed(bob.accessToken) })).json()) as { to_device?: { events: Array<unknown> } }).to_device?.events ?? []
    const bobGot = await bobSync()
    expect(bobGot).toEqual([{ type: "org.example.ping", sender: alice.userId, content: { n: 2 } }])
  })

  it("exchanges encrypted to-device messages with a matrix-js-sdk peer on Rust crypto, both ways", async () => {
    // An encrypted room: each side tracks the other's devices, as clients sharing one do (Rust
    // crypto rejects an Olm message whose sender's device it does not know).
    const { alice, bob, client, portErrors } = await hostJsSdkWidget({ encrypted: true })
    // Bob as a real client: his own device keys, Olm sessions and decryption.
    // What reaches Bob's device on the wire (his /sync), before his crypto decrypts it.
    const bobWire: Array<{ type: string; sender: string }> = []
    const fetchFn: typeof fetch = async (input, init) => {
      const res = await fetch(input, init)
      if ((input instanceof Request ? input.url : input.toString()).includes("/sync")) {
        const body = (await res.clone().json()) as { to_device?: { events?: Array<{ type: string; sender: string }> } }
        for (const e of body.to_device?.events ?? []) if (e.sender === alice.userId) bobWire.push({ type: e.type, sender: e.sender })
      }
      return res
    }
    const bobClient = sdk.createClient({ baseUrl: homeservers[0]!.baseUrl, userId: bob.userId, accessToken: bob.accessToken, deviceId: bob.deviceId, logger: quietLogger(sdkLogs), fetchFn })
    await bobClient.initRustCrypto({ useIndexedDB: false })
    cleanups.push(() => bobClient.stopClient())
    const bobReceived: Array<{ type: string; content: unknown }> = []
    bobClient.on(sdk.ClientEvent.ToDeviceEvent, (event) => {
      if (event.getType() === "org.example.ping") bobReceived.push({ type: event.getType(), content: event.getContent() })
    })
    const prepared = new Promise<void>((resolve) => bobClient.on(sdk.ClientEvent.Sync, (state) => state === sdk.SyncState.Prepared && resolve()))
    await bobClient.startClient()
    await prepared
    // Bob's device keys are at the homeserver (the SDK uploads them after its first sync).
    const hs = homeservers[0]!
    await waitUntilAsync("Bob's device keys", async () => {
      const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/keys/query`, { method: "POST", headers: authed(alice.accessToken), body: JSON.stringify({ device_keys: { [bob.userId]: [] } }) })
      const keys = (await res.json()) as { device_keys?: Record<string, Record<string, unknown>> }
      return keys.device_keys?.[bob.userId]?.[bob.deviceId] !== undefined
    })

    // Bob to the widget's device, encrypted by Bob's crypto; the widget hears it decrypted, marked encrypted.
    const toWidget: Array<{ type: string; sender: string; content: unknown; encrypted: boolean }> = []
    client.on(sdk.ClientEvent.ToDeviceEvent, (event) => void toWidget.push({ type: event.getType(), sender: event.getSender() ?? "", content: event.getContent(), encrypted: event.isEncrypted() }))
    const payload = await bobClient.getCrypto()!.encryptToDeviceMessages("org.example.ping", [{ userId: alice.userId, deviceId: alice.deviceId }], { n: 4 })
    expect(payload.eventType).toBe("m.room.encrypted")
    await bobClient.queueToDevice(payload)
    await waitUntil("Bob's encrypted ping at the widget", () => toWidget.length === 1, 20_000, () => portErrors.map(String))
    expect(toWidget).toEqual([{ type: "org.example.ping", sender: bob.userId, content: { n: 4 }, encrypted: true }])
    // The widget to Bob's device, encrypted by the host's OlmMachine (the widget holds no keys).
    await (client as RoomWidgetClient).sendToDeviceViaWidgetApi("org.example.ping", true, new Map([[bob.userId, new Map([[bob.deviceId, { n: 3 }]])]]))
    await waitUntil("the widget's encrypted ping at Bob's device", () => bobReceived.length === 1, 20_000, () => portErrors.map(String))
    // The SDK hands its listeners the decrypted event; on the wire it was Olm-encrypted.
    expect(bobReceived).toEqual([{ type: "org.example.ping", content: { n: 3 } }])
    expect(bobWire).toContainEqual({ type: "m.room.encrypted", sender: alice.userId })
    expect(bobWire).not.toContainEqual({ type: "org.example.ping", sender: alice.userId })

  })
})
