/**
 * Interop: matrix-widget-api's own widget side (`WidgetApi`, the library widgets ship) against the
 * engine behind our postMessage adapter, in fake windows that structured-clone every message.
 * Its `readEventRelations` (which checks for `org.matrix.msc3869` first and sends every optional
 * parameter, `undefined` ones included), its `readRoomAccountData`, and its sticky `sendRoomEvent`
 * get the answers its types promise, or a rejection.
 */
import { createEngine, type Engine } from "@widgethost/engine"
import { WidgetApi } from "matrix-widget-api"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { attachPostMessageTransport, type PostMessageTransport } from "@widgethost/post-message"
import { asGlobalWindow, FakeFrame, FakeWindow } from "../bench/fake-window.ts"
import { approveAll, makeInMemoryHomeserver, ROOM, widgetDefinition } from "../src/index.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const HOST_ORIGIN = "https://client.example.org"
const WIDGET_ORIGIN = "https://widget.example.org"
const WIDGET_URL = `${WIDGET_ORIGIN}/index.html`
const PARENT = "$parent"
const BOB = "@bob:localhost"
const LAYOUT = "org.example.layout"

const stops: Array<() => void> = []
beforeEach(() => {
  // matrix-widget-api's PostmessageTransport logs every message it sends.
  const log = vi.spyOn(console, "log").mockImplementation(() => {})
  stops.push(() => log.mockRestore())
})
afterEach(() => {
  for (const stop of stops.splice(0).reverse()) stop()
})

/** A ready `WidgetApi` in a fake iframe of a fake host page, hosted by a fresh engine. */
const hosted = async (capabilities: ReadonlyArray<string>) => {
  const homeserver = makeInMemoryHomeserver()
  homeserver.inject({ event_id: PARENT, room_id: ROOM, sender: BOB, type: "m.room.message", content: { msgtype: "m.text", body: "vote" } })
  for (const key of ["a", "b", "c"]) homeserver.inject({ event_id: `$vote-${key}`, room_id: ROOM, sender: BOB, type: "m.reaction", content: { "m.relates_to": { rel_type: "m.annotation", event_id: PARENT, key } } })
  homeserver.roomAccountData.set(ROOM, new Map([[LAYOUT, { columns: 2 }]]))
  const engine: Engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: approveAll })
  const host = new FakeWindow(HOST_ORIGIN)
  const window = new FakeWindow(WIDGET_ORIGIN, host)
  const parent = window.parentProxy()
  const frame = new FakeFrame(window)
  const api = asGlobalWindow(window, parent, () => new WidgetApi("w1", HOST_ORIGIN))
  api.requestCapabilities([...capabilities])
  const transport: PostMessageTransport = attachPostMessageTransport({
    iframe: frame as unknown as HTMLIFrameElement,
    widgetUrl: WIDGET_URL,
    window: host as unknown as Window,
    open: (send) => engine.openSession({ widget: widgetDefinition({ url: WIDGET_URL }), send, origin: WIDGET_ORIGIN })
  })
  stops.push(() => transport.detach(), () => engine.stop(), () => (window.listeners.length = 0))
  const ready = new Promise<void>((resolve) => api.once("ready", () => resolve()))
  asGlobalWindow(window, parent, () => api.start())
  frame.load()
  await ready
  return { api, homeserver }
}

describe("matrix-widget-api's WidgetApi against the engine", () => {
  it("readEventRelations: a page, then the next one by next_batch, only receivable events", async () => {
    const { api } = await hosted(["org.matrix.msc2762.receive.event:m.reaction"])
    const first = await api.readEventRelations(PARENT, undefined, "m.annotation", undefined, 2)
    expect(first.chunk.map((e) => e.event_id)).toEqual(["$vote-c", "$vote-b"])
    expect(first.next_batch).toBe("2")
    const second = await api.readEventRelations(PARENT, ROOM, "m.annotation", "m.reaction", 2, first.next_batch)
    expect([second.chunk.map((e) => e.event_id), second.next_batch, second.prev_batch]).toEqual([["$vote-a"], undefined, "2"])
    const forwards = await api.readEventRelations(PARENT, undefined, undefined, undefined, undefined, undefined, undefined, "f")
    expect(forwards.chunk.map((e) => e.event_id)).toEqual(["$vote-a", "$vote-b", "$vote-c"])
  })

  it("readRoomAccountData: the stored entry of the approved type; another type rejects", async () => {
    const { api } = await hosted([`com.beeper.capabilities.receive.room_account_data:${LAYOUT}`])
    expect(await api.readRoomAccountData(LAYOUT)).toEqual([{ type: LAYOUT, room_id: ROOM, content: { columns: 2 } }])
    await expect(api.readRoomAccountData("m.fully_read")).rejects.toThrow(/room account data of type m\.fully_read/)
  })

  it("a sticky sendRoomEvent rejects, naming sticky_duration_ms; nothing reaches the room", async () => {
    const { api, homeserver } = await hosted(["org.matrix.msc2762.send.event:m.reaction", "org.matrix.msc4407.send.sticky_event"])
    const before = homeserver.rooms.get(ROOM)!.timeline.length
    await expect(api.sendRoomEvent("m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: PARENT, key: "d" } }, undefined, undefined, undefined, 60_000)).rejects.toThrow(/sticky_duration_ms/)
    expect(homeserver.rooms.get(ROOM)!.timeline).toHaveLength(before)
    // Without the sticky duration the same event is sent: the refusal was about the field alone.
    expect(await api.sendRoomEvent("m.reaction", { "m.relates_to": { rel_type: "m.annotation", event_id: PARENT, key: "d" } })).toMatchObject({ room_id: ROOM })
  })
})
