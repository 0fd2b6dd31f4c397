/**
 * A `WidgetDriver` double for the drop-in's tests: every call is recorded as `[method, ...args]`
 * (JSON-shaped, so two runs compare with deepEqual), and every answer is scripted per method. The
 * same class drives the reference `ClientWidgetApi` and the drop-in, so what each was asked can
 * be compared call for call.
 */
import {
  type IOpenIDUpdate,
  type IReadEventRelationsResult,
  type IRoomAccountData,
  type IRoomEvent,
  type ISearchUserDirectoryResult,
  type ITurnServer,
  type IWidgetApiErrorResponseDataDetails,
  OpenIDRequestState,
  type SimpleObservable,
  WidgetDriver
} from "matrix-widget-api"

export type DriverCall = readonly [method: string, ...args: ReadonlyArray<unknown>]

/** What each method answers; a function sees the call's arguments. Absent: the default below. */
export interface DriverScript {
  approve?: (requested: ReadonlyArray<string>) => ReadonlyArray<string> | Promise<ReadonlyArray<string>>
  sendEvent?: (type: string, content: unknown, stateKey: string | null, roomId: string | null) => Promise<{ roomId: string; eventId: string }>
  sendDelayedEvent?: (...args: ReadonlyArray<unknown>) => Promise<{ roomId: string; delayId: string }>
  updateDelayed?: (delayId: string) => Promise<void>
  sendToDevice?: () => Promise<void>
  readRoomTimeline?: () => Promise<IRoomEvent[]>
  readRoomState?: (roomId: string, type: string, stateKey: string | undefined) => Promise<IRoomEvent[]>
  readEventRelations?: () => Promise<IReadEventRelationsResult>
  searchUserDirectory?: () => Promise<ISearchUserDirectoryResult>
  readRoomAccountData?: (type: string, roomIds: string[] | null) => Promise<IRoomAccountData[]>
  getMediaConfig?: () => Promise<Record<string, unknown>>
  uploadFile?: () => Promise<{ contentUri: string }>
  downloadFile?: () => Promise<{ file: XMLHttpRequestBodyInit }>
  getRtcTransports?: () => Promise<{ rtc_transports: Array<{ type: string }> }>
  openId?: (observer: SimpleObservable<IOpenIDUpdate>) => void
  navigate?: (uri: string) => Promise<void>
  turnServers?: () => AsyncGenerator<ITurnServer>
  knownRooms?: () => string[]
  processError?: (error: unknown) => IWidgetApiErrorResponseDataDetails | undefined
}

export const OPENID_TOKEN = { access_token: "token", token_type: "Bearer", matrix_server_name: "example.org", expires_in: 3600 }

export class RecordingDriver extends WidgetDriver {
  readonly calls: DriverCall[] = []
  private counter = 0

  constructor(readonly script: DriverScript = {}) {
    super()
  }

  private record(method: string, ...args: ReadonlyArray<unknown>): void {
    // JSON round trip: undefined arguments become null, as they would on any wire.
    this.calls.push(JSON.parse(JSON.stringify([method, ...args.map((a) => (a instanceof Set ? [...a].sort() : a))])) as DriverCall)
  }

  /** The calls made of one method. */
  callsOf(method: string): DriverCall[] {
    return this.calls.filter(([name]) => name === method)
  }

  override async validateCapabilities(requested: Set<string>): Promise<Set<string>> {
    this.record("validateCapabilities", requested)
    return new Set(this.script.approve === undefined ? requested : await this.script.approve([...requested]))
  }

  override sendEvent(type: string, content: unknown, stateKey: string | null = null, roomId: string | null = null): Promise<{ roomId: string; eventId: string }> {
    this.record("sendEvent", type, content, stateKey, roomId)
    return this.script.sendEvent?.(type, content, stateKey, roomId) ?? Promise.resolve({ roomId: roomId ?? "!viewed:example.org", eventId: `$sent${this.counter++}` })
  }

  override sendDelayedEvent(...args: [number, string, unknown, (string | null)?, (string | null)?]): Promise<{ roomId: string; delayId: string }> {
    this.record("sendDelayedEvent", ...args)
    return this.script.sendDelayedEvent?.(...args) ?? Promise.resolve({ roomId: (args[4]) ?? "!viewed:example.org", delayId: `delay${this.counter++}` })
  }

  override cancelScheduledDelayedEvent(delayId: string): Promise<void> {
    this.record("cancelScheduledDelayedEvent", delayId)
    return this.script.updateDelayed?.(delayId) ?? Promise.resolve()
  }

  override restartScheduledDelayedEvent(delayId: string): Promise<void> {
    this.record("restartScheduledDelayedEvent", delayId)
    return this.script.updateDelayed?.(delayId) ?? Promise.resolve()
  }

  override sendScheduledDelayedEvent(delayId: string): Promise<void> {
    this.record("sendScheduledDelayedEvent", delayId)
    return this.script.updateDelayed?.(delayId) ?? Promise.resolve()
  }

  override sendToDevice(type: string, encrypted: boolean, contentMap: Record<string, Record<string, object>>): Promise<void> {
    this.record("sendToDevice", type, encrypted, contentMap)
    return this.script.sendToDevice?.() ?? Promise.resolve()
  }

  override readRoomTimeline(roomId: string, type: string, msgtype: string | undefined, stateKey: string | undefined, limit: number, since: string | undefined): Promise<IRoomEvent[]> {
    this.record("readRoomTimeline", roomId, type, msgtype, stateKey, limit, since)
    return this.script.readRoomTimeline?.() ?? Promise.resolve([])
  }

  override readRoomState(roomId: string, type: string, stateKey: string | undefined): Promise<IRoomEvent[]> {
    this.record("readRoomState", roomId, type, stateKey)
    return this.script.readRoomState?.(roomId, type, stateKey) ?? Promise.resolve([])
  }

  override readEventRelations(...args: ReadonlyArray<unknown>): Promise<IReadEventRelationsResult> {
    this.record("readEventRelations", ...args)
    return this.script.readEventRelations?.() ?? Promise.resolve({ chunk: [] })
  }

  override searchUserDirectory(searchTerm: string, limit?: number): Promise<ISearchUserDirectoryResult> {
    this.record("searchUserDirectory", searchTerm, limit)
    return this.script.searchUserDirectory?.() ?? Promise.resolve({ limited: false, results: [] })
  }

  override readRoomAccountData(type: string, roomIds: string[] | null = null): Promise<IRoomAccountData[]> {
    this.record("readRoomAccountData", type, roomIds)
    return this.script.readRoomAccountData?.(type, roomIds) ?? Promise.resolve([])
  }

  override getMediaConfig(): Promise<Record<string, unknown>> {
    this.record("getMediaConfig")
    return this.script.getMediaConfig?.() ?? Promise.resolve({ "m.upload.size": 1000 })
  }

  override uploadFile(file: XMLHttpRequestBodyInit): Promise<{ contentUri: string }> {
    this.record("uploadFile", file)
    return this.script.uploadFile?.() ?? Promise.resolve({ contentUri: "mxc://example.org/upload" })
  }

  override downloadFile(contentUri: string): Promise<{ file: XMLHttpRequestBodyInit }> {
    this.record("downloadFile", contentUri)
    return this.script.downloadFile?.() ?? Promise.resolve({ file: "file-data" })
  }

  override getRtcTransports(): Promise<{ rtc_transports: Array<{ type: string }> }> {
    this.record("getRtcTransports")
    return this.script.getRtcTransports?.() ?? Promise.resolve({ rtc_transports: [{ type: "livekit" }] })
  }

  override askOpenID(observer: SimpleObservable<IOpenIDUpdate>): void {
    this.record("askOpenID")
    if (this.script.openId !== undefined) return this.script.openId(observer)
    observer.update({ state: OpenIDRequestState.Allowed, token: OPENID_TOKEN })
  }

  override navigate(uri: string): Promise<void> {
    this.record("navigate", uri)
    return this.script.navigate?.(uri) ?? Promise.resolve()
  }

  override getTurnServers(): AsyncGenerator<ITurnServer> {
    this.record("getTurnServers")
    if (this.script.turnServers !== undefined) return this.script.turnServers()
    return (async function* () {
      yield { uris: ["turn:turn.example.org"], username: "user", password: "pass" }
    })()
  }

  override getKnownRooms(): string[] {
    this.record("getKnownRooms")
    return this.script.knownRooms?.() ?? ["!viewed:example.org"]
  }

  override processError(error: unknown): IWidgetApiErrorResponseDataDetails | undefined {
    return this.script.processError?.(error)
  }
}
