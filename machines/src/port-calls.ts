/**
 * The engine's one way to the homeserver: a `HomeserverRequest` run against the Promise port,
 * by the core proposals' calls here or the call its feature brought (`FeatureTable.calls`).
 * Plain promises, no Effect: what a browser app bundles to host widgets stays small.
 */
import { type CallResult, homeserverErrorFrom, type HomeserverRequest, methodOf, portCall, type PortCalls, type PromiseHomeserverPort } from "@widgethost/core"

/** The core proposals' calls (MSC2762 send and read, MSC2876, MSC3846 TURN). */
const coreCalls: PortCalls = {
  SendEvent: portCall("sendEvent", "Sent", (port, request) => port.sendEvent(request)),
  Redact: portCall("redact", "Sent", (port, request) => port.redact(request)),
  ReadEvents: portCall("readEvents", "Page", (port, request) => port.readEvents(request.query)),
  ReadState: portCall("readState", "State", (port, request) => port.readState(request.roomId, request.type, request.stateKey)),
  JoinedRooms: portCall("joinedRooms", "Rooms", (port) => port.joinedRooms()),
  TurnServers: portCall("turnServers", "Turn", (port) => port.turnServers())
}

/**
 * Runs one homeserver request and hands its result to `answer`; a rejection becomes a `Failed`
 * result, never an exception. A method that throws synchronously throws here: the engine
 * reports that as a fault of the port and answers `Failed` with it. `featureCalls` are the
 * engine's features' (a session emits only requests its features serve).
 */
export const callPort = (port: PromiseHomeserverPort, request: HomeserverRequest, answer: (result: CallResult) => void, featureCalls: PortCalls): void => {
  const call = (coreCalls[request._tag] ?? featureCalls[request._tag]) as ((port: PromiseHomeserverPort, request: HomeserverRequest, answer: (result: CallResult) => void) => void) | undefined
  if (call === undefined) return void Promise.resolve().then(() => answer({ _tag: "Failed", error: homeserverErrorFrom(new Error(`no feature of this engine calls ${methodOf(request)}`), methodOf(request)) }))
  call(port, request, answer)
}

export { methodOf }
