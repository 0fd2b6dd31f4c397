/**
 * The engine's one way to the homeserver: a `HomeserverRequest` (data, as the session emits it)
 * run against the Promise port, its value tagged as the reducer's `CallResult`. Plain promises,
 * no Effect: what a browser app bundles to host widgets stays small.
 */
import { type CallResult, homeserverErrorFrom, type HomeserverRequest, type PromiseHomeserverPort } from "@widgethost/core"

/**
 * Runs one homeserver request and hands its result to `answer`; a rejection becomes a `Failed`
 * result ({@link homeserverErrorFrom}), never an exception. A method that throws synchronously
 * throws here: the engine reports that as a fault of the port and answers `Failed` with it.
 */
export const callPort = (port: PromiseHomeserverPort, request: HomeserverRequest, answer: (result: CallResult) => void): void => {
  switch (request._tag) {
    case "SendEvent":
      return run("sendEvent", port.sendEvent(request), tagged.sent, answer)
    case "Redact":
      return run("redact", port.redact(request), tagged.sent, answer)
    case "ReadEvents":
      return run("readEvents", port.readEvents(request.query), tagged.page, answer)
    case "ReadState":
      return run("readState", port.readState(request.roomId, request.type, request.stateKey), tagged.state, answer)
    case "SendToDevice":
      return run("sendToDevice", port.sendToDevice(request), tagged.done, answer)
    case "JoinedRooms":
      return run("joinedRooms", port.joinedRooms(), tagged.rooms, answer)
    case "TurnServers":
      return run("turnServers", port.turnServers(), tagged.turn, answer)
    case "RtcTransports":
      return run("rtcTransports", port.rtcTransports(), tagged.body, answer)
    case "RtcLivekit":
      return run("rtcLivekit", port.rtcLivekit(request), tagged.body, answer)
    case "UpdateDelayedEvent":
      return run("updateDelayedEvent", port.updateDelayedEvent(request), tagged.done, answer)
    case "UserDirectorySearch":
      return run("userDirectorySearch", port.userDirectorySearch(request), tagged.body, answer)
    case "RequestOpenIdToken":
      return run("requestOpenIdToken", port.requestOpenIdToken(), tagged.openIdToken, answer)
    case "ReadRelations":
      return run("readRelations", port.readRelations(request.query), tagged.relations, answer)
    case "ReadRoomAccountData":
      return run("readRoomAccountData", port.readRoomAccountData(request.roomId, request.type), tagged.accountData, answer)
    case "MediaConfig":
      return run("mediaConfig", port.mediaConfig(), tagged.body, answer)
    case "UploadFile":
      return run("uploadFile", port.uploadFile(request), tagged.uploaded, answer)
    case "DownloadFile":
      return run("downloadFile", port.downloadFile(request), tagged.downloaded, answer)
  }
}

type ValueOf<T extends CallResult["_tag"]> = Extract<CallResult, { _tag: T; value: unknown }>["value"]
const done: CallResult = { _tag: "Done" }
/** A port's value as the reducer takes it. */
const tagged = {
  sent: (value: ValueOf<"Sent">): CallResult => ({ _tag: "Sent", value }),
  page: (value: ValueOf<"Page">): CallResult => ({ _tag: "Page", value }),
  state: (value: ValueOf<"State">): CallResult => ({ _tag: "State", value }),
  rooms: (value: ValueOf<"Rooms">): CallResult => ({ _tag: "Rooms", value }),
  turn: (value: ValueOf<"Turn">): CallResult => ({ _tag: "Turn", value }),
  body: (value: ValueOf<"Body">): CallResult => ({ _tag: "Body", value }),
  openIdToken: (value: ValueOf<"OpenIdToken">): CallResult => ({ _tag: "OpenIdToken", value }),
  relations: (value: ValueOf<"Relations">): CallResult => ({ _tag: "Relations", value }),
  accountData: (value: ValueOf<"AccountData">): CallResult => ({ _tag: "AccountData", value }),
  uploaded: (value: ValueOf<"Uploaded">): CallResult => ({ _tag: "Uploaded", value }),
  downloaded: (value: ValueOf<"Downloaded">): CallResult => ({ _tag: "Downloaded", value }),
  done: (): CallResult => done
}

const run = <A>(method: string, promise: Promise<A>, tag: (value: A) => CallResult, answer: (result: CallResult) => void): void => {
  // Promise.resolve: a port that answers a plain value (not a promise) is still answered.
  Promise.resolve(promise).then(
    (value) => answer(tag(value)),
    (thrown: unknown) => answer({ _tag: "Failed", error: homeserverErrorFrom(thrown, method) })
  )
}

/** The port method a request calls, as error messages name it (`SendEvent` → `sendEvent`). */
export const methodOf = (request: HomeserverRequest): string => request._tag[0]!.toLowerCase() + request._tag.slice(1)
