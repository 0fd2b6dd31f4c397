/**
 * The demo room's power levels on the embedded homeserver: a joined member (not the creator) may
 * send the demo's state events (widget definitions and layout, MatrixRTC memberships), and still
 * not the rest of the room's state; a room of an earlier run, made before this, is brought up to
 * the same levels on the next start.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { DEMO_MEMBER_STATE, demoWidgetContent, DEMO_WIDGETS, ensureDemoPowerLevels, ensureDemoRoom } from "./demo-room.ts"

let hs: EmbeddedHomeserver | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
})

const put = async (base: string, token: string, path: string, body: unknown) => {
  const res = await fetch(`${base}/_matrix/client/v3${path}`, { method: path.startsWith("/join") ? "POST" : "PUT", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}
const state = (roomId: string, type: string, key: string) => `/rooms/${encodeURIComponent(roomId)}/state/${type}/${encodeURIComponent(key)}`

/** What a joined member sends, and whether the room takes it (200) or refuses it (403). */
const MEMBER_SENDS = (pageOrigin: string, userId: string): ReadonlyArray<readonly [string, string, unknown, 200 | 403]> => [
  ["im.vector.modular.widgets", "bobs-chat", { ...demoWidgetContent(pageOrigin, DEMO_WIDGETS[0]), id: "bobs-chat" }, 200],
  ["m.widget", "bobs-chat", { ...demoWidgetContent(pageOrigin, DEMO_WIDGETS[0]), id: "bobs-chat" }, 200],
  ["io.element.widgets.layout", "", { widgets: { chat: { container: "top" } } }, 200],
  ["org.matrix.msc3401.call.member", `_${userId}_DEVICE`, { application: "m.call", call_id: "", device_id: "DEVICE", scope: "m.room" }, 200],
  ["m.call.member", userId, { memberships: [] }, 200],
  // not opened up: the room's own settings stay with moderators
  ["m.room.name", "", { name: "bob's room now" }, 403],
  ["m.room.topic", "", { topic: "taken over" }, 403],
  ["m.room.power_levels", "", { users: { [userId]: 100 } }, 403]
]

describe("the demo room: joined users may send the state events the demo widgets use", () => {
  it("a new demo room: bob joins and sends widget and MatrixRTC state; the room's settings stay refused", async () => {
    hs = await startEmbeddedHomeserver({ registration: "open" })
    const host = await hs.createUser("widgethost", "pw-widgethost")
    const bob = await hs.createUser("bob", "pw-bob")
    const roomId = await ensureDemoRoom(hs.baseUrl, host.accessToken, undefined)
    expect((await put(hs.baseUrl, bob.accessToken, `/join/${encodeURIComponent(roomId)}`, {})).status).toBe(200)
    for (const [type, key, content, want] of MEMBER_SENDS("http://127.0.0.1:40001", bob.userId)) {
      const { status, body } = await put(hs.baseUrl, bob.accessToken, state(roomId, type, key), content)
      expect({ type, status, errcode: body["errcode"] }).toEqual({ type, status: want, errcode: want === 200 ? undefined : "M_FORBIDDEN" })
    }
    // Already at the wanted levels: nothing to change.
    expect(await ensureDemoPowerLevels(hs.baseUrl, host.accessToken, roomId)).toBe(false)
  })

  it("a demo room of an earlier run (made without these levels) is brought up to them on the next start", async () => {
    hs = await startEmbeddedHomeserver({ registration: "open" })
    const host = await hs.createUser("widgethost", "pw-widgethost")
    const bob = await hs.createUser("bob", "pw-bob")
    const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: { authorization: `Bearer ${host.accessToken}`, "content-type": "application/json" }, body: JSON.stringify({ preset: "public_chat" }) })
    const roomId = ((await created.json()) as { room_id: string }).room_id
    await put(hs.baseUrl, bob.accessToken, `/join/${encodeURIComponent(roomId)}`, {})
    const widget = state(roomId, "im.vector.modular.widgets", "bobs-chat")
    expect((await put(hs.baseUrl, bob.accessToken, widget, { id: "bobs-chat" })).status).toBe(403)

    expect(await ensureDemoRoom(hs.baseUrl, host.accessToken, roomId)).toBe(roomId)
    expect((await put(hs.baseUrl, bob.accessToken, widget, { id: "bobs-chat" })).status).toBe(200)
    const levels = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.power_levels/`, { headers: { authorization: `Bearer ${host.accessToken}` } })
    const { events, state_default } = (await levels.json()) as { events: Record<string, number>; state_default: number }
    expect(Object.fromEntries(DEMO_MEMBER_STATE.map((t) => [t, events[t]]))).toEqual(Object.fromEntries(DEMO_MEMBER_STATE.map((t) => [t, 0])))
    expect({ state_default, name: events["m.room.name"], powerLevels: events["m.room.power_levels"] }).toEqual({ state_default: 50, name: 50, powerLevels: 100 })
  })
})
