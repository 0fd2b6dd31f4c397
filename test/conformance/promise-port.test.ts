/**
 * Conformance: `createEngine` hosts widgets over a `PromiseHomeserverPort` (plain async
 * functions, no Effect) exactly as over the Effect-native port: answers, the homeserver's errors
 * as `matrix_api_error`, other failures as plain errors, and the homeserver's Retry-After obeyed.
 */
import type { HomeserverErrorResponse, HomeserverUpdate, PromiseHomeserverPort, RoomEvent, TurnServers } from "@widgethost/core"
import { createEngine, type EngineFault } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { SimulatedClock } from "xstate"
import { approveAll, flush, Harness, ROOM, simulatedClock } from "../src/index.ts"
import { fromEffectPort } from "@widgethost/core/effect"
import { makeInMemoryHomeserver } from "@widgethost/testing"

/** Rejects as the contract says a refused call does: with a plain error response, not an Error. */
// eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
const refuse = (response: HomeserverErrorResponse): Promise<never> => Promise.reject(response)

const TURN: TurnServers = { uris: ["turn:turn.example.org:3478"], username: "u", password: "p", ttl: 3_600 }

/** A Promise port that accepts sends and echoes them, like a sync loop; `override` replaces methods. */
const promisePort = (override: Partial<PromiseHomeserverPort> = {}) => {
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  let counter = 0
  const port: PromiseHomeserverPort = {
    userId: "@alice:localhost",
    deviceId: "ALICE",
    sendEvent: async (request) => {
      const event: RoomEvent = { type: request.type, event_id: `$p${counter++}`, room_id: request.roomId, sender: "@alice:localhost", origin_server_ts: 1, content: request.content }
      setTimeout(() => listeners.forEach((listener) => listener({ _tag: "RoomEvent", event })))
      return { roomId: request.roomId, eventId: event.event_id }
    },
    redact: async (request) => ({ roomId: request.roomId }),
    readEvents: async () => ({ events: [] }),
    readState: async () => [],
    sendToDevice: async () => undefined,
    turnServers: async () => TURN,
    rtcTransports: async () => ({ rtc_transports: [] }),
    rtcLivekit: async () => ({ jwt: "the-jwt" }),
    userDirectorySearch: async () => ({ limited: false, results: [] }),
    readRelations: async () => ({ events: [] }),
    readRoomAccountData: async () => undefined,
    requestOpenIdToken: async () => ({ access_token: "t", token_type: "Bearer", matrix_server_name: "localhost", expires_in: 3600 }),
    updateDelayedEvent: async () => undefined,
    joinedRooms: async () => [ROOM],
    mediaConfig: async () => ({ "m.upload.size": 100 }),
    uploadFile: async () => ({ contentUri: "mxc://localhost/p" }),
    downloadFile: async () => ({ data: new Uint8Array([1]) }),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    ...override
  }
  return port
}

const hosted = async (port: PromiseHomeserverPort, capabilities: ReadonlyArray<string>) => {
  const clock = new SimulatedClock()
  const faults: Array<EngineFault> = []
  const engine = createEngine({ homeserver: port, clock: simulatedClock(clock), approver: approveAll, onError: (_, where) => faults.push(where) })
  const h = new Harness({ engine, clock })
  await h.ready(capabilities)
  h.take()
  return { h, faults }
}

const message = { type: "m.room.message", content: { msgtype: "m.text", body: "hi" } }

describe("createEngine over a PromiseHomeserverPort", () => {
  it("send_event answers the event id, and the port's echo reaches the widget", async () => {
    const { h } = await hosted(promisePort(), ["m.send.event:m.room.message", "m.receive.event:m.room.message"])
    const id = h.request("send_event", message)
    await flush()
    await new Promise((resolve) => setTimeout(resolve, 5))
    await flush()
    const out = h.take()
    expect(out.find((m) => m.requestId === id && "response" in m)).toMatchObject({ response: { room_id: ROOM, event_id: "$p0" } })
    expect(Harness.requests(out).filter((m) => m.action === "send_event").map((m) => m.data)).toMatchObject([{ event_id: "$p0", content: { body: "hi" } }])
  })

  it("an answer that arrives while a drain is due joins that drain, after the inputs that came first", async () => {
    const { h } = await hosted(promisePort(), ["m.send.event:m.room.message"])
    const sent = h.request("send_event", message)
    h.engine.flush()
    // Queued after the port's answer, but pushed before it: the drain it schedules takes both, in order.
    const versions = h.request("supported_api_versions")
    await flush()
    const replies = h.take().filter((m) => "response" in m).map((m) => m.requestId)
    expect(replies).toEqual([versions, sent])
  })

  it("a rejection with the homeserver's error response reaches the widget as matrix_api_error", async () => {
    const port = promisePort({
      sendEvent: () => refuse({ status: 403, errcode: "M_FORBIDDEN", error: "You are not allowed", url: "https://hs/_matrix/client/v3/rooms/r/send/m.room.message/1" })
    })
    const { h, faults } = await hosted(port, ["m.send.event:m.room.message"])
    const id = h.request("send_event", message)
    await flush()
    expect(h.responseTo(id)).toEqual({
      error: {
        code: "Homeserver",
        message: "sendEvent failed with 403 M_FORBIDDEN: You are not allowed",
        matrix_api_error: { http_status: 403, http_headers: {}, url: "https://hs/_matrix/client/v3/rooms/r/send/m.room.message/1", response: { errcode: "M_FORBIDDEN", error: "You are not allowed" } }
      }
    })
    expect(faults).toEqual([])
  })

  it("a synchronous throw of something else: an error without matrix_api_error, and the session serves on", async () => {
    let calls = 0
    const port = promisePort({
      sendEvent: (request) => {
        if (calls++ === 0) throw new Error("the client is not logged in")
        return Promise.resolve({ roomId: request.roomId, eventId: "$second" })
      }
    })
    const { h } = await hosted(port, ["m.send.event:m.room.message"])
    const first = h.request("send_event", message)
    await flush()
    expect(h.responseTo(first)).toEqual({ error: { code: "Homeserver", message: "the client is not logged in" } })
    const second = h.request("send_event", message)
    await flush()
    expect(h.responseTo(second)).toMatchObject({ event_id: "$second" })
  })

  it("TURN: a 429's Retry-After header holds the engine's poller back as long as it says", async () => {
    let calls = 0
    const port = promisePort({
      turnServers: () => (calls++ === 0 ? refuse({ status: 429, errcode: "M_LIMIT_EXCEEDED", headers: { "Retry-After": "7" } }) : Promise.resolve(TURN))
    })
    const { h } = await hosted(port, ["m.turn_servers"])
    h.request("watch_turn_servers")
    await flush()
    h.take()
    await h.advance(6_900)
    expect(calls).toBe(1)
    await h.advance(200)
    expect(calls).toBe(2)
    expect(Harness.requests(h.take()).filter((m) => m.action === "update_turn_servers").map((m) => m.data)).toMatchObject([{ uris: TURN.uris, username: "u" }])
  })

  it("an Effect-native port as it is: createEngine refuses it, naming fromEffectPort; converted, it hosts", async () => {
    const effectPort = makeInMemoryHomeserver({ rooms: [ROOM] })
    expect(() => createEngine({ homeserver: effectPort as unknown as PromiseHomeserverPort })).toThrow(/fromEffectPort from @widgethost\/core\/effect/)
    const { h } = await hosted(fromEffectPort(effectPort), ["m.send.event:m.room.message"])
    const id = h.request("send_event", message)
    await flush()
    expect(h.responseTo(id)).toMatchObject({ room_id: ROOM, event_id: expect.stringMatching(/^\$/) as unknown })
    expect(effectPort.calls.map((call) => call.method)).toEqual(["sendEvent"])
  })
})
