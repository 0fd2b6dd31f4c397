import { compilePermissions, createCoreCaches, type Input } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { Router } from "./router.ts"

/** The router reads the engine's table of open sessions; it keeps no set of its own. */
describe("Router over the engine's sessions", () => {
  const setup = () => {
    const sessions = new Map<string, unknown>([
      ["a", {}],
      ["b", {}]
    ])
    const told: Array<[string, Input["_tag"]]> = []
    const caches = createCoreCaches()
    const router = new Router({ deliver: (key, input) => void told.push([key, input._tag]), caches, sessions })
    return { sessions, told, router, caches }
  }

  it("a viewed-room change reaches every open session, and none that closed", () => {
    const { sessions, told, router } = setup()
    sessions.delete("b")
    router.close("b")
    sessions.set("c", {})
    router.viewedRoom("!r:x")
    expect(told).toEqual([
      ["a", "ViewedRoomChanged"],
      ["c", "ViewedRoomChanged"]
    ])
  })

  it("TURN servers and subscriptions only for sessions still open", () => {
    const { sessions, told, router, caches } = setup()
    sessions.delete("b")
    router.close("b")
    router.turnServers(["a", "b"], { uris: [], username: "u", password: "p" })
    const permissions = compilePermissions(["m.receive.event:m.room.message"], caches)
    router.subscribe("a", permissions, "!r:x")
    router.subscribe("b", permissions, "!r:x")
    router.roomEvent({ type: "m.room.message", room_id: "!r:x", event_id: "$e", sender: "@u:x", origin_server_ts: 0, content: {} })
    expect(told).toEqual([
      ["a", "TurnServers"],
      ["a", "RoomEvent"]
    ])
  })
})
