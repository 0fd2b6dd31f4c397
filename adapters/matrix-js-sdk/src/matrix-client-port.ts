/**
 * The homeserver port over a matrix-js-sdk `MatrixClient`: widgets act with the client's own
 * session, device and crypto, so a client that embeds widgets (Element-like) needs no second
 * account, sync loop or crypto store.
 *
 * What comes from where:
 * - live room events: the client's timelines (`Room.timeline`, and for the account's own sends
 *   the remote echo, `Room.localEchoUpdated`), decrypted by its crypto, ordered and deduplicated
 *   by {@link RoomFeed}; local echoes never; nothing from before the client's first sync;
 * - sends: `sendEvent` / `sendStateEvent` (the client encrypts where the room is encrypted);
 *   delayed ones (MSC4140) in the revision the server speaks (`delayed-events.ts`: the SDK's
 *   `_unstable_` calls for the 2025 query parameter, `client.http` for the delayed_event
 *   endpoints), refused in encrypted rooms for room events, which this port does not encrypt
 *   (matrix-js-sdk 36 would send them in clear); redactions: `redactEvent`;
 * - reads: `/messages` through the client, decrypted ({@link readEvents}); state from the
 *   client's room state (from `/state` for a room it does not sync);
 * - to-device: {@link sendToDevice} / {@link watchToDevice}; TURN: the client's poller
 *   ({@link turnServersOf}); RTC transports (no SDK call): `client.http`;
 * - media (MSC4039): `uploadContent`, and authenticated media for the config and downloads
 *   (`media.ts`), bytes unchanged.
 *
 * Limits: a gap the homeserver leaves in a `limited` sync stays a gap (the SDK does not fill it;
 * the HTTP port does). Call it after `initRustCrypto`: to-device provenance is read from the
 * crypto it finds.
 */
import type { HomeserverRequestOf, HomeserverUpdate, PromiseHomeserverPort, RoomEvent, SendEventResult } from "@widgethost/core"
import {
  ClientEvent,
  ClientPrefix,
  EventType,
  type MatrixClient,
  type MatrixEvent,
  MatrixEventEvent,
  Method,
  RoomEvent as SdkRoomEvent,
  SyncState
} from "matrix-js-sdk"
import { delayedEventsOf } from "./delayed-events.ts"
import { type ReadEventsOptions, readEvents } from "./read-events.ts"
import { RoomFeed, type RoomFeedOptions } from "./room-feed.ts"
import { isUnrecognised, portError, viaSdk } from "./sdk-errors.ts"
import { raw, roomEventOf } from "./sdk-event.ts"
import { readRelations, readRoomAccountData, requestOpenIdToken } from "./account-reads.ts"
import { sendToDevice, watchToDevice } from "./to-device.ts"
import { turnServersOf } from "./turn.ts"
import { downloadFile, mediaConfig, uploadFile } from "./media.ts"

export interface MatrixClientPortOptions extends RoomFeedOptions {
  readonly readEvents?: ReadEventsOptions
}

export interface MatrixClientPort extends PromiseHomeserverPort {
  /** Stops listening to the client (and puts its crypto back as it was); the client runs on. */
  readonly stop: () => void
}

/**
 * The Promise port of `client`, for `createEngine({ homeserver })`.
 *
 * @example
 * await client.initRustCrypto()
 * const engine = createEngine({ homeserver: fromMatrixClient(client), approver })
 * await client.startClient()
 */
export const fromMatrixClient = (client: MatrixClient, options: MatrixClientPortOptions = {}): MatrixClientPort => {
  const userId = client.getSafeUserId()
  const deviceId = client.getDeviceId()
  if (deviceId === null) throw new Error("fromMatrixClient: the client has no device id (create it with one, as a logged-in client has)")
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  const publish = (update: HomeserverUpdate) => {
    for (const listener of listeners) listener(update)
  }

  // Only what the client learns after its first sync is live; that sync's timelines are history.
  let live = client.isInitialSyncComplete()
  const onSync = (state: SyncState) => {
    if (state === SyncState.Prepared || state === SyncState.Syncing) live = true
  }
  const feed = new RoomFeed(
    (event) => publish({ _tag: "RoomEvent", event }),
    (event) => {
      if (client.getCrypto() === undefined) return false
      void client.decryptEventIfNeeded(event as MatrixEvent)
      return true
    },
    options
  )
  const onTimeline = (event: MatrixEvent, _room: unknown, toStartOfTimeline: boolean | undefined, removed: boolean, data: { liveEvent?: boolean }) => {
    // A local echo (status set) waits for its remote echo, below.
    if (!live || toStartOfTimeline === true || removed || data.liveEvent !== true || event.status !== null) return
    feed.push(event)
  }
  const onLocalEcho = (event: MatrixEvent) => {
    // The remote echo of the account's own send: the local echo now holds the server's event.
    if (live && event.status === null && event.getId()?.startsWith("$") === true) feed.push(event)
  }
  const onDecrypted = (event: MatrixEvent) => feed.decrypted(event)
  client.on(ClientEvent.Sync, onSync)
  client.on(SdkRoomEvent.Timeline, onTimeline)
  client.on(SdkRoomEvent.LocalEchoUpdated, onLocalEcho)
  client.on(MatrixEventEvent.Decrypted, onDecrypted)
  const stopToDevice = watchToDevice(client, publish)

  const roomIsEncrypted = async (roomId: string): Promise<boolean> => {
    const room = client.getRoom(roomId)
    if (room !== null) return room.hasEncryptionStateEvent() || ((await client.getCrypto()?.isEncryptionEnabledInRoom(roomId)) ?? false)
    try {
      await client.getStateEvent(roomId, EventType.RoomEncryption, "")
      return true
    } catch (error) {
      if ((portError(error) as { status?: unknown }).status === 404) return false
      throw portError(error)
    }
  }

  const delayed = delayedEventsOf(client)
  const sendDelayed = async (request: HomeserverRequestOf<"SendEvent">): Promise<SendEventResult> => {
    const spoken = await delayed.revision()
    if (spoken === undefined) throw new Error("This homeserver does not support delayed events (MSC4140 is not in its /versions): nothing was sent")
    if (request.stateKey === undefined && (await roomIsEncrypted(request.roomId))) {
      throw new Error("This port sends delayed room events unencrypted (matrix-js-sdk 36 has no way to encrypt them), and this room is encrypted: refused, nothing was sent")
    }
    const res = await delayed.schedule(spoken, request)
    // Never a success without its delay id: the widget would believe its event is scheduled.
    if (typeof res.delay_id !== "string") throw new Error("The homeserver did not schedule the event (no delay_id in its answer); it may have been sent at once")
    return { roomId: request.roomId, delayId: res.delay_id }
  }

  const readState = async (roomId: string, type: string, stateKey?: string): Promise<ReadonlyArray<RoomEvent>> => {
    const room = client.getRoom(roomId)
    if (room !== null && room.getMyMembership() === "join") {
      // Members may be lazily loaded: the room's state holds only those seen so far.
      if (type === (EventType.RoomMember as string)) await viaSdk(() => room.loadMembersIfNeeded())
      const state = room.currentState
      const events = stateKey === undefined ? state.getStateEvents(type) : [state.getStateEvents(type, stateKey)].filter((e) => e !== null)
      return events.map(roomEventOf).filter((e) => e !== undefined)
    }
    const all = await viaSdk(() => client.roomState(roomId))
    return all
      .filter((e) => e.type === type && typeof e.state_key === "string" && (stateKey === undefined || e.state_key === stateKey))
      .map((e) => raw({ ...e, room_id: roomId }))
      .filter((e) => e !== undefined)
  }

  const rtcTransports = async (): Promise<Readonly<Record<string, unknown>>> => {
    const get = (prefix: string) => client.http.authedRequest<Record<string, unknown>>(Method.Get, "/rtc/transports", undefined, undefined, { prefix })
    try {
      return await get(ClientPrefix.V1)
    } catch (stable) {
      // MSC4143's unstable path, on servers that do not know the stable one yet; else the stable path's error.
      if (!isUnrecognised(stable)) throw portError(stable)
      try {
        return await get("/_matrix/client/unstable/org.matrix.msc4143")
      } catch {
        throw portError(stable)
      }
    }
  }

  /** MSC4533: the MSC4195 endpoint through the client's authed HTTP, the unstable path where the stable one is unrecognised. */
  const rtcLivekit = async (request: HomeserverRequestOf<"RtcLivekit">): Promise<Readonly<Record<string, unknown>>> => {
    const post = (prefix: string) => client.http.authedRequest<Record<string, unknown>>(Method.Post, `/rtc/livekit/${request.endpoint}`, undefined, { ...request.body }, { prefix })
    try {
      return await post(ClientPrefix.V1)
    } catch (stable) {
      if (!isUnrecognised(stable)) throw portError(stable)
      try {
        return await post("/_matrix/client/unstable/io.element.msc4195")
      } catch {
        throw portError(stable)
      }
    }
  }

  return {
    userId,
    deviceId,
    sendEvent: async (request) => {
      if (request.delayMs !== undefined || request.parentDelayId !== undefined) return sendDelayed(request)
      const content = { ...request.content }
      const res =
        request.stateKey !== undefined
          ? await viaSdk(() => client.sendStateEvent(request.roomId, request.type as never, content as never, request.stateKey))
          : await viaSdk(() => client.sendEvent(request.roomId, request.type as never, content as never))
      return { roomId: request.roomId, eventId: res.event_id }
    },
    redact: async (request) => {
      const res = await viaSdk(() => client.redactEvent(request.roomId, null, request.eventId, undefined, request.reason === undefined ? undefined : { reason: request.reason }))
      return { roomId: request.roomId, eventId: res.event_id }
    },
    readEvents: (query) => readEvents(client, query, options.readEvents),
    readState,
    sendToDevice: (request) => sendToDevice(client, request),
    turnServers: () => turnServersOf(client),
    rtcTransports,
    rtcLivekit,
    userDirectorySearch: (request) =>
      // The SDK's call returns the server's body unchanged.
      viaSdk(() => client.searchUserDirectory({ term: request.searchTerm, ...(request.limit === undefined ? {} : { limit: request.limit }) })) as Promise<unknown> as Promise<Readonly<Record<string, unknown>>>,
    readRelations: (query) => readRelations(client, query),
    readRoomAccountData: (roomId, type) => readRoomAccountData(client, roomId, type),
    requestOpenIdToken: () => requestOpenIdToken(client),
    mediaConfig: () => mediaConfig(client),
    uploadFile: (request) => uploadFile(client, request),
    downloadFile: (request) => downloadFile(client, request),
    updateDelayedEvent: (request) => delayed.update(request),
    joinedRooms: async () =>
      client
        .getRooms()
        .filter((room) => room.getMyMembership() === "join")
        .map((room) => room.roomId),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    stop: () => {
      client.off(ClientEvent.Sync, onSync)
      client.off(SdkRoomEvent.Timeline, onTimeline)
      client.off(SdkRoomEvent.LocalEchoUpdated, onLocalEcho)
      client.off(MatrixEventEvent.Decrypted, onDecrypted)
      stopToDevice()
      feed.close()
      listeners.clear()
    }
  }
}
