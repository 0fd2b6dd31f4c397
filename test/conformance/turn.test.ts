/** Conformance: MSC3846 TURN servers, on simulated time through the engine's shared poller. */
import { HomeserverError } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, forbidden, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const creds = (n: number, ttl = 100) => ({ uris: [`turn:turn${n}.example.com:3478?transport=udp`], username: `u${n}`, password: `p${n}`, ttl })
const updates = (h: Harness) => Harness.requests(h.take()).filter((m) => m.action === "update_turn_servers").map((m) => m.data)
const turnCalls = (h: Harness) => h.homeserver.calls.filter((c) => c.method === "turnServers").length

const watching = async (capability = "m.turn_servers", homeserver = makeInMemoryHomeserver()) => {
  const h = new Harness({ approver: approveAll, homeserver })
  await h.ready([capability])
  h.take()
  return h
}

describe("MSC3846", () => {
  it("MSC3846 examples: watch answers {} and pushes update_turn_servers with uris, username and password", async () => {
    const h = await watching()
    const request = { api: "fromWidget", widgetId: "w1", requestid: "generated-id-1234", action: "watch_turn_servers", data: {} }
    h.session.receive(request)
    await flush()
    const out = h.take()
    expect(out[0]).toEqual({ ...request, response: {} })
    expect(out[1]).toMatchObject({
      api: "toWidget",
      action: "update_turn_servers",
      data: { uris: ["turn:turn.example.com:3478?transport=udp"], username: "1443779631:@user:example.com", password: "JlKfBy1QwLrO20385QyAtEyIv0=" }
    })
    const unwatch = { ...request, action: "unwatch_turn_servers" }
    h.session.receive(unwatch)
    expect(h.take()).toEqual([{ ...unwatch, response: {} }])
  })

  it("the unstable capability works too; without either the actions are refused", async () => {
    const unstable = await watching("town.robin.msc3846.turn_servers")
    expect(unstable.responseTo(unstable.request("watch_turn_servers"))).toBeUndefined()
    await flush()
    expect(updates(unstable)).toHaveLength(1)
    const none = await watching("m.send.event:m.room.message")
    expect(none.responseTo(none.request("watch_turn_servers"))).toMatchObject({ error: { message: stringContaining("TURN") } })
    expect(none.responseTo(none.request("unwatch_turn_servers"))).toMatchObject({ error: {} })
  })

  it("refreshes before expiry over several TTL cycles (20% of the TTL early, at most 60 s)", async () => {
    const hs = makeInMemoryHomeserver()
    hs.turn = [creds(1), creds(2), creds(3), creds(4)]
    const h = await watching("m.turn_servers", hs)
    h.request("watch_turn_servers")
    await flush()
    expect(updates(h).map((d) => (d as { username: string }).username)).toEqual(["u1"])
    await h.advance(79_000)
    expect(updates(h)).toEqual([])
    await h.advance(1_000) // 100 s TTL: refreshed at 80 s
    expect(updates(h).map((d) => (d as { username: string }).username)).toEqual(["u2"])
    await h.advance(80_000)
    expect(updates(h).map((d) => (d as { username: string }).username)).toEqual(["u3"])
    expect(turnCalls(h)).toBe(3)
  })

  it("one homeserver call for many watchers; polling stops when nobody watches", async () => {
    const hs = makeInMemoryHomeserver()
    hs.turn = [creds(1), creds(2)]
    const first = await watching("m.turn_servers", hs)
    const others = await Promise.all([1, 2, 3].map(async () => {
      const h = new Harness({ approver: approveAll, homeserver: hs, engine: first.engine, clock: first.clock, widget: { id: `w${Math.random()}` } })
      await h.ready(["m.turn_servers"])
      h.take()
      return h
    }))
    for (const h of [first, ...others]) h.request("watch_turn_servers")
    await flush()
    expect(turnCalls(first)).toBe(1)
    for (const h of [first, ...others]) expect(updates(h)).toHaveLength(1)
    await first.advance(80_000)
    expect(turnCalls(first)).toBe(2)
    for (const h of [first, ...others]) expect(updates(h)).toHaveLength(1)
    for (const h of [first, ...others]) h.request("unwatch_turn_servers")
    await first.advance(200_000)
    expect(turnCalls(first)).toBe(2)
  })

  it("closing a session stops its updates", async () => {
    const hs = makeInMemoryHomeserver()
    hs.turn = [creds(1), creds(2), creds(3)]
    const h = await watching("m.turn_servers", hs)
    h.request("watch_turn_servers")
    await flush()
    h.take()
    h.session.close()
    await h.advance(200_000)
    expect(updates(h)).toEqual([])
    expect(h.engine.turnPoller.watching).toBe(0)
  })

  it("403 from the homeserver: the watch request gets the error with matrix_api_error", async () => {
    const hs = makeInMemoryHomeserver()
    hs.turn = [forbidden()]
    const h = await watching("m.turn_servers", hs)
    const id = h.request("watch_turn_servers")
    await flush()
    expect(h.responseTo(id)).toMatchObject({ error: { message: "Forbidden", matrix_api_error: { http_status: 403, response: { errcode: "M_FORBIDDEN" } } } })
    expect(updates(h)).toEqual([])
  })

  it("outage: back off and retry; when credentials expire meanwhile, push empty uris, then fresh ones on recovery", async () => {
    const hs = makeInMemoryHomeserver()
    const outage = new HomeserverError({ message: "Bad gateway", http: { status: 502, headers: {}, url: "/turn", body: { errcode: "M_UNKNOWN" } } })
    hs.turn = [creds(1), outage, outage, outage, outage, outage, outage, creds(2)]
    const h = await watching("m.turn_servers", hs)
    h.request("watch_turn_servers")
    await flush()
    expect(updates(h)).toHaveLength(1)
    await h.advance(80_000) // refresh fails: retries at +1 s, +2 s, +4 s, +8 s ...
    expect(updates(h)).toEqual([])
    await h.advance(20_000) // credentials expired at 100 s
    expect(updates(h)).toEqual([{ uris: [], username: "", password: "" }])
    await h.advance(60_000)
    expect(updates(h).map((d) => (d as { username: string }).username)).toEqual(["u2"])
  })

  it("a homeserver without TURN yields an update with empty uris", async () => {
    const hs = makeInMemoryHomeserver()
    hs.turn = [{ uris: [], username: "", password: "", ttl: 0 }]
    const h = await watching("m.turn_servers", hs)
    h.request("watch_turn_servers")
    await flush()
    expect(updates(h)).toEqual([{ uris: [], username: "", password: "" }])
  })

  it("watching twice has no further effect", async () => {
    const h = await watching()
    h.request("watch_turn_servers")
    await flush()
    const second = h.request("watch_turn_servers")
    await flush()
    const out = h.take()
    expect(h.responseTo(second, out)).toEqual({})
    expect(Harness.requests(out).filter((m) => m.action === "update_turn_servers")).toHaveLength(1)
    expect(turnCalls(h)).toBe(1)
  })
})
