import { describe, expect, it } from "vitest"
import { compilePermissions, type Permissions } from "./permissions.ts"
import { RoutingIndex } from "./routing-index.ts"
import { createCoreCaches } from "./core-caches.ts"

/** Permissions whose `mayReceive` calls are counted, to measure how much work a match does. */
const counted = (approved: ReadonlyArray<string>, counter: { calls: number }): Permissions => {
  const p = compilePermissions(approved)
  return {
    ...p,
    mayReceive: (event) => {
      counter.calls++
      return p.mayReceive(event)
    }
  }
}

const sorted = (xs: ReadonlyArray<string>) => [...xs].sort()

describe("RoutingIndex", () => {
  it("does work proportional to the candidates, not to all subscribers", () => {
    const counter = { calls: 0 }
    const index = new RoutingIndex<string>()
    for (let i = 0; i < 990; i++) {
      // same type elsewhere, other types here, and state of the same type here
      const approved =
        i % 3 === 0
          ? ["m.receive.event:m.room.message"]
          : i % 3 === 1
            ? ["m.receive.event:m.reaction"]
            : ["m.receive.state_event:m.room.message"]
      index.set(`other-${i}`, counted(approved, counter), i % 3 === 0 ? `!room${i}:x` : "!hot:x")
    }
    for (let i = 0; i < 10; i++) {
      const msgtype = i < 5 ? "m.text" : "m.emote"
      index.set(`hot-${i}`, counted([`m.receive.event:m.room.message#${msgtype}`], counter), "!hot:x")
    }
    const got = index.match({ type: "m.room.message", room_id: "!hot:x", content: { msgtype: "m.text" } })
    expect(sorted(got)).toStrictEqual(["hot-0", "hot-1", "hot-2", "hot-3", "hot-4"])
    // only the 10 message subscribers indexed under (!hot:x, m.room.message) were confirmed:
    // not the 330 that receive m.room.message *state* there, nor the ones elsewhere
    expect(counter.calls).toBe(10)
  })

  it("asks each permissions object once per event, however many sessions share it", () => {
    const shared = { calls: 0 }
    const other = { calls: 0 }
    const index = new RoutingIndex<string>()
    const alike = counted(["m.receive.event:m.room.message#m.text"], shared)
    const unlike = counted(["m.receive.event:m.room.message"], other)
    // Interleaved, as sessions approved differently open in turn.
    for (let i = 0; i < 50; i++) {
      index.set(`alike-${i}`, alike, "!hot:x")
      index.set(`unlike-${i}`, unlike, "!hot:x")
    }
    expect(index.match({ type: "m.room.message", room_id: "!hot:x", content: { msgtype: "m.text" } })).toHaveLength(100)
    expect(index.match({ type: "m.room.message", room_id: "!hot:x", content: { msgtype: "m.emote" } })).toHaveLength(50)
    expect([shared.calls, other.calls]).toEqual([2, 2])
  })

  it("scopes by home room, timeline rooms and m.timeline:*", () => {
    const index = new RoutingIndex<string>()
    const receive = "m.receive.event:m.reaction"
    index.set("home", compilePermissions([receive]), "!a:x")
    index.set("timeline", compilePermissions([receive, "m.timeline:!b:x"]), "!a:x")
    index.set("both", compilePermissions([receive, "m.timeline:!a:x"]), "!a:x")
    index.set("all", compilePermissions([receive, "org.matrix.msc2762.timeline:*"]), undefined)
    index.set("homeless", compilePermissions([receive]), undefined)
    const at = (room_id: string) => sorted(index.match({ type: "m.reaction", room_id }))
    expect(at("!a:x")).toStrictEqual(["all", "both", "home", "timeline"])
    expect(at("!b:x")).toStrictEqual(["all", "timeline"])
    expect(at("!c:x")).toStrictEqual(["all"])
    expect(index.match({ type: "m.room.message", room_id: "!a:x" })).toStrictEqual([])
  })

  it("re-indexes on set and forgets on delete", () => {
    const index = new RoutingIndex<string>()
    const event = { type: "m.room.topic", room_id: "!a:x", state_key: "" }
    index.set("w", compilePermissions(["m.receive.state_event:m.room.topic"]), "!a:x")
    expect(index.match(event)).toStrictEqual(["w"])
    index.set("w", compilePermissions(["m.receive.state_event:m.room.topic"]), "!b:x")
    expect(index.match(event)).toStrictEqual([])
    expect(index.match({ ...event, room_id: "!b:x" })).toStrictEqual(["w"])
    index.set("w", compilePermissions(["m.receive.state_event:m.room.name"]), "!b:x")
    expect(index.match({ ...event, room_id: "!b:x" })).toStrictEqual([])
    expect(index.size).toBe(1)
    index.delete("w")
    index.delete("w")
    expect(index.size).toBe(0)
    expect(index.match({ type: "m.room.name", room_id: "!b:x", state_key: "" })).toStrictEqual([])
  })

  it("matches to-device messages by type in any room", () => {
    const index = new RoutingIndex<number>()
    index.set(1, compilePermissions(["m.receive.to_device:m.call.invite"]), undefined)
    index.set(2, compilePermissions(["org.matrix.msc3819.receive.to_device:m.call.invite"]), "!a:x")
    index.set(3, compilePermissions(["m.send.to_device:m.call.invite"]), "!a:x")
    expect(index.matchToDevice("m.call.invite").sort()).toStrictEqual([1, 2])
    expect(index.matchToDevice("m.call.answer")).toStrictEqual([])
    index.delete(1)
    expect(index.matchToDevice("m.call.invite")).toStrictEqual([2])
    // to-device capabilities do not leak into room routing
    expect(index.match({ type: "m.call.invite", room_id: "!a:x" })).toStrictEqual([])
  })
})

describe("RoutingIndex entries shared through the caches", () => {
  const RECEIVE = ["m.receive.event:m.room.message"]

  it("subscribers with the same permissions and home room share one frozen entry; others do not", () => {
    const caches = createCoreCaches()
    const index = new RoutingIndex<string>(caches)
    const permissions = compilePermissions(RECEIVE, caches)
    index.set("a", permissions, "!r:x")
    index.set("b", permissions, "!r:x")
    index.set("c", permissions, "!other:x")
    index.set("d", permissions, undefined)
    const byRoom = caches.routingEntries.get(permissions)!
    expect([...byRoom.keys()]).toEqual(["!r:x", "!other:x", undefined])
    expect(Object.isFrozen(byRoom.get("!r:x"))).toBe(true)
    expect(byRoom.get("!r:x")).toEqual({ permissions, homeRoom: "!r:x" })
    // Sharing changes no answer: each is matched by its own room.
    expect(sorted(index.match({ type: "m.room.message", room_id: "!r:x" }))).toEqual(["a", "b"])
    expect(index.match({ type: "m.room.message", room_id: "!other:x" })).toEqual(["c"])
    index.delete("a")
    expect(index.match({ type: "m.room.message", room_id: "!r:x" })).toEqual(["b"])
  })

  it("keeps shared entries for a bounded number of rooms, and routes past it as before", () => {
    const caches = createCoreCaches()
    const index = new RoutingIndex<string>(caches)
    const permissions = compilePermissions(RECEIVE, caches)
    for (let i = 0; i < 300; i++) index.set(`w${i}`, permissions, `!${i}:x`)
    expect(caches.routingEntries.get(permissions)!.size).toBe(256)
    expect(index.match({ type: "m.room.message", room_id: "!0:x" })).toEqual(["w0"])
    expect(index.match({ type: "m.room.message", room_id: "!299:x" })).toEqual(["w299"])
  })

  it("without caches, nothing is shared and routing is the same", () => {
    const index = new RoutingIndex<string>()
    const permissions = compilePermissions(RECEIVE)
    index.set("a", permissions, "!r:x")
    index.set("b", permissions, "!r:x")
    expect(sorted(index.match({ type: "m.room.message", room_id: "!r:x" }))).toEqual(["a", "b"])
  })
})
