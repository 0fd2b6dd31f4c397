/**
 * The port bridge (test/src/port-bridge) over real HTTP: what a page's engine gets from the bridged
 * port is what the Node port answered, values, failures (a homeserver's error intact, so the
 * widget's `matrix_api_error` is the same) and updates alike; bad requests to the bridge are
 * refused without touching the port.
 */
import { HomeserverError, type HomeserverUpdate } from "@widgethost/core"
import { forbidden, makeInMemoryHomeserver } from "@widgethost/testing"
import { Cause, Effect, Exit, Option } from "effect"
import { EventSource } from "undici"
import { afterEach, assert, describe, it, vi } from "vitest"
import { connectPortBridge } from "../src/port-bridge/client.ts"
import { startPortBridge } from "../src/port-bridge/server.ts"

const ROOM = "!room:localhost"
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const setUp = async () => {
  const node = makeInMemoryHomeserver({ rooms: [ROOM], deviceId: "NODEDEVICE" })
  const bridge = await startPortBridge(node)
  cleanups.push(() => bridge.close())
  const page = await connectPortBridge(bridge.url, EventSource as unknown as typeof globalThis.EventSource)
  cleanups.push(() => page.close())
  return { node, bridge, page }
}

/** The call's failure (undefined when it succeeded or died instead). */
const failureOf = async <A>(effect: Effect.Effect<A, HomeserverError>) => {
  const exit = await Effect.runPromiseExit(effect)
  return Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined
}

describe("port bridge", () => {
  it("the bridged port is the Node port's account, and answers with its values", async () => {
    const { node, page } = await setUp()
    assert.deepEqual([page.userId, page.deviceId], [node.userId, "NODEDEVICE"])
    const sent = await Effect.runPromise(page.sendEvent({ _tag: "SendEvent", roomId: ROOM, type: "m.room.topic", stateKey: "", content: { topic: "bridged" } }))
    assert.equal(sent.roomId, ROOM)
    assert.match(sent.eventId ?? "", /^\$/)
    assert.deepEqual(await Effect.runPromise(page.rtcTransports()), node.rtc as Record<string, unknown>)
    assert.deepEqual(await Effect.runPromise(page.joinedRooms()), [ROOM])
    // The optional state key stays omitted (JSON would have made it null).
    const state = await Effect.runPromise(page.readState(ROOM, "m.room.topic"))
    assert.deepEqual(state.map((e) => e.content), [{ topic: "bridged" }])
    assert.isUndefined((node.calls.find((c) => c.method === "readState")?.args as { stateKey?: unknown }).stateKey)
    // A void method, and an absent value, come back undefined.
    assert.isUndefined(await Effect.runPromise(page.sendToDevice({ _tag: "SendToDevice", type: "m.test", encrypted: false, messages: {} })))
    assert.isUndefined(await Effect.runPromise(page.readRoomAccountData(ROOM, "m.nothing")))
  })

  it("files cross the bridge as bytes both ways: an upload's Blob, a download's bytes and type", async () => {
    const { node, page } = await setUp()
    const blob = new Blob([new Uint8Array([0, 1, 254, 255])], { type: "application/x-test" })
    const { contentUri } = await Effect.runPromise(page.uploadFile({ _tag: "UploadFile", file: { body: blob, size: blob.size, contentType: blob.type } }))
    const mediaId = contentUri.replace("mxc://localhost/", "")
    assert.deepEqual(node.media.get(mediaId), { data: new Uint8Array([0, 1, 254, 255]), contentType: "application/x-test" })
    const downloaded = await Effect.runPromise(page.downloadFile({ _tag: "DownloadFile", serverName: "localhost", mediaId }))
    assert.instanceOf(downloaded.data, Uint8Array)
    assert.deepEqual(downloaded, { data: new Uint8Array([0, 1, 254, 255]), contentType: "application/x-test" })
    assert.deepEqual(await Effect.runPromise(page.mediaConfig()), node.mediaConfigBody)
  })

  it("a homeserver's error comes back as the same HomeserverError", async () => {
    const { node, page } = await setUp()
    const error = forbidden()
    node.failNext("sendEvent", error)
    const got = await failureOf(page.sendEvent({ _tag: "SendEvent", roomId: ROOM, type: "m.room.message", content: {} }))
    assert.instanceOf(got, HomeserverError)
    assert.deepEqual({ message: got?.message, http: got?.http }, { message: error.message, http: error.http })
  })

  it("the Node port's updates reach the page's subscribers", async () => {
    const { node, page } = await setUp()
    const seen: Array<HomeserverUpdate> = []
    const unsubscribe = page.subscribe((update) => seen.push(update))
    node.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:localhost", content: { body: "over the bridge" } })
    node.injectToDevice({ type: "m.test", sender: "@bob:localhost", content: { n: 1 }, encrypted: false })
    await vi.waitFor(() => assert.lengthOf(seen, 2))
    assert.equal(seen[0]?._tag === "RoomEvent" ? seen[0].event.content["body"] : undefined, "over the bridge")
    assert.deepEqual(seen[1], { _tag: "ToDevice", event: { type: "m.test", sender: "@bob:localhost", content: { n: 1 }, encrypted: false } })
    unsubscribe()
  })

  it("an unreachable bridge fails the call with a HomeserverError, not a throw", async () => {
    const { bridge, page } = await setUp()
    await bridge.close()
    const got = await failureOf(page.joinedRooms())
    assert.instanceOf(got, HomeserverError)
    assert.match(got?.message ?? "", /port bridge unreachable/)
    assert.isUndefined(got?.http)
  })

  it("refuses bad requests without calling the port", async () => {
    const { node, bridge } = await setUp()
    const post = async (path: string, body: string) => {
      const res = await fetch(`${bridge.url}${path}`, { method: "POST", body })
      return { status: res.status, body: (await res.json()) as { errcode?: string } }
    }
    assert.deepInclude(await post("/call/notAMethod", "[]"), { status: 404 })
    assert.deepInclude(await post("/call/subscribe", "[]"), { status: 404 })
    assert.deepInclude(await post("/call/joinedRooms", "{}"), { status: 400 })
    assert.deepInclude(await post("/call/joinedRooms", "not json"), { status: 400 })
    assert.equal((await fetch(`${bridge.url}/call/joinedRooms`)).status, 404, "calls are POSTs")
    assert.isEmpty(node.calls)
  })
})
