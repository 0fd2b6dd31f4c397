import type { WidgetRequest } from "../envelope.ts"
import type { RoomEvent } from "../matrix.ts"
import type { MediaFile } from "../homeserver-port.ts"
import { emptyPermissions, type Permissions } from "../permissions.ts"
import type { ClientCall } from "../client-call.ts"
import type { ClientSide } from "../client-side.ts"
import type { HeldClientRequest } from "./client-requests.ts"
import type { ApprovalPolicy } from "../policy.ts"
import type { FileEncoding } from "../media-file.ts"
import type { FeatureTable } from "./feature.ts"
import { emptyInFlight, emptyPendingCalls, emptyPendingToWidget, noCounters } from "./step.ts"
import { frozenEmptyMap } from "../frozen-empty.ts"
import type { Phase } from "../protocol-error.ts"

export type { Phase }

/** Limits protect the host from one widget; each is an option with a safe default. */
export interface Limits {
  /** How long a toWidget request may stay unanswered (MSC2764 recommends 10 s). */
  readonly requestTimeoutMs: number
  /** Homeserver calls one session may have in flight; past it the widget gets an error, never silence. */
  readonly maxPendingCalls: number
  /** Unanswered toWidget requests kept for matching; past it the oldest is given up as timed out. */
  readonly maxPendingToWidget: number
  /** MSC2974 request_capabilities budget: this many per window. */
  readonly capabilityRequests: { readonly budget: number; readonly windowMs: number }
  /** A prompt nobody answers is taken as "deny all" after this long. */
  readonly approvalTimeoutMs: number
  /**
   * Upper bound on `read_events` results, and on the `limit` a `read_relations` page asks of the
   * homeserver, whatever `limit` the widget asks for (each event may cost a decryption).
   */
  readonly readEventsMaxLimit: number
  /** Capabilities considered from one request; the rest are denied. */
  readonly maxCapabilitiesPerRequest: number
}

export const defaultLimits: Limits = {
  requestTimeoutMs: 10_000,
  maxPendingCalls: 64,
  maxPendingToWidget: 1_000,
  capabilityRequests: { budget: 5, windowMs: 60_000 },
  approvalTimeoutMs: 5 * 60_000,
  readEventsMaxLimit: 100,
  maxCapabilitiesPerRequest: 256
}

export interface SessionConfig {
  readonly widgetId: string
  /** `room`: acts in its own room. `account`: acts in the room the user is viewing. */
  readonly kind: "room" | "account"
  /** The room widget's room, or the account widget's initially viewed room. */
  readonly homeRoom?: string
  readonly waitForIframeLoad: boolean
  readonly origin?: string
  readonly policy: ApprovalPolicy
  readonly limits: Limits
  /**
   * Whether the embedding client can be asked about MSC1960 `get_openid` (the engine's
   * `openIdApprover`). Without one, what the policy leaves undecided is blocked at once.
   */
  readonly openIdApprover?: boolean
  /** What the embedding client serves itself (hooks, custom actions); absent: nothing. */
  readonly client?: ClientSide
  /**
   * How files travel in MSC4039 `upload_file` / `download_file` (see `media-file.ts`):
   * `structured-clone` (postMessage, the default: a Blob, an ArrayBuffer, a typed array or text)
   * or `base64` (JSON transports such as MSC3009 websockets, which cannot carry bytes).
   */
  readonly fileEncoding?: FileEncoding
  /**
   * The optional features served (`feature.ts`), one table per engine (`featureTable`); absent:
   * none, only the core proposals. `createEngine` passes every feature unless told otherwise.
   */
  readonly features?: FeatureTable
}

/** Why we are waiting for a widget's answer; data, never a closure, so state prints and replays. */
export type ToWidgetPurpose = "versions" | "capabilities" | "notify" | "delivery" | "turn" | "openid" | "client"

export interface PendingToWidget {
  readonly action: string
  readonly purpose: ToWidgetPurpose
  /** Timeout sweeps survived; see `sweepsToTimeout`. */
  readonly sweeps: number
  /** For purpose `client`: the client's request id (`session.request`), settled with the answer. */
  readonly request?: number
}

/** A homeserver (or engine service) call in flight, and what to do with its answer. */
export type PendingCall =
  | { readonly _tag: "Answer"; readonly raw: RawRequest; readonly format: "event" | "empty" | "body" }
  | { readonly _tag: "TurnWatch"; readonly raw: RawRequest }
  /**
   * An OpenID token for `raw` (answered at once) or, after a prompt, for the `get_openid`
   * requests in `waiting` (each told in its own `openid_credentials`).
   */
  | { readonly _tag: "OpenIdToken"; readonly raw: RawRequest | undefined; readonly waiting: ReadonlyArray<string> }
  | { readonly _tag: "ReadRooms"; readonly gather: number }
  | { readonly _tag: "ReadPart"; readonly gather: number; readonly roomIndex: number }
  | { readonly _tag: "StateRooms"; readonly gather: number }
  | { readonly _tag: "StatePart"; readonly gather: number }
  /** A `read_relations` page: the room asked (every event must be in it) and the type asked, if any. */
  | { readonly _tag: "Relations"; readonly raw: RawRequest; readonly roomId: string; readonly eventType?: string }
  /** MSC4039 `upload_file`: the server's size limit asked first; `file` is uploaded when it fits. */
  | { readonly _tag: "UploadSizeCheck"; readonly raw: RawRequest; readonly file: MediaFile }
  /** MSC4039 `upload_file` / `download_file`: the answer shaped for the widget's transport. */
  | { readonly _tag: "Media"; readonly raw: RawRequest; readonly answer: "uploaded" | "downloaded" }
  | { readonly _tag: "AccountDataRooms"; readonly gather: number }
  | { readonly _tag: "AccountDataPart"; readonly gather: number; readonly roomIndex: number }

/**
 * MSC1960 `get_openid`: what the user decided, and the prompt open now. An approval belongs to
 * the document it was given to (a new document asks again); a refusal belongs to the session,
 * like a denied capability, so a widget cannot prompt the user again by reloading itself.
 */
export interface OpenIdState {
  readonly decision: "allowed" | "blocked" | undefined
  /** The open prompt, and the ids of the `get_openid` requests answered `request` that wait for it. */
  readonly prompt: { readonly ticket: number; readonly waiting: ReadonlyArray<string> } | undefined
}

export const noOpenId: OpenIdState = Object.freeze({ decision: undefined, prompt: undefined })

/** A client hook or custom action in flight: the widget's request, and the timeout sweeps it survived. */
export interface PendingClientCall {
  readonly raw: RawRequest
  readonly action: string
  readonly call: ClientCall["_tag"]
  readonly sweeps: number
}

/** Several calls whose answers make one reply (multi-room reads, state loads). */
export type Gather =
  | {
      readonly _tag: "Read"
      readonly raw: RawRequest
      readonly query: ReadRequest
      readonly remaining: number
      readonly parts: ReadonlyArray<{ readonly events: ReadonlyArray<RoomEvent>; readonly end?: string; readonly withheld?: number } | undefined>
      readonly failed: boolean
    }
  | {
      readonly _tag: "State"
      readonly wanted: ReadonlyArray<{ readonly type: string; readonly stateKey?: string }>
      readonly remaining: number
      readonly events: ReadonlyArray<RoomEvent>
    }

  | {
      /** `com.beeper.read_room_account_data` over several rooms: one read per room, answered together. */
      readonly _tag: "AccountData"
      readonly raw: RawRequest
      readonly type: string
      readonly rooms: ReadonlyArray<string>
      readonly remaining: number
      /** Per room, in `rooms` order: the content, or undefined (none set, or not answered yet). */
      readonly parts: ReadonlyArray<Readonly<Record<string, unknown>> | undefined>
      readonly failed: boolean
    }

/** A validated read_events request. */
export interface ReadRequest {
  readonly type: string
  readonly stateKey?: string | true
  readonly msgtype?: string
  readonly limit: number
  readonly rooms: ReadonlyArray<string> | "*"
  readonly from?: string
  readonly dir: "b" | "f"
}

/** The widget's request as it arrived (responses clone it, whatever spelling it used). */
export type RawRequest = Readonly<Record<string, unknown>>

export interface Counters {
  readonly received: number
  readonly sent: number
  readonly errors: number
  readonly dropped: number
  readonly unmatched: number
  readonly timedOut: number
  /** Frames whose request id was already in flight: not served, not answered (the original answers). */
  readonly duplicates: number
  /** New documents in the widget's frame (reloads): each renegotiated from nothing. */
  readonly documents: number
}

/**
 * A session's data. Its phase is not here: it is the session chart's state
 * (`machines/src/session-machine.ts`), and handlers are told it (`Stepper.phase`).
 */
export interface SessionState {
  readonly config: SessionConfig
  /** The widget has spoken at least once (versions may be asked from then on). */
  readonly contacted: boolean
  /** The current document said `content_loaded`. */
  readonly contentLoaded: boolean
  /** Frame `load` events seen, and documents seen (see `document.ts`). */
  readonly frameLoads: number
  readonly document: number
  /** Account widgets follow the viewed room; room widgets keep theirs. */
  readonly homeRoom: string | undefined
  /** What the widget answered to our supported_api_versions; undefined until it did. */
  readonly widgetVersions: ReadonlyArray<string> | undefined
  /** Every capability the widget asked for in this session, first-asked order. */
  readonly requested: ReadonlyArray<string>
  readonly approved: ReadonlyArray<string>
  /** Denied in this session: never prompted again (MSC2974 anti-nagging). */
  readonly denied: ReadonlyArray<string>
  /** Derived from `approved`; kept beside it because it answers every routing question. */
  readonly permissions: Permissions
  readonly approval: { readonly ticket: number; readonly asked: ReadonlyArray<string>; readonly autoApproved: ReadonlyArray<string> } | undefined
  /** Capabilities asked for while a prompt was open; prompted next. */
  readonly queuedCapabilities: ReadonlyArray<string>
  readonly capabilityRequestsInWindow: number
  readonly pendingToWidget: ReadonlyMap<string, PendingToWidget>
  /**
   * The chart's timeout sweep is armed (it runs while a request other than `capabilities`, or a
   * client call, is pending, and one sweep longer).
   */
  readonly sweepArmed: boolean
  /**
   * The transport said its link is down (`TransportDown`, until `TransportUp`): the widget cannot
   * answer, so toWidget requests do not age; the transport delivers them (again) on resume.
   */
  readonly linkDown: boolean
  readonly pendingCalls: ReadonlyMap<number, PendingCall>
  /** The session's work with its embedding client (one shared value while there is none). */
  readonly clientWork: ClientWork
  readonly gathers: ReadonlyMap<number, Gather>
  /** fromWidget request ids being worked on, to refuse duplicates. */
  readonly inFlight: ReadonlySet<string>
  /** State kinds granted but not yet loaded for update_state (waiting for the widget's versions). */
  readonly stateToLoad: ReadonlyArray<{ readonly type: string; readonly stateKey?: string }>
  /** State changes held while an initial load is in flight, so they follow it. */
  readonly heldState: ReadonlyArray<RoomEvent> | undefined
  readonly turnWatching: boolean
  readonly openId: OpenIdState
  /** The counter behind host request ids and tickets: no randomness, so runs replay. */
  readonly seq: number
  readonly counters: Counters
}

/** The empty list every fresh state starts with (lists in the state are replaced, never written in place). */
export const none: ReadonlyArray<never> = Object.freeze([])
const noGathers: ReadonlyMap<number, Gather> = frozenEmptyMap()
export const noPendingClient: ReadonlyMap<number, PendingClientCall> = frozenEmptyMap()

/**
 * Hook and custom-action calls in flight, client toWidget requests held back, and the MSC2790
 * close: one field, so a session that never deals with its client carries one shared value.
 */
export interface ClientWork {
  /** Client hooks and custom actions in flight, by ticket (timed out by the sweep). */
  readonly calls: ReadonlyMap<number, PendingClientCall>
  /** Client toWidget requests waiting for the widget's versions (they are version-gated). */
  readonly held: ReadonlyArray<HeldClientRequest>
  /** MSC2790: this (modal) widget's `close_modal` is being served, or was; another is refused. */
  readonly modalClose: "pending" | "done" | undefined
}

export const idleClientWork: ClientWork = Object.freeze({ calls: noPendingClient, held: none, modalClose: undefined })

/** A fresh session's data (the chart starts it in `loading`). */
export const initialState = (config: SessionConfig): SessionState => ({
  config,
  contacted: false,
  contentLoaded: false,
  frameLoads: 0,
  document: 0,
  homeRoom: config.homeRoom,
  widgetVersions: undefined,
  requested: none,
  approved: none,
  denied: none,
  permissions: emptyPermissions,
  approval: undefined,
  queuedCapabilities: none,
  capabilityRequestsInWindow: 0,
  pendingToWidget: emptyPendingToWidget,
  sweepArmed: false,
  linkDown: false,
  pendingCalls: emptyPendingCalls,
  clientWork: idleClientWork,
  gathers: noGathers,
  inFlight: emptyInFlight,
  stateToLoad: none,
  heldState: undefined,
  turnWatching: false,
  openId: noOpenId,
  seq: 0,
  counters: noCounters
})

/** A toWidget request is given up after this many timeout sweeps (sweeps run every timeout/4). */
export const sweepsToTimeout = 4

export const isServing = (phase: Phase) => phase === "ready" || phase === "renegotiating"

export type { WidgetRequest }
