import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { HomeserverError, matrixApiError } from "./homeserver-error.ts"
import { type HomeserverPort, HomeserverPortTypeId, type HomeserverUpdate, isHomeserverPort } from "./homeserver-port.ts"
import { fromEffectPort, fromPromisePort, toHomeserverPort, toPromisePort } from "./effect-port.ts"
import { type HomeserverErrorResponse, homeserverErrorFrom, type PromiseHomeserverPort } from "./promise-homeserver-port.ts"

const ROOM = "!room:example.org"

/** Rejects as the contract says a refused call does: with a plain error response, not an Error. */
// eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
const refuse = (response: HomeserverErrorResponse): Promise<never> => Promise.reject(response)
const EVENT = { type: "m.room.message", event_id: "$e", room_id: ROOM, sender: "@bob:example.org", origin_server_ts: 1, content: { body: "hi" } }

/** A Promise port whose every method records its arguments and resolves with a fixed value. */
const recordingPort = () => {
  const calls: Array<[string, ReadonlyArray<unknown>]> = []
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  const answer =
    <A>(method: string, value: A) =>
    async (...args: ReadonlyArray<unknown>): Promise<A> => {
      calls.push([method, args])
      return value
    }
  const port: PromiseHomeserverPort = {
    userId: "@alice:example.org",
    deviceId: "ALICE",
    sendEvent: answer("sendEvent", { roomId: ROOM, eventId: "$sent" }),
    redact: answer("redact", { roomId: ROOM, eventId: "$redaction" }),
    readEvents: answer("readEvents", { events: [EVENT], end: "next" }),
    readState: answer("readState", [{ ...EVENT, type: "m.room.topic", state_key: "" }]),
    sendToDevice: answer("sendToDevice", undefined),
    turnServers: answer("turnServers", { uris: ["turn:t.example.org"], username: "u", password: "p", ttl: 60 }),
    rtcTransports: answer("rtcTransports", { rtc_transports: [] }),
    rtcLivekit: answer("rtcLivekit", { jwt: "the-jwt" }),
    userDirectorySearch: answer("userDirectorySearch", { limited: false, results: [] }),
    readRelations: answer("readRelations", { events: [EVENT], nextBatch: "more" }),
    readRoomAccountData: answer("readRoomAccountData", { theme: "dark" }),
    requestOpenIdToken: answer("requestOpenIdToken", { access_token: "t", token_type: "Bearer", matrix_server_name: "example.org", expires_in: 3600 }),
    updateDelayedEvent: answer("updateDelayedEvent", undefined),
    joinedRooms: answer("joinedRooms", [ROOM]),
    mediaConfig: answer("mediaConfig", { "m.upload.size": 10 }),
    uploadFile: answer("uploadFile", { contentUri: "mxc://example.org/up" }),
    downloadFile: answer("downloadFile", { data: new Uint8Array([1, 2]), contentType: "image/png" }),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    }
  }
  return { port, calls, listeners }
}

/** The effect's failure; a success (or a defect) rejects, failing the test. */
const failureOf = <A>(effect: Effect.Effect<A, HomeserverError>): Promise<HomeserverError> => Effect.runPromise(Effect.flip(effect))

/** A port whose sendEvent does `fail` (throws, rejects, ...). */
const failingSend = (fail: () => Promise<never>): HomeserverPort => fromPromisePort({ ...recordingPort().port, sendEvent: fail })
const send = (port: HomeserverPort) => port.sendEvent({ _tag: "SendEvent", roomId: ROOM, type: "m.room.message", content: {} })

describe("fromPromisePort: values", () => {
  it("every method passes its arguments through and resolves with the port's value", async () => {
    const { port, calls } = recordingPort()
    const effectPort = fromPromisePort(port)
    const sendRequest = { _tag: "SendEvent", roomId: ROOM, type: "m.room.message", content: { body: "x" }, delayMs: 5 } as const
    const query = { roomId: ROOM, type: "m.room.message", limit: 3, dir: "b" } as const
    const toDevice = { _tag: "SendToDevice", type: "org.example", encrypted: true, messages: { "@bob:example.org": { "*": { a: 1 } } } } as const
    const upload = { _tag: "UploadFile", file: { body: new Uint8Array([7]), size: 1, contentType: "text/plain" } } as const
    const download = { _tag: "DownloadFile", serverName: "example.org", mediaId: "abc", timeoutMs: 5 } as const
    const results = await Effect.runPromise(
      Effect.all([
        effectPort.sendEvent(sendRequest),
        effectPort.redact({ _tag: "Redact", roomId: ROOM, eventId: "$e", reason: "spam" }),
        effectPort.readEvents(query),
        effectPort.readState(ROOM, "m.room.topic", ""),
        effectPort.sendToDevice(toDevice),
        effectPort.turnServers(),
        effectPort.rtcTransports(),
        effectPort.userDirectorySearch({ _tag: "UserDirectorySearch", searchTerm: "bo", limit: 2 }),
        effectPort.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: "d1", action: "restart" }),
        effectPort.joinedRooms(),
        effectPort.mediaConfig(),
        effectPort.uploadFile(upload),
        effectPort.downloadFile(download)
      ])
    )
    expect(results).toEqual([
      { roomId: ROOM, eventId: "$sent" },
      { roomId: ROOM, eventId: "$redaction" },
      { events: [EVENT], end: "next" },
      [{ ...EVENT, type: "m.room.topic", state_key: "" }],
      undefined,
      { uris: ["turn:t.example.org"], username: "u", password: "p", ttl: 60 },
      { rtc_transports: [] },
      { limited: false, results: [] },
      undefined,
      [ROOM],
      { "m.upload.size": 10 },
      { contentUri: "mxc://example.org/up" },
      { data: new Uint8Array([1, 2]), contentType: "image/png" }
    ])
    expect(calls).toEqual([
      ["sendEvent", [sendRequest]],
      ["redact", [{ _tag: "Redact", roomId: ROOM, eventId: "$e", reason: "spam" }]],
      ["readEvents", [query]],
      ["readState", [ROOM, "m.room.topic", ""]],
      ["sendToDevice", [toDevice]],
      ["turnServers", []],
      ["rtcTransports", []],
      ["userDirectorySearch", [{ _tag: "UserDirectorySearch", searchTerm: "bo", limit: 2 }]],
      ["updateDelayedEvent", [{ _tag: "UpdateDelayedEvent", delayId: "d1", action: "restart" }]],
      ["joinedRooms", []],
      ["mediaConfig", []],
      ["uploadFile", [upload]],
      ["downloadFile", [download]]
    ])
    expect([effectPort.userId, effectPort.deviceId]).toEqual(["@alice:example.org", "ALICE"])
  })

  it("calls the method only when the effect runs, once per run", async () => {
    const { port, calls } = recordingPort()
    const effect = fromPromisePort(port).joinedRooms()
    expect(calls).toHaveLength(0)
    await Effect.runPromise(effect)
    await Effect.runPromise(effect)
    expect(calls).toHaveLength(2)
  })

  it("subscribe passes updates through and unsubscribes", () => {
    const { port, listeners } = recordingPort()
    const seen: Array<HomeserverUpdate> = []
    const unsubscribe = fromPromisePort(port).subscribe((update) => seen.push(update))
    for (const listener of listeners) listener({ _tag: "RoomEvent", event: EVENT })
    unsubscribe()
    expect(seen).toEqual([{ _tag: "RoomEvent", event: EVENT }])
    expect(listeners.size).toBe(0)
  })

  it("is marked as the Effect-native port; toHomeserverPort converts only what is not", () => {
    const { port } = recordingPort()
    const converted = toHomeserverPort(port)
    expect(isHomeserverPort(port)).toBe(false)
    expect(isHomeserverPort(converted)).toBe(true)
    expect(converted[HomeserverPortTypeId]).toBe(HomeserverPortTypeId)
    expect(toHomeserverPort(converted)).toBe(converted)
  })
})

describe("fromPromisePort: failures", () => {
  it("a plain error response becomes the homeserver's error, as the widget's matrix_api_error", async () => {
    const failure = await failureOf(
      send(
        failingSend(() =>
          refuse({
            status: 429,
            errcode: "M_LIMIT_EXCEEDED",
            error: "Too many requests",
            headers: { "Retry-After": "2", "X-Internal": "dropped" },
            url: "https://hs.example.org/_matrix/client/v3/rooms/x/send/m.room.message/1",
            body: { retry_after_ms: 2000, errcode: "overridden" }
          })
        )
      )
    )
    expect(failure).toBeInstanceOf(HomeserverError)
    expect(failure.message).toBe("sendEvent failed with 429 M_LIMIT_EXCEEDED: Too many requests")
    expect(matrixApiError(failure)).toEqual({
      http_status: 429,
      http_headers: { "retry-after": "2" },
      url: "https://hs.example.org/_matrix/client/v3/rooms/x/send/m.room.message/1",
      response: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: 2000 }
    })
  })

  it("the least error response: status and errcode; no headers, url empty", async () => {
    const failure = await failureOf(send(failingSend(() => refuse({ status: 403, errcode: "M_FORBIDDEN" }))))
    expect(failure.message).toBe("sendEvent failed with 403 M_FORBIDDEN")
    expect(failure.http).toEqual({ status: 403, headers: {}, url: "", body: { errcode: "M_FORBIDDEN" } })
  })

  it("a HomeserverError thrown by the port stays as it is", async () => {
    const original = new HomeserverError({ message: "as built", http: { status: 404, headers: {}, url: "/x", body: { errcode: "M_NOT_FOUND" } } })
    expect(await failureOf(send(failingSend(() => Promise.reject(original))))).toBe(original)
  })

  it.each([
    { name: "an Error: its message, no http", thrown: new Error("socket hang up"), message: "socket hang up" },
    { name: "an Error without a message: the method, no detail", thrown: new TypeError(""), message: "sendEvent failed unexpectedly" },
    { name: "a string: the method and the string", thrown: "offline", message: "sendEvent failed: offline" },
    { name: "a number", thrown: 42, message: "sendEvent failed unexpectedly" },
    { name: "undefined", thrown: undefined, message: "sendEvent failed unexpectedly" },
    { name: "null", thrown: null, message: "sendEvent failed unexpectedly" },
    { name: "an object that is no error response (its content is not shown)", thrown: { secret: "token" }, message: "sendEvent failed unexpectedly" },
    { name: "a status out of range", thrown: { status: 42, errcode: "M_UNKNOWN" }, message: "sendEvent failed unexpectedly" },
    { name: "a status that is no integer", thrown: { status: "404", errcode: "M_NOT_FOUND" }, message: "sendEvent failed unexpectedly" },
    { name: "an errcode that is no string", thrown: { status: 404, errcode: 7 }, message: "sendEvent failed unexpectedly" }
  ])("a rejection with $name is a failure without an answer", async ({ thrown, message }) => {
    const failure = await failureOf(send(failingSend(() => Promise.reject(thrown as Error))))
    expect(failure).toBeInstanceOf(HomeserverError)
    expect([failure.message, failure.http]).toEqual([message, undefined])
  })

  it("a method that throws synchronously fails the effect; it never throws at the caller", async () => {
    const port = failingSend(() => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- the contract's plain error response, thrown synchronously
      throw { status: 400, errcode: "M_BAD_JSON", error: "nope" }
    })
    const effect = send(port)
    expect((await failureOf(effect)).http?.status).toBe(400)
    const plain = failingSend(() => {
      throw new RangeError("sync")
    })
    expect((await failureOf(send(plain))).message).toBe("sync")
  })

  it("a method that returns a plain value instead of a promise still answers", async () => {
    const { port } = recordingPort()
    const sloppy = fromPromisePort({ ...port, joinedRooms: (() => [ROOM]) as unknown as PromiseHomeserverPort["joinedRooms"] })
    expect(await Effect.runPromise(sloppy.joinedRooms())).toEqual([ROOM])
  })

  it("homeserverErrorFrom names the method in what it builds", () => {
    expect(homeserverErrorFrom({ status: 404, errcode: "M_NOT_FOUND", error: "no" }, "readState").message).toBe("readState failed with 404 M_NOT_FOUND: no")
  })
})

describe("fromEffectPort", () => {
  it("every method resolves with the Effect port's value (round trip through fromPromisePort)", async () => {
    const { port, calls } = recordingPort()
    const back = fromEffectPort(fromPromisePort(port))
    expect(await back.sendEvent({ _tag: "SendEvent", roomId: ROOM, type: "m.room.message", content: {} })).toEqual({ roomId: ROOM, eventId: "$sent" })
    expect(await back.readState(ROOM, "m.room.topic", "")).toEqual([{ ...EVENT, type: "m.room.topic", state_key: "" }])
    expect(await back.readRoomAccountData(ROOM, "m.theme")).toEqual({ theme: "dark" })
    expect(await back.joinedRooms()).toEqual([ROOM])
    expect(calls.map(([method, args]) => [method, args.length])).toEqual([
      ["sendEvent", 1],
      ["readState", 3],
      ["readRoomAccountData", 2],
      ["joinedRooms", 0]
    ])
    expect([back.userId, back.deviceId]).toEqual(["@alice:example.org", "ALICE"])
  })

  it("a failing effect rejects with its HomeserverError, as it is", async () => {
    const error = new HomeserverError({ message: "no", http: { status: 403, headers: {}, url: "/x", body: { errcode: "M_FORBIDDEN" } } })
    const effectPort: HomeserverPort = { ...fromPromisePort(recordingPort().port), sendEvent: () => Effect.fail(error) }
    await expect(fromEffectPort(effectPort).sendEvent({ _tag: "SendEvent", roomId: ROOM, type: "m.room.message", content: {} })).rejects.toBe(error)
  })

  it("an effect that dies rejects with a HomeserverError that names no detail", async () => {
    const effectPort: HomeserverPort = { ...fromPromisePort(recordingPort().port), joinedRooms: () => Effect.die(new Error("internal state")) }
    const failure: unknown = await fromEffectPort(effectPort).joinedRooms().catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(HomeserverError)
    expect([(failure as HomeserverError).message, (failure as HomeserverError).http]).toEqual(["The homeserver adapter failed unexpectedly", undefined])
  })

  it("calls the port's method when called (a method replaced later is the one called); a throw is not caught", () => {
    const effectPort: { -readonly [K in keyof HomeserverPort]: HomeserverPort[K] } = { ...fromPromisePort(recordingPort().port) }
    const promisePort = fromEffectPort(effectPort)
    effectPort.joinedRooms = () => {
      throw new TypeError("port bug")
    }
    expect(() => promisePort.joinedRooms()).toThrow("port bug")
  })

  it("subscribe passes through; toPromisePort converts only an Effect-native port", () => {
    const { port, listeners } = recordingPort()
    const seen: Array<HomeserverUpdate> = []
    const unsubscribe = fromEffectPort(fromPromisePort(port)).subscribe((update) => seen.push(update))
    for (const listener of listeners) listener({ _tag: "RoomEvent", event: EVENT })
    unsubscribe()
    expect([seen, listeners.size]).toEqual([[{ _tag: "RoomEvent", event: EVENT }], 0])
    expect(toPromisePort(port)).toBe(port)
    expect(isHomeserverPort(toPromisePort(fromPromisePort(port)))).toBe(false)
  })
})
