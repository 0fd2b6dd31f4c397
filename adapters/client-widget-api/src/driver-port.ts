/**
 * The engine's homeserver port over a matrix-widget-api `WidgetDriver`, plus the live feed the
 * client pushes in. The reference gets live events from the client (`feedEvent`,
 * `feedStateUpdate`, `feedToDevice`), not from the driver, so the port's `subscribe` is fed by
 * those calls; every other port method is one driver method. Each failure reaches the widget in
 * the reference's words, or as the `matrix_api_error` the driver's `processError` expressed
 * (driver-errors.ts).
 *
 * | port method           | driver method                                                        |
 * | --------------------- | -------------------------------------------------------------------- |
 * | `sendEvent`           | `sendEvent`, or `sendDelayedEvent` with `delay`/`parent_delay_id`    |
 * | `redact`              | `sendEvent("m.room.redaction", { redacts, reason })` (as the reference passes it) |
 * | `readEvents`          | `readRoomTimeline(roomId, type, msgtype, stateKey, limit, undefined)` |
 * | `readState`           | `readRoomState`                                                      |
 * | `sendToDevice`        | `sendToDevice`                                                       |
 * | `updateDelayedEvent`  | `cancel/restart/sendScheduledDelayedEvent` (1.19), or `updateDelayedEvent(id, action)` (older drivers) |
 * | `readRelations`       | `readEventRelations`                                                 |
 * | `userDirectorySearch` | `searchUserDirectory` (camelCase results back to the wire's snake_case) |
 * | `readRoomAccountData` | `readRoomAccountData(type, [roomId])`                                |
 * | `rtcTransports`       | `getRtcTransports`                                                   |
 * | `turnServers`         | `getTurnServers` (driver-turn.ts)                                    |
 * | `requestOpenIdToken`  | `askOpenID` (driver-openid.ts)                                       |
 * | `joinedRooms`         | `getKnownRooms`                                                      |
 */
import type { HomeserverRequestOf, HomeserverUpdate, PromiseHomeserverPort, ReadEventsPage, RelationsPage, RoomEvent, SendEventResult, ToDeviceEvent } from "@widgethost/core"
import type { IRoomEvent, WidgetDriver } from "matrix-widget-api"
import { callDriver } from "./driver-errors.ts"
import { DriverOpenId } from "./driver-openid.ts"
import { DriverTurnFeed } from "./driver-turn.ts"

/** How many state event ids are remembered to deliver a state event fed twice only once. */
const REMEMBERED_STATE_EVENTS = 1_000

/** matrix-widget-api before 1.19 updated a delayed event through one method. */
interface LegacyDelayedDriver {
  readonly updateDelayedEvent?: (delayId: string, action: "cancel" | "restart" | "send") => Promise<void>
}

/**
 * Whether the driver's `sendDelayedEvent` takes `parentDelayId` second, as Element Web's does
 * (`delay, parentDelayId, eventType, content, stateKey, roomId`: six declared parameters).
 * matrix-widget-api 1.19's own signature has five and no parent.
 */
const takesParentDelayId = (driver: WidgetDriver): boolean => driver.sendDelayedEvent.length >= 6

type DelayedSender = (delay: number | null, parentDelayId: string | null, type: string, content: unknown, stateKey: string | null, roomId: string | null) => Promise<{ roomId: string; delayId: string }>

export interface DriverPortOptions {
  /** The account's user id, when the client knows it (the engine does not need it). */
  readonly userId?: string
  readonly deviceId?: string
}

export class DriverPort implements PromiseHomeserverPort {
  readonly userId: string
  readonly deviceId: string
  readonly turn: DriverTurnFeed
  readonly openId: DriverOpenId
  private readonly listeners = new Set<(update: HomeserverUpdate) => void>()
  private readonly seenState = new Set<string>()

  constructor(
    private readonly driver: WidgetDriver,
    options: DriverPortOptions = {}
  ) {
    this.userId = options.userId ?? ""
    this.deviceId = options.deviceId ?? ""
    this.turn = new DriverTurnFeed(driver)
    this.openId = new DriverOpenId(driver)
  }

  // ---- the live feed, from the client ----------------------------------------------------------

  /**
   * A room event the client got. A state event is delivered once however often it is fed: the
   * reference's clients feed each timeline state event through both `feedEvent` and
   * `feedStateUpdate`, and the engine turns one into the widget's state change itself.
   */
  feedRoomEvent(event: RoomEvent): void {
    if (typeof event.state_key === "string") {
      if (this.seenState.has(event.event_id)) return
      this.seenState.add(event.event_id)
      if (this.seenState.size > REMEMBERED_STATE_EVENTS) this.seenState.delete(this.seenState.values().next().value!)
    }
    this.publish({ _tag: "RoomEvent", event })
  }

  feedToDevice(event: ToDeviceEvent): void {
    this.publish({ _tag: "ToDevice", event })
  }

  private publish(update: HomeserverUpdate): void {
    for (const listener of [...this.listeners]) listener(update)
  }

  subscribe(listener: (update: HomeserverUpdate) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  // ---- one driver method each --------------------------------------------------------------------

  sendEvent(request: HomeserverRequestOf<"SendEvent">): Promise<SendEventResult> {
    const { driver } = this
    const stateKey = request.stateKey ?? null
    if (request.delayMs === undefined && request.parentDelayId === undefined) {
      return callDriver(driver, "Error sending event", async () => {
        const sent = await driver.sendEvent(request.type, request.content, stateKey, request.roomId)
        return { roomId: sent.roomId, eventId: sent.eventId }
      })
    }
    return callDriver(driver, "Error sending event", async () => {
      let sent: { roomId: string; delayId: string }
      if (takesParentDelayId(driver)) {
        sent = await (driver.sendDelayedEvent as unknown as DelayedSender).call(driver, request.delayMs ?? null, request.parentDelayId ?? null, request.type, request.content, stateKey, request.roomId)
      } else {
        // Refused rather than dropped: the widget would believe its event hangs off the parent.
        if (request.parentDelayId !== undefined) throw new Error("Not supported: this client's WidgetDriver takes no parent_delay_id; nothing was sent")
        sent = await driver.sendDelayedEvent(request.delayMs!, request.type, request.content, stateKey, request.roomId)
      }
      return { roomId: sent.roomId, delayId: sent.delayId }
    })
  }

  redact(request: HomeserverRequestOf<"Redact">): Promise<SendEventResult> {
    const content = { redacts: request.eventId, ...(request.reason === undefined ? {} : { reason: request.reason }) }
    return callDriver(this.driver, "Error sending event", async () => {
      const sent = await this.driver.sendEvent("m.room.redaction", content, null, request.roomId)
      return { roomId: sent.roomId, eventId: sent.eventId }
    })
  }

  readEvents(query: Parameters<PromiseHomeserverPort["readEvents"]>[0]): Promise<ReadEventsPage> {
    // `true` (any state key) is the driver's `undefined`; the engine filters the answer again.
    const stateKey = query.stateKey === true ? undefined : query.stateKey
    return callDriver(this.driver, "Error reading events", async () => ({
      events: asRoomEvents(await this.driver.readRoomTimeline(query.roomId, query.type, query.msgtype, stateKey, query.limit, undefined))
    }))
  }

  readState(roomId: string, type: string, stateKey?: string): Promise<ReadonlyArray<RoomEvent>> {
    return callDriver(this.driver, "Error reading room state", async () => asRoomEvents(await this.driver.readRoomState(roomId, type, stateKey)))
  }

  sendToDevice(request: HomeserverRequestOf<"SendToDevice">): Promise<void> {
    return callDriver(this.driver, "Error sending event", () => this.driver.sendToDevice(request.type, request.encrypted, request.messages as Record<string, Record<string, object>>))
  }

  updateDelayedEvent(request: HomeserverRequestOf<"UpdateDelayedEvent">): Promise<void> {
    const { driver } = this
    return callDriver(driver, "Error updating delayed event", () => {
      const legacy = (driver as unknown as LegacyDelayedDriver).updateDelayedEvent
      if (typeof legacy === "function") return legacy.call(driver, request.delayId, request.action)
      switch (request.action) {
        case "cancel":
          return driver.cancelScheduledDelayedEvent(request.delayId)
        case "restart":
          return driver.restartScheduledDelayedEvent(request.delayId)
        case "send":
          return driver.sendScheduledDelayedEvent(request.delayId)
      }
    })
  }

  readRelations(query: Parameters<PromiseHomeserverPort["readRelations"]>[0]): Promise<RelationsPage> {
    return callDriver(this.driver, "Unexpected error while reading relations", async () => {
      const result = await this.driver.readEventRelations(query.eventId, query.roomId, query.relType, query.eventType, query.from, query.to, query.limit, query.dir)
      return {
        events: asRoomEvents(result.chunk),
        ...(result.nextBatch === undefined ? {} : { nextBatch: result.nextBatch }),
        ...(result.prevBatch === undefined ? {} : { prevBatch: result.prevBatch })
      }
    })
  }

  userDirectorySearch(request: HomeserverRequestOf<"UserDirectorySearch">): Promise<Readonly<Record<string, unknown>>> {
    return callDriver(this.driver, "Unexpected error while searching in the user directory", async () => {
      const result = await this.driver.searchUserDirectory(request.searchTerm, request.limit)
      return {
        limited: result.limited,
        results: result.results.map((r) => ({
          user_id: r.userId,
          ...(r.displayName === undefined ? {} : { display_name: r.displayName }),
          ...(r.avatarUrl === undefined ? {} : { avatar_url: r.avatarUrl })
        }))
      }
    })
  }

  readRoomAccountData(roomId: string, type: string): Promise<Readonly<Record<string, unknown>> | undefined> {
    return callDriver(this.driver, "Error reading room account data", async () => {
      const found = (await this.driver.readRoomAccountData(type, [roomId])).find((entry) => entry.room_id === roomId && entry.type === type)
      return found === undefined ? undefined : (found.content)
    })
  }

  rtcTransports(): Promise<Readonly<Record<string, unknown>>> {
    return callDriver(this.driver, "Unexpected error while getting the RTC transports", async () => ({ rtc_transports: (await this.driver.getRtcTransports()).rtc_transports }))
  }

  turnServers(): ReturnType<PromiseHomeserverPort["turnServers"]> {
    return this.turn.next()
  }

  requestOpenIdToken(): ReturnType<PromiseHomeserverPort["requestOpenIdToken"]> {
    return this.openId.token()
  }

  joinedRooms(): Promise<ReadonlyArray<string>> {
    return callDriver(this.driver, "Querying known rooms failed", () => this.driver.getKnownRooms())
  }
}

/** The driver's `IRoomEvent`s as the engine's (the same JSON; the engine checks each again). */
const asRoomEvents = (events: ReadonlyArray<IRoomEvent>): ReadonlyArray<RoomEvent> => events
