import type { ClientCall } from "../client-call.ts"
import type { WidgetMessage } from "../envelope.ts"
import type { HomeserverRequest } from "../homeserver-port.ts"
import type { Permissions } from "../permissions.ts"
import type { ClientRequestOutcome } from "./client-requests.ts"

/** What a session's handlers ask the edges to do, as data. */
export type Command =
  | { readonly _tag: "SendToWidget"; readonly message: WidgetMessage }
  /** Ask the embedding client's approver; answer with `ApprovalDecided` of the same ticket. */
  | { readonly _tag: "AskApprover"; readonly ticket: number; readonly requested: ReadonlyArray<string>; readonly alreadyApproved: ReadonlyArray<string> }
  /**
   * Ask the embedding client's OpenID approver whether this widget may learn who the user is
   * (MSC1960); answer with `OpenIdDecided` of the same ticket. `CancelApproval` withdraws it too.
   */
  | { readonly _tag: "AskOpenIdApprover"; readonly ticket: number; readonly origin?: string }
  /** Withdraw the prompt of `ticket` (a capability or an OpenID prompt). */
  | { readonly _tag: "CancelApproval"; readonly ticket: number }
  /** Run a homeserver request; answer with `CallAnswered` of the same ticket. */
  | { readonly _tag: "CallHomeserver"; readonly ticket: number; readonly request: HomeserverRequest }
  /** Join the engine's shared TURN poller; answer with `CallAnswered` (`Turn` or `Failed`). */
  | { readonly _tag: "WatchTurn"; readonly ticket: number }
  | { readonly _tag: "UnwatchTurn" }
  /**
   * Ask the embedding client (a hook or custom action); answer with `ClientAnswered` of the same
   * ticket. `action` is the fromWidget action as the widget named it; `roomId` the room the
   * session acts in now (a sticker goes there).
   */
  | { readonly _tag: "CallClient"; readonly ticket: number; readonly action: string; readonly call: ClientCall; readonly roomId: string | undefined }
  /** A client call is no longer wanted (timed out, its document or session gone): abort its signal. */
  | { readonly _tag: "CancelClientCall"; readonly ticket: number }
  /** A client's toWidget request (`ClientRequest` input of the same id) ended, exactly once. */
  | { readonly _tag: "ClientRequestSettled"; readonly id: number; readonly outcome: ClientRequestOutcome }
  /** The widget's receive permissions or home room changed: re-index its subscriptions. */
  | { readonly _tag: "Subscribe"; readonly permissions: Permissions; readonly homeRoom: string | undefined }
  | { readonly _tag: "Report"; readonly report: Report }
  | { readonly _tag: "Closed"; readonly reason: string }

/** Things worth telling the embedding client about, which don't change what the session does. */
export type Report =
  | { readonly _tag: "RequestTimedOut"; readonly action: string; readonly requestId: string }
  | { readonly _tag: "Dropped"; readonly reason: string }
  | { readonly _tag: "WidgetError"; readonly action: string; readonly message: string }
  | { readonly _tag: "ApprovalTimedOut"; readonly requested: ReadonlyArray<string> }
  | { readonly _tag: "CallFailed"; readonly request: string; readonly message: string }
  /**
   * A `get_openid` was answered, and on whose word: MSC1960 encourages telling the user when a
   * request was handled without asking them ("remembered").
   */
  | { readonly _tag: "OpenIdAnswered"; readonly state: "allowed" | "blocked"; readonly by: "policy" | "remembered" | "approver" | "no-approver" }
  /** The frame holds a new document: the old one's grants are gone and negotiation starts afresh. */
  | { readonly _tag: "DocumentReplaced"; readonly document: number }
  /** A frame reused the id of a request still in flight: not served; the original answers. */
  | { readonly _tag: "DuplicateRequest"; readonly action: string; readonly requestId: string }
  /** A client hook or custom action did not answer within the request timeout: the widget was told. */
  | { readonly _tag: "ClientCallTimedOut"; readonly action: string; readonly requestId: string }
