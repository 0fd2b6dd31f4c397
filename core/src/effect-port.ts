/**
 * The bridge between the engine's `PromiseHomeserverPort` and the Effect-native
 * {@link HomeserverPort}, both ways. It is the only module of this package that runs Effect, and
 * it is reached only through `@widgethost/core/effect`: a browser app on a Promise port (e.g.
 * `fromMatrixClient`) never bundles the Effect runtime.
 *
 * @packageDocumentation
 * @module @widgethost/core/effect
 */
import { Cause, Effect, Exit, Option } from "effect"
import { HomeserverError } from "./homeserver-error.ts"
import { type HomeserverPort, HomeserverPortTypeId, isHomeserverPort } from "./homeserver-port.ts"
import { homeserverErrorFrom, type PromiseHomeserverPort } from "./promise-homeserver-port.ts"

/** One port call: its promise (or its synchronous throw) as an Effect failing only with HomeserverError. */
const call = <A>(method: string, run: () => Promise<A>): Effect.Effect<A, HomeserverError> =>
  Effect.tryPromise({ try: () => Promise.resolve(run()), catch: (thrown) => homeserverErrorFrom(thrown, method) })

/**
 * The Effect-native port over a {@link PromiseHomeserverPort}: each call runs the method when the
 * effect runs, and its rejection becomes a {@link HomeserverError} ({@link homeserverErrorFrom}).
 * For code that takes a {@link HomeserverPort} (the service, the port conformance cases).
 *
 * @example
 * const port = fromPromisePort({ userId, deviceId, sendEvent: async (request) => ({ roomId: request.roomId, eventId: "$x" }), ... })
 */
export const fromPromisePort = (port: PromiseHomeserverPort): HomeserverPort => ({
  [HomeserverPortTypeId]: HomeserverPortTypeId,
  userId: port.userId,
  deviceId: port.deviceId,
  // One line per method: the name is the one the widget's error message names.
  sendEvent: (request) => call("sendEvent", () => port.sendEvent(request)),
  redact: (request) => call("redact", () => port.redact(request)),
  readEvents: (query) => call("readEvents", () => port.readEvents(query)),
  readState: (roomId, type, stateKey) => call("readState", () => port.readState(roomId, type, stateKey)),
  sendToDevice: (request) => call("sendToDevice", () => port.sendToDevice(request)),
  turnServers: () => call("turnServers", () => port.turnServers()),
  rtcTransports: () => call("rtcTransports", () => port.rtcTransports()),
  rtcLivekit: (request) => call("rtcLivekit", () => port.rtcLivekit(request)),
  userDirectorySearch: (request) => call("userDirectorySearch", () => port.userDirectorySearch(request)),
  readRelations: (query) => call("readRelations", () => port.readRelations(query)),
  readRoomAccountData: (roomId, type) => call("readRoomAccountData", () => port.readRoomAccountData(roomId, type)),
  requestOpenIdToken: () => call("requestOpenIdToken", () => port.requestOpenIdToken()),
  updateDelayedEvent: (request) => call("updateDelayedEvent", () => port.updateDelayedEvent(request)),
  joinedRooms: () => call("joinedRooms", () => port.joinedRooms()),
  mediaConfig: () => call("mediaConfig", () => port.mediaConfig()),
  uploadFile: (request) => call("uploadFile", () => port.uploadFile(request)),
  downloadFile: (request) => call("downloadFile", () => port.downloadFile(request)),
  subscribe: (listener) => port.subscribe(listener)
})

/** What a port's effect that died or was interrupted (a bug, not a refusal) rejects with. */
const adapterFailed = () => new HomeserverError({ message: "The homeserver adapter failed unexpectedly" })

/** Runs one port effect: its value, or a rejection with its HomeserverError (or {@link adapterFailed}). */
const settle = <A>(effect: Effect.Effect<A, HomeserverError>): Promise<A> =>
  new Promise((resolve, reject) => {
    // runCallback, not runPromiseExit: one primitive less per call on the engine's hot path.
    Effect.runCallback(effect, {
      onExit: (exit) => (Exit.isSuccess(exit) ? resolve(exit.value) : reject(Option.getOrUndefined(Cause.findErrorOption(exit.cause)) ?? adapterFailed()))
    })
  })

/**
 * The Promise port over an Effect-native {@link HomeserverPort}, for `createEngine({ homeserver })`:
 * each call runs the port's effect, resolving with its value or rejecting with its
 * {@link HomeserverError}. The port's method is called when the engine calls (a method replaced
 * later is the one called), and a method that throws instead of returning an effect throws here
 * too, which the engine reports to `onError` as a homeserver fault.
 *
 * @example
 * const port = await connectHomeserver({ baseUrl, auth })
 * const engine = createEngine({ homeserver: fromEffectPort(port), approver })
 */
export const fromEffectPort = (port: HomeserverPort): PromiseHomeserverPort => ({
  userId: port.userId,
  deviceId: port.deviceId,
  sendEvent: (request) => settle(port.sendEvent(request)),
  redact: (request) => settle(port.redact(request)),
  readEvents: (query) => settle(port.readEvents(query)),
  readState: (roomId, type, stateKey) => settle(port.readState(roomId, type, stateKey)),
  sendToDevice: (request) => settle(port.sendToDevice(request)),
  turnServers: () => settle(port.turnServers()),
  rtcTransports: () => settle(port.rtcTransports()),
  rtcLivekit: (request) => settle(port.rtcLivekit(request)),
  userDirectorySearch: (request) => settle(port.userDirectorySearch(request)),
  readRelations: (query) => settle(port.readRelations(query)),
  readRoomAccountData: (roomId, type) => settle(port.readRoomAccountData(roomId, type)),
  requestOpenIdToken: () => settle(port.requestOpenIdToken()),
  updateDelayedEvent: (request) => settle(port.updateDelayedEvent(request)),
  joinedRooms: () => settle(port.joinedRooms()),
  mediaConfig: () => settle(port.mediaConfig()),
  uploadFile: (request) => settle(port.uploadFile(request)),
  downloadFile: (request) => settle(port.downloadFile(request)),
  subscribe: (listener) => port.subscribe(listener)
})

/** Either port as the Effect-native one: a {@link HomeserverPort} as it is, a Promise port converted. */
export const toHomeserverPort = (port: HomeserverPort | PromiseHomeserverPort): HomeserverPort => (isHomeserverPort(port) ? port : fromPromisePort(port))

/** Either port as the Promise port the engine takes: a Promise port as it is, an Effect-native one converted. */
export const toPromisePort = (port: HomeserverPort | PromiseHomeserverPort): PromiseHomeserverPort => (isHomeserverPort(port) ? fromEffectPort(port) : port)
