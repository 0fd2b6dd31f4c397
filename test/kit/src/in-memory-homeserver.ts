/**
 * A homeserver port backed by memory: rooms with state and timelines, to-device queues and a
 * scriptable TURN endpoint. It answers synchronously (inside Effects) and publishes the server
 * echo of every event it accepts, like a sync loop would. For unit tests and benchmarks; the
 * real thing is the embedded homeserver behind the HTTP adapter.
 */
import { Effect } from "effect"
import {
  type DownloadedFile,
  HomeserverError,
  type HomeserverPort,
  HomeserverPortTypeId,
  type HomeserverUpdate,
  type ReadEventsPage,
  type ReadEventsQuery,
  type RelationsPage,
  type RelationsQuery,
  type RoomEvent,
  type RtcLivekitEndpoint,
  type ToDeviceEvent,
  type TurnServers
} from "@widgethost/core"

export interface InMemoryHomeserver extends HomeserverPort {
  readonly rooms: Map<string, { timeline: RoomEvent[]; state: Map<string, RoomEvent> }>
  /** Every request the engine made, in order, for assertions. */
  readonly calls: Array<{ readonly method: string; readonly args: unknown }>
  /** Injects an event as if another user sent it (published to subscribers). */
  readonly inject: (event: Omit<RoomEvent, "event_id" | "origin_server_ts"> & Partial<Pick<RoomEvent, "event_id" | "origin_server_ts">>) => RoomEvent
  readonly injectToDevice: (event: ToDeviceEvent) => void
  /**
   * Appends an encrypted event this account cannot decrypt: never published (the real ports hold
   * it back), never returned by `readEvents`, but counted in its pages' `withheld`.
   */
  readonly injectUndecryptable: (roomId: string, sender?: string) => RoomEvent
  /** Queue of scripted answers for turnServers(); the last one repeats. */
  turn: Array<TurnServers | HomeserverError>
  /** The users a directory search may find (matched by id or display name, case-insensitively). */
  directory: Array<{ readonly user_id: string; readonly display_name?: string }>
  /** The account's room account data: room id → type → content. */
  readonly roomAccountData: Map<string, Map<string, Readonly<Record<string, unknown>>>>
  /** What rtcTransports() answers: a response body, or the homeserver's error. */
  rtc: Readonly<Record<string, unknown>> | HomeserverError
  /** What rtcLivekit() answers, per MSC4195 endpoint: a response body, or the homeserver's error. */
  readonly livekit: Map<RtcLivekitEndpoint, Readonly<Record<string, unknown>> | HomeserverError>
  /** What mediaConfig() answers (`m.upload.size`: the upload limit uploadFile enforces too). */
  mediaConfigBody: Readonly<Record<string, unknown>>
  /** The media repository: media id (of server `localhost`) → the file as uploaded. */
  readonly media: Map<string, DownloadedFile>
  /** Make the next calls of a method fail with this error. */
  failNext: (method: string, error: HomeserverError, times?: number) => void
  readonly toDeviceSent: Array<{ type: string; encrypted: boolean; messages: unknown }>
}

export const forbidden = (url = "/_matrix/client/v3/voip/turnServer") =>
  new HomeserverError({ message: "Forbidden", http: { status: 403, headers: {}, url, body: { errcode: "M_FORBIDDEN", error: "Forbidden" } } })

export const makeInMemoryHomeserver = (options: { userId?: string; deviceId?: string; rooms?: ReadonlyArray<string> } = {}): InMemoryHomeserver => {
  const userId = options.userId ?? "@alice:localhost"
  const rooms = new Map<string, { timeline: RoomEvent[]; state: Map<string, RoomEvent> }>()
  for (const roomId of options.rooms ?? ["!room:localhost"]) rooms.set(roomId, { timeline: [], state: new Map() })
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  const calls: InMemoryHomeserver["calls"] = []
  const failures = new Map<string, { error: HomeserverError; times: number }>()
  let counter = 0
  let ts = 1_700_000_000_000

  const room = (roomId: string) => {
    let r = rooms.get(roomId)
    if (r === undefined) rooms.set(roomId, (r = { timeline: [], state: new Map() }))
    return r
  }
  const publish = (update: HomeserverUpdate) => {
    for (const listener of listeners) listener(update)
  }
  const append = (event: RoomEvent): RoomEvent => {
    const r = room(event.room_id)
    r.timeline.push(event)
    if (event.state_key !== undefined) r.state.set(`${event.type}\u0000${event.state_key}`, event)
    publish({ _tag: "RoomEvent", event })
    return event
  }
  const guard = <A>(method: string, args: unknown, run: () => A): Effect.Effect<A, HomeserverError> =>
    Effect.suspend(() => {
      calls.push({ method, args })
      const failure = failures.get(method)
      if (failure !== undefined && failure.times > 0) {
        failure.times--
        return Effect.fail(failure.error)
      }
      return Effect.succeed(run())
    })
  /** `guard` for calls whose answer is itself an effect (it may fail, or wait). */
  const guardEffect = <A>(method: string, args: unknown, run: () => Effect.Effect<A, HomeserverError>): Effect.Effect<A, HomeserverError> =>
    Effect.flatMap(guard(method, args, () => undefined), run)

  const undecryptable = new Set<string>()
  const page = (query: ReadEventsQuery): ReadEventsPage => {
    const matches = (event: RoomEvent) => {
      if (event.type !== query.type) return false
      if (query.stateKey === undefined) return event.state_key === undefined && (query.msgtype === undefined || event.content.msgtype === query.msgtype)
      return event.state_key !== undefined && (query.stateKey === true || event.state_key === query.stateKey)
    }
    // Offsets count the matches and the undecryptable events, which the server cannot tell apart.
    const candidates = room(query.roomId).timeline.filter((event) => undecryptable.has(event.event_id) || matches(event))
    const ordered = query.dir === "b" ? [...candidates].reverse() : candidates
    const start = query.from === undefined ? 0 : Number(query.from)
    const events: Array<RoomEvent> = []
    let withheld = 0
    let next = start
    for (; next < ordered.length && events.length < query.limit; next++) {
      const event = ordered[next]!
      if (undecryptable.has(event.event_id)) withheld++
      else events.push(event)
    }
    return { events, ...(next < ordered.length ? { end: String(next) } : {}), ...(withheld > 0 ? { withheld } : {}) }
  }

  /**
   * `/relations` over the timeline: children whose `m.relates_to.event_id` is the parent, newest
   * first unless `dir` is `f`. Tokens are offsets into that ordering (`to` is where a page stops).
   */
  const relations = (query: RelationsQuery): RelationsPage => {
    const related = room(query.roomId).timeline.filter((event) => {
      const rel = event.content["m.relates_to"] as { event_id?: unknown; rel_type?: unknown } | undefined
      return (
        rel?.event_id === query.eventId &&
        (query.relType === undefined || rel.rel_type === query.relType) &&
        (query.eventType === undefined || event.type === query.eventType)
      )
    })
    const ordered = query.dir === "f" ? related : [...related].reverse()
    const start = query.from === undefined ? 0 : Number(query.from)
    const stop = query.to === undefined ? ordered.length : Math.min(Number(query.to), ordered.length)
    const events = ordered.slice(start, Math.min(stop, start + (query.limit ?? 5)))
    const next = start + events.length
    return { events, ...(next < stop ? { nextBatch: String(next) } : {}), ...(query.from === undefined ? {} : { prevBatch: query.from }) }
  }

  const mediaError = (status: number, errcode: string, error: string, url: string) => new HomeserverError({ message: error, http: { status, headers: {}, url, body: { errcode, error } } })
  /** A Blob's bytes cannot be read synchronously; the answer waits for them like a real upload. */
  const bytesOf = (body: Uint8Array | Blob): Effect.Effect<Uint8Array> =>
    body instanceof Uint8Array ? Effect.succeed(Uint8Array.from(body)) : Effect.promise(() => body.arrayBuffer()).pipe(Effect.map((buffer) => new Uint8Array(buffer)))

  /** A server without MSC4195 (the default): its 404 for the stable path. */
  const unrecognizedLivekit = (endpoint: RtcLivekitEndpoint) => mediaError(404, "M_UNRECOGNIZED", "Unrecognized request", `/_matrix/client/v1/rtc/livekit/${endpoint}`)

  const port: InMemoryHomeserver = {
    [HomeserverPortTypeId]: HomeserverPortTypeId,
    userId,
    deviceId: options.deviceId ?? "DEVICE",
    rooms,
    calls,
    toDeviceSent: [],
    turn: [{ uris: ["turn:turn.example.com:3478?transport=udp"], username: "1443779631:@user:example.com", password: "JlKfBy1QwLrO20385QyAtEyIv0=", ttl: 86_400 }],
    directory: [],
    roomAccountData: new Map(),
    rtc: { rtc_transports: [{ type: "livekit", livekit_service_url: "https://livekit-jwt.example.org" }] },
    livekit: new Map(),
    failNext: (method, error, times = 1) => void failures.set(method, { error, times }),
    inject: (event) => append({ event_id: `$injected${counter++}`, origin_server_ts: ts++, ...event }),
    injectToDevice: (event) => publish({ _tag: "ToDevice", event }),
    injectUndecryptable: (roomId, sender = "@bob:localhost") => {
      const event: RoomEvent = { type: "m.room.encrypted", event_id: `$undecryptable${counter++}`, room_id: roomId, sender, origin_server_ts: ts++, content: { algorithm: "m.megolm.v1.aes-sha2", ciphertext: "AwgA", session_id: "unknown" } }
      undecryptable.add(event.event_id)
      room(roomId).timeline.push(event)
      return event
    },
    sendEvent: (request) =>
      guard("sendEvent", request, () => {
        if (request.delayMs !== undefined) return { roomId: request.roomId, delayId: `delay${counter++}` }
        const event = append({
          type: request.type,
          event_id: `$event${counter++}`,
          room_id: request.roomId,
          sender: userId,
          origin_server_ts: ts++,
          content: request.content,
          ...(request.stateKey === undefined ? {} : { state_key: request.stateKey })
        })
        return { roomId: request.roomId, eventId: event.event_id }
      }),
    redact: (request) =>
      guard("redact", request, () => {
        const event = append({ type: "m.room.redaction", event_id: `$event${counter++}`, room_id: request.roomId, sender: userId, origin_server_ts: ts++, content: { redacts: request.eventId }, redacts: request.eventId })
        return { roomId: request.roomId, eventId: event.event_id }
      }),
    readEvents: (query) => guard("readEvents", query, () => page(query)),
    readRelations: (query) => guard("readRelations", query, () => relations(query)),
    readRoomAccountData: (roomId, type) => guard("readRoomAccountData", { roomId, type }, () => port.roomAccountData.get(roomId)?.get(type)),
    readState: (roomId, type, stateKey) =>
      guard("readState", { roomId, type, stateKey }, () => [...room(roomId).state.values()].filter((e) => e.type === type && (stateKey === undefined || e.state_key === stateKey))),
    sendToDevice: (request) => guard("sendToDevice", request, () => void port.toDeviceSent.push({ type: request.type, encrypted: request.encrypted, messages: request.messages })),
    joinedRooms: () => guard("joinedRooms", undefined, () => [...rooms.keys()]),
    userDirectorySearch: (request) =>
      guard("userDirectorySearch", request, () => {
        const term = request.searchTerm.toLowerCase()
        const found = port.directory.filter((u) => u.user_id.toLowerCase().includes(term) || (u.display_name?.toLowerCase().includes(term) ?? false))
        const limit = request.limit ?? 10
        return { limited: found.length > limit, results: found.slice(0, limit) }
      }),
    updateDelayedEvent: (request) => guard("updateDelayedEvent", request, () => undefined),
    requestOpenIdToken: () =>
      guard("requestOpenIdToken", undefined, () => ({ access_token: `openid${counter++}`, token_type: "Bearer", matrix_server_name: "localhost", expires_in: 3600 })),
    mediaConfigBody: { "m.upload.size": 1024 * 1024 },
    media: new Map(),
    mediaConfig: () => guard("mediaConfig", undefined, () => port.mediaConfigBody),
    uploadFile: (request) =>
      guardEffect("uploadFile", request, () => {
        const limit = port.mediaConfigBody["m.upload.size"]
        if (typeof limit === "number" && request.file.size > limit) return Effect.fail(mediaError(413, "M_TOO_LARGE", "Upload too large", "/_matrix/media/v3/upload"))
        return bytesOf(request.file.body).pipe(
          Effect.map((data) => {
            const mediaId = `media${counter++}`
            port.media.set(mediaId, { data, ...(request.file.contentType === undefined ? {} : { contentType: request.file.contentType }) })
            return { contentUri: `mxc://localhost/${mediaId}` }
          })
        )
      }),
    downloadFile: (request) =>
      guardEffect("downloadFile", request, () => {
        const file = request.serverName === "localhost" ? port.media.get(request.mediaId) : undefined
        return file === undefined ? Effect.fail(mediaError(404, "M_NOT_FOUND", "Not found", `/_matrix/client/v1/media/download/${request.serverName}/${request.mediaId}`)) : Effect.succeed(file)
      }),
    rtcLivekit: (request) =>
      Effect.suspend(() => {
        calls.push({ method: "rtcLivekit", args: request })
        const answer = port.livekit.get(request.endpoint) ?? unrecognizedLivekit(request.endpoint)
        return answer instanceof HomeserverError ? Effect.fail(answer) : Effect.succeed(answer)
      }),
    rtcTransports: () =>
      Effect.suspend(() => {
        calls.push({ method: "rtcTransports", args: undefined })
        return port.rtc instanceof HomeserverError ? Effect.fail(port.rtc) : Effect.succeed(port.rtc)
      }),
    turnServers: () =>
      Effect.suspend(() => {
        calls.push({ method: "turnServers", args: undefined })
        const next = port.turn.length > 1 ? port.turn.shift()! : port.turn[0]!
        return next instanceof HomeserverError ? Effect.fail(next) : Effect.succeed(next)
      }),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    }
  }
  return port
}
