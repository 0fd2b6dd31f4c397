/**
 * The bench's stand-ins for everything behind the hosts, shared by the Node bench (hosts.ts) and
 * the Chromium bench's page (browser/host-page.ts), so both run the same doubles. Nothing of
 * Node here: the page bundles this file.
 */
import type { HomeserverUpdate, PromiseHomeserverPort, RoomEvent } from "@widgethost/core"
import { type IRoomEvent, type ISendEventDetails, WidgetDriver } from "matrix-widget-api"

import { ROOM, USER } from "./plan.ts"

/**
 * A homeserver that accepts everything at once and publishes only what the bench injects: a
 * `PromiseHomeserverPort` of plain async functions, as an embedding client writes one (the engine
 * takes this shape; an Effect port would pay for its bridge on every call).
 */
export const benchHomeserver = (): PromiseHomeserverPort & { readonly publish: (update: HomeserverUpdate) => void } => {
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  let counter = 0
  return {
    userId: USER,
    deviceId: "BENCH",
    sendEvent: async (request) => ({ roomId: request.roomId, eventId: `$wh${counter++}` }),
    redact: async (request) => ({ roomId: request.roomId, eventId: `$wh${counter++}` }),
    readEvents: async () => ({ events: [] }),
    readRelations: async () => ({ events: [] }),
    readRoomAccountData: async () => undefined,
    readState: async () => [],
    sendToDevice: async () => undefined,
    turnServers: async () => ({ uris: [], username: "", password: "", ttl: 86_400 }),
    rtcTransports: async () => ({ rtc_transports: [] }),
    rtcLivekit: async () => ({}),
    updateDelayedEvent: async () => undefined,
    userDirectorySearch: async () => ({ limited: false, results: [] }),
    requestOpenIdToken: async () => ({ access_token: "bench", token_type: "Bearer", matrix_server_name: "localhost", expires_in: 3600 }),
    joinedRooms: async () => [ROOM],
    mediaConfig: async () => ({ "m.upload.size": 1024 * 1024 }),
    uploadFile: async () => ({ contentUri: `mxc://localhost/bench${counter++}` }),
    downloadFile: async () => ({ data: new Uint8Array(0) }),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    publish: (update) => {
      for (const listener of listeners) listener(update)
    }
  }
}

/** Element Web's driver, minus Element: approves every capability, sends at once, reads nothing. */
export class BenchDriver extends WidgetDriver {
  private counter = 0
  override validateCapabilities(requested: Set<string>): Promise<Set<string>> {
    return Promise.resolve(requested)
  }
  override sendEvent(_type: string, _content: unknown, _stateKey: string | null = null, roomId: string | null = null): Promise<ISendEventDetails> {
    return Promise.resolve({ roomId: roomId ?? ROOM, eventId: `$ref${this.counter++}` })
  }
  override readRoomTimeline(): Promise<IRoomEvent[]> {
    return Promise.resolve([])
  }
  override readRoomState(): Promise<IRoomEvent[]> {
    return Promise.resolve([])
  }
  override getKnownRooms(): string[] {
    return [ROOM]
  }
}

let eventCounter = 0

/** A room message as a homeserver would hand it over. */
export const roomMessage = (roomId = ROOM, type = "m.room.message"): RoomEvent => {
  const n = eventCounter++
  return {
    type,
    event_id: `$event${n}:example.org`,
    room_id: roomId,
    sender: "@alice:example.org",
    origin_server_ts: 1_700_000_000_000 + n,
    content: { msgtype: "m.text", body: `benchmark message number ${n}` },
    unsigned: { age: 10 }
  }
}

/** The widget's side of a round-trip round: sends `count` room messages keeping `inFlight` unanswered; resolves with the seconds it took. */
export const sendMany = (api: { readonly sendRoomEvent: (type: string, content: unknown) => Promise<{ readonly event_id?: unknown }> }, count: number, inFlight: number): Promise<number> =>
  new Promise((resolve, reject) => {
    let sent = 0
    let answered = 0
    const started = performance.now()
    const next = (): void => {
      const n = sent++
      api.sendRoomEvent("m.room.message", { msgtype: "m.text", body: `round trip ${n}` }).then((answer) => {
        if (typeof answer.event_id !== "string") return reject(new Error(`answer without event_id: ${JSON.stringify(answer)}`))
        answered++
        if (answered === count) return resolve((performance.now() - started) / 1000)
        if (sent < count) next()
      }, reject)
    }
    while (sent < Math.min(inFlight, count)) next()
  })
