/**
 * MSC3869 `read_relations` and `com.beeper.read_room_account_data` end to end over real HTTP:
 * the engine on real timers, the HTTP homeserver port (with E2EE) and the embedded homeserver on
 * 127.0.0.1. A widget pages through an event's relations with `next_batch` until the end, in an
 * encrypted room gets the children decrypted and matched by their decrypted type, and reads room
 * account data the account stored (or learns that none is stored).
 */
import { Effect } from "effect"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { type Engine, createEngine } from "@widgethost/engine"
import { RealtimeWidget, roomWidget, startInEncryptedRoom, waitUntil } from "../src/engine-fixture.ts"
import { approveAll } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"

const fast: Partial<ConnectOptions> = {
  retry: { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 5 },
  sync: { timeoutMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 400 },
  requestTimeoutMs: 20_000
}

let hs: EmbeddedHomeserver
const cleanups: Array<() => Promise<unknown> | void> = []
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await (async () => c())().catch(() => undefined)
  await hs.close()
})

const account = async (localpart: string): Promise<{ port: MatrixHomeserver; engine: Engine }> => {
  await hs.ensureUser(localpart, `${localpart}-password`)
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: localpart, password: `${localpart}-password` }, ...fast })
  cleanups.push(() => port.stop())
  const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
  cleanups.push(() => engine.stop())
  return { port, engine }
}

const send = async (port: MatrixHomeserver, roomId: string, type: string, content: Record<string, unknown>): Promise<string> => {
  const { eventId } = await Effect.runPromise(port.sendEvent({ _tag: "SendEvent", roomId, type, content }))
  return eventId!
}

const annotation = (parent: string, key: string) => ({ "m.relates_to": { rel_type: "m.annotation", event_id: parent, key } })

type Page = { chunk?: Array<{ event_id: string; type: string; content: Record<string, unknown> }>; next_batch?: string; prev_batch?: string; error?: unknown }

/** Follows `next_batch` until the server says there is no more; every page of `limit`. */
const allPages = async (widget: RealtimeWidget, data: Record<string, unknown>): Promise<Array<Page>> => {
  const pages: Array<Page> = []
  let from: string | undefined
  do {
    const page = (await widget.call("read_relations", { ...data, ...(from === undefined ? {} : { from }) })) as Page
    pages.push(page)
    from = page.next_batch
  } while (from !== undefined && pages.length < 20)
  return pages
}

describe("read_relations and room account data over HTTP", { timeout: 120_000 }, () => {
  it("pages through an event's relations with next_batch, newest first, then forwards", async () => {
    const alice = await account("alice")
    const { room_id: roomId } = await alice.port.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
    const parent = await send(alice.port, roomId, "m.room.message", { msgtype: "m.text", body: "vote" })
    const reactions: Array<string> = []
    for (const key of ["a", "b", "c", "d", "e"]) reactions.push(await send(alice.port, roomId, "m.reaction", annotation(parent, key)))
    const threaded = await send(alice.port, roomId, "m.room.message", { msgtype: "m.text", body: "in thread", "m.relates_to": { rel_type: "m.thread", event_id: parent } })
    await send(alice.port, roomId, "m.room.message", { msgtype: "m.text", body: "unrelated" })

    const widget = new RealtimeWidget({ engine: alice.engine, widget: roomWidget("poll", roomId), capabilities: ["m.receive.event:m.reaction", "m.send.event:m.reaction"] })
    await widget.ready()
    alice.port.start()

    // Every relation, two a page; the thread message is not receivable, so it is dropped.
    const pages = await allPages(widget, { event_id: parent, limit: 2 })
    expect(pages.length).toBeGreaterThanOrEqual(3)
    expect(pages.slice(0, -1).every((p) => typeof p.next_batch === "string")).toBe(true)
    expect(pages.at(-1)!.next_batch).toBeUndefined()
    expect(pages.slice(1).every((p) => typeof p.prev_batch === "string")).toBe(true)
    const seen = pages.flatMap((p) => p.chunk!.map((e) => e.event_id))
    expect(seen).toEqual([...reactions].reverse())
    expect(seen).not.toContain(threaded)

    // Filtered on the server by relation and event type, oldest first.
    const forwards = await allPages(widget, { event_id: parent, rel_type: "m.annotation", event_type: "m.reaction", direction: "f", limit: 3 })
    expect(forwards.map((p) => p.chunk!.length)).toEqual([3, 2])
    expect(forwards.flatMap((p) => p.chunk!.map((e) => e.event_id))).toEqual(reactions)
    expect(forwards[1]!.chunk![0]!.content).toEqual(annotation(parent, "d"))

    // The widget's own reaction: answered, echoed back through /sync exactly once, and listed.
    const own = (await widget.call("send_event", { type: "m.reaction", content: annotation(parent, "f") }))["event_id"] as string
    await waitUntil("the echo of the widget's own reaction", () => widget.events().some((e) => e.event_id === own))
    await alice.port.nextSync()
    expect(widget.events().filter((e) => e.event_id === own)).toHaveLength(1)
    expect(((await widget.call("read_relations", { event_id: parent, limit: 1 })) as Page).chunk!.map((e) => e.event_id)).toEqual([own])

    // An unknown parent is the server's 404, passed through.
    expect(await widget.request("read_relations", { event_id: "$nope" })).toMatchObject({ error: { code: "Homeserver", matrix_api_error: { http_status: 404 } } })
  })

  it("in an encrypted room: children decrypted and matched by their decrypted type", async () => {
    const alice = await account("alice")
    const bob = await account("bob")
    const roomId = await startInEncryptedRoom(alice.port, bob.port)
    const widget = new RealtimeWidget({ engine: alice.engine, widget: roomWidget("poll", roomId), capabilities: ["m.receive.event:m.reaction", "m.receive.event:m.room.message"] })
    await widget.ready()
    const parent = await send(alice.port, roomId, "m.room.message", { msgtype: "m.text", body: "lunch?" })
    const votes = [await send(bob.port, roomId, "m.reaction", annotation(parent, "yes")), await send(bob.port, roomId, "m.reaction", annotation(parent, "no"))]
    const reply = await send(bob.port, roomId, "m.room.message", { msgtype: "m.text", body: "after 1", "m.relates_to": { rel_type: "m.thread", event_id: parent } })
    // Alice's port has Bob's room key once his events reached her widget decrypted.
    await waitUntil("bob's events at alice's widget", () => [...votes, reply].every((id) => widget.events().some((e) => e.event_id === id)), 60_000, () => widget.events())

    // On the wire every child is m.room.encrypted: a server-side type filter would find nothing.
    const wire = await alice.port.http.request<{ chunk: Array<{ type: string }> }>({ method: "GET", path: path`/_matrix/client/v1/rooms/${roomId}/relations/${parent}/m.annotation/m.reaction` })
    expect(wire.chunk).toEqual([])

    const typed = (await widget.call("read_relations", { event_id: parent, rel_type: "m.annotation", event_type: "m.reaction" })) as Page
    expect(typed.chunk!.map((e) => [e.event_id, e.type, e.content["m.relates_to"]])).toEqual([
      [votes[1], "m.reaction", { rel_type: "m.annotation", event_id: parent, key: "no" }],
      [votes[0], "m.reaction", { rel_type: "m.annotation", event_id: parent, key: "yes" }]
    ])
    const all = (await widget.call("read_relations", { event_id: parent })) as Page
    expect(all.chunk!.map((e) => e.event_id)).toEqual([reply, votes[1], votes[0]])
    expect(JSON.stringify(all)).not.toContain("m.room.encrypted")
    // event_type without rel_type: the path cannot carry it, the port filters.
    const messages = (await widget.call("read_relations", { event_id: parent, event_type: "m.room.message" })) as Page
    expect(messages.chunk!.map((e) => e.event_id)).toEqual([reply])
  })

  it("reads room account data the account stored; none stored is an empty list; other types are refused", async () => {
    const alice = await account("alice")
    const { room_id: roomId } = await alice.port.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: {} })
    await alice.port.http.request({ method: "PUT", path: path`/_matrix/client/v3/user/${alice.port.userId}/rooms/${roomId}/account_data/org.example.layout`, body: { columns: 2 } })
    const widget = new RealtimeWidget({
      engine: alice.engine,
      widget: roomWidget("board", roomId),
      capabilities: ["com.beeper.capabilities.receive.room_account_data:org.example.layout", "com.beeper.capabilities.receive.room_account_data:org.example.unset"]
    })
    await widget.ready()
    expect(await widget.call("com.beeper.read_room_account_data", { type: "org.example.layout" })).toEqual({ events: [{ type: "org.example.layout", room_id: roomId, content: { columns: 2 } }] })
    expect(await widget.call("com.beeper.read_room_account_data", { type: "org.example.unset" })).toEqual({ events: [] })
    expect(await widget.request("com.beeper.read_room_account_data", { type: "m.fully_read" })).toMatchObject({ error: { code: "NotAllowed" } })
    // The port itself: content, or undefined for "none set" (the server's 404 M_NOT_FOUND).
    expect(await Effect.runPromise(alice.port.readRoomAccountData(roomId, "org.example.layout"))).toEqual({ columns: 2 })
    expect(await Effect.runPromise(alice.port.readRoomAccountData(roomId, "org.example.unset"))).toBeUndefined()
    // A server without the endpoint (404 M_UNRECOGNIZED) is not "none set": the widget hears the error.
    hs.injectFault({ path: /\/account_data\/org\.example\.layout$/, times: 1, kind: { status: 404, body: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } } })
    expect(await widget.request("com.beeper.read_room_account_data", { type: "org.example.layout" })).toMatchObject({
      error: { code: "Homeserver", matrix_api_error: { http_status: 404, response: { errcode: "M_UNRECOGNIZED" } } }
    })
  })
})
