import type { ClientOutcome } from "../client-call.ts"
import type { HomeserverError } from "../homeserver-error.ts"
import type { DownloadedFile, OpenIdToken, ReadEventsPage, RelationsPage, SendEventResult } from "../homeserver-port.ts"
import type { RoomEvent, ToDeviceEvent, TurnServers } from "../matrix.ts"

/** Everything the edges tell a session, as data (time is the chart's own: its delayed events). */
export type Input =
  /** A message from the widget: untrusted, decoded inside the reducer. */
  | { readonly _tag: "FromWidget"; readonly raw: unknown }
  /** The widget's frame loaded (the `waitForIframeLoad: true` start signal). */
  | { readonly _tag: "FrameLoaded" }
  | { readonly _tag: "ApprovalDecided"; readonly ticket: number; readonly approved: ReadonlyArray<string> }
  /** The embedding client's OpenID approver answered the prompt of `ticket` (MSC1960). */
  | { readonly _tag: "OpenIdDecided"; readonly ticket: number; readonly allowed: boolean }
  | { readonly _tag: "CallAnswered"; readonly ticket: number; readonly result: CallResult }
  /** The embedding client answered a `CallClient` (its hook resolved, threw or rejected). */
  | { readonly _tag: "ClientAnswered"; readonly ticket: number; readonly outcome: ClientOutcome }
  /** The client sends a toWidget request; settled by `ClientRequestSettled` of the same id. */
  | { readonly _tag: "ClientRequest"; readonly id: number; readonly action: string; readonly data: unknown }
  | { readonly _tag: "RoomEvent"; readonly event: RoomEvent }
  | { readonly _tag: "ToDevice"; readonly event: ToDeviceEvent }
  /** Fresh TURN credentials (or empty `uris` while the homeserver is unreachable). */
  | { readonly _tag: "TurnServers"; readonly servers: Pick<TurnServers, "uris" | "username" | "password"> }
  /** The user switched rooms (account widgets follow). */
  | { readonly _tag: "ViewedRoomChanged"; readonly roomId: string | undefined }
  | { readonly _tag: "TransportDown" }
  | { readonly _tag: "TransportUp" }
  | { readonly _tag: "Close"; readonly reason: string }

/** What a call answered: the value depends on the request the ticket was for. */
export type CallResult =
  | { readonly _tag: "Sent"; readonly value: SendEventResult }
  | { readonly _tag: "Page"; readonly value: ReadEventsPage }
  | { readonly _tag: "Relations"; readonly value: RelationsPage }
  /** Room account data content; `undefined` when none is set. */
  | { readonly _tag: "AccountData"; readonly value: Readonly<Record<string, unknown>> | undefined }
  | { readonly _tag: "State"; readonly value: ReadonlyArray<RoomEvent> }
  | { readonly _tag: "Rooms"; readonly value: ReadonlyArray<string> }
  | { readonly _tag: "Done" }
  /** A homeserver response body passed to the widget as it is (MSC4515). */
  | { readonly _tag: "Body"; readonly value: Readonly<Record<string, unknown>> }
  | { readonly _tag: "OpenIdToken"; readonly value: OpenIdToken }
  /** An upload's `mxc://` URI (MSC4039). */
  | { readonly _tag: "Uploaded"; readonly value: { readonly contentUri: string } }
  /** A downloaded file (MSC4039). */
  | { readonly _tag: "Downloaded"; readonly value: DownloadedFile }
  | { readonly _tag: "Turn"; readonly value: Pick<TurnServers, "uris" | "username" | "password"> }
  | { readonly _tag: "Failed"; readonly error: HomeserverError }
