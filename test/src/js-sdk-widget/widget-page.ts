/**
 * matrix-js-sdk's embedded client as a widget page, run in Chromium inside the host page's iframe
 * (`../element-call/host-page.ts`): `createRoomWidgetClient` on matrix-widget-api's `WidgetApi`
 * over postMessage, unchanged, as a widget built on the js-sdk ships it. It reads the parameters
 * the host templates into its URL fragment (Element Call's names), starts the client and keeps
 * what it saw on `window.__widget` for the test, with the calls the test makes through it.
 */
import * as sdk from "matrix-js-sdk"
import { WidgetApi } from "matrix-widget-api"

// matrix-js-sdk calls Promise.withResolvers, which this Chromium has; the guard keeps it honest
// should an older one run the test.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== "function") throw new Error("this browser lacks Promise.withResolvers")

const params = new URLSearchParams(location.hash.slice(2))
const param = (name: string) => {
  const value = params.get(name)
  if (value === null) throw new Error(`widget page: missing #?${name}=`)
  return value
}
const roomId = param("roomId")
const userId = param("userId")

const api = new WidgetApi(param("widgetId"), new URL(param("parentUrl")).origin)
const client = sdk.createRoomWidgetClient(
  api,
  {
    sendEvent: ["m.room.message"],
    receiveEvent: ["m.room.message"],
    sendState: [{ eventType: "m.room.topic", stateKey: "" }],
    receiveState: [
      { eventType: "m.room.name", stateKey: "" },
      { eventType: "m.room.topic", stateKey: "" }
    ],
    sendToDevice: ["org.example.ping"],
    receiveToDevice: ["org.example.ping"],
    turnServers: true
  },
  roomId,
  { baseUrl: param("baseUrl"), userId, deviceId: param("deviceId") },
  true
)

const seen = {
  syncStates: [] as Array<string>,
  messages: [] as Array<{ sender: string; body: string }>,
  toDevice: [] as Array<{ type: string; sender: string; content: unknown }>,
  turnServers: [] as Array<{ urls: ReadonlyArray<string>; username?: string }>
}
client.on(sdk.ClientEvent.Sync, (state) => void seen.syncStates.push(state))
client.on(sdk.RoomEvent.Timeline, (event) => {
  if (event.getType() === "m.room.message") seen.messages.push({ sender: event.getSender() ?? "", body: String(event.getContent()["body"]) })
})
client.on(sdk.ClientEvent.ToDeviceEvent, (event) => void seen.toDevice.push({ type: event.getType(), sender: event.getSender() ?? "", content: event.getContent() }))
client.on(sdk.ClientEvent.TurnServers, (servers) => void seen.turnServers.push(...servers.map((s) => ({ urls: [s.urls].flat(), username: s.username }))))

const widget = {
  seen,
  roomName: () => client.getRoom(roomId)?.currentState.getStateEvents("m.room.name", "")?.getContent()["name"] as string | undefined,
  history: async () => (await api.readRoomEvents("m.room.message", 10)).map((e) => (e.content as { body?: string }).body),
  sendMessage: (body: string) => client.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body }),
  setTopic: (topic: string) => client.sendStateEvent(roomId, "m.room.topic" as never, { topic } as never, ""),
  ping: (to: { userId: string; deviceId: string }, n: number) => client.queueToDevice({ eventType: "org.example.ping", batch: [{ ...to, payload: { n } }] })
}
Object.assign(window, { __widget: widget })
await client.startClient()
