/**
 * The engine's one way to the homeserver: a `HomeserverRequest` (data, as the session emits it)
 * run against the port, its value tagged as the reducer's `CallResult`.
 */
import { type CallResult, HomeserverError, type HomeserverPort, type HomeserverRequest } from "@widgethost/core"
import { Cause, Effect, Exit, Option } from "effect"

/**
 * Runs one homeserver request and hands its result to `answer`; failures become `Failed` results,
 * never exceptions. The port's effect runs as it is (no mapping step: one primitive less per call),
 * and its value is tagged in the exit callback.
 */
export const callPort = (port: HomeserverPort, request: HomeserverRequest, answer: (result: CallResult) => void): void => {
  switch (request._tag) {
    case "SendEvent":
      return run(port.sendEvent(request), tagged.sent, answer)
    case "Redact":
      return run(port.redact(request), tagged.sent, answer)
    case "ReadEvents":
      return run(port.readEvents(request.query), tagged.page, answer)
    case "ReadState":
      return run(port.readState(request.roomId, request.type, request.stateKey), tagged.state, answer)
    case "SendToDevice":
      return run(port.sendToDevice(request), tagged.done, answer)
    case "JoinedRooms":
      return run(port.joinedRooms(), tagged.rooms, answer)
    case "TurnServers":
      return run(port.turnServers(), tagged.turn, answer)
    case "RtcTransports":
      return run(port.rtcTransports(), tagged.body, answer)
    case "UpdateDelayedEvent":
      return run(port.updateDelayedEvent(request), tagged.done, answer)
    case "UserDirectorySearch":
      return run(port.userDirectorySearch(request), tagged.body, answer)
    case "RequestOpenIdToken":
      return run(port.requestOpenIdToken(), tagged.openIdToken, answer)
    case "ReadRelations":
      return run(port.readRelations(request.query), tagged.relations, answer)
    case "ReadRoomAccountData":
      return run(port.readRoomAccountData(request.roomId, request.type), tagged.accountData, answer)
    case "MediaConfig":
      return run(port.mediaConfig(), tagged.body, answer)
    case "UploadFile":
      return run(port.uploadFile(request), tagged.uploaded, answer)
    case "DownloadFile":
      return run(port.downloadFile(request), tagged.downloaded, answer)
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

const run = <A>(effect: Effect.Effect<A, HomeserverError>, tag: (value: A) => CallResult, answer: (result: CallResult) => void): void => {
  Effect.runCallback(effect, { onExit: (exit) => answer(Exit.isSuccess(exit) ? tag(exit.value) : failed(exit.cause)) })
}

const failed = (cause: Cause.Cause<HomeserverError>): CallResult => ({ _tag: "Failed", error: Option.getOrUndefined(Cause.findErrorOption(cause)) ?? adapterFailed() })

/** What the widget hears when the port died or threw instead of failing with a HomeserverError. */
export const adapterFailed = () => new HomeserverError({ message: "The homeserver adapter failed unexpectedly" })
