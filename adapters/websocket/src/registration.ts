/**
 * What the websocket transport holds per connection and per registered widget: mutable records
 * the transport owns; every decision about them is the lifecycle's (registration-lifecycle.ts).
 */
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import type { WebSocket } from "ws"
import type { LifecycleState } from "./registration-lifecycle.ts"
import type { WriteHook } from "./transport-types.ts"
import type { UnansweredRequests } from "./unanswered-requests.ts"
import type { AnsweredRequests } from "./answered-requests.ts"

/** One connection. It ends once; events after that are ignored. */
export interface Link {
  readonly ws: WebSocket
  /** The upgrade request's `Origin` (a browser page's), undefined for clients that send none. */
  readonly origin: string | undefined
  /** A write past the high water mark is not yet flushed: new messages queue. */
  blocked: boolean
  received: number
  active: boolean
  idleMs: number
  ended: boolean
  ticker: unknown
  rateWindow: unknown
}

/**
 * A queued message the transport must do more with than write it: tell the registration's
 * `onWrite` hook (`mark`), or keep it once written until the widget answers (`requestId`, a
 * toWidget request), so a resume can deliver it again.
 */
export interface Marked {
  readonly data: string
  readonly mark?: unknown
  readonly requestId?: string | undefined
  /** An answer to the widget's request with this id: the transport notes which link it went out on. */
  readonly answerTo?: string | undefined
}

/** One outbound message, serialised: most are plain strings (answers to the widget's requests). */
export type Outbound = string | Marked

/** One registered widget: its lifecycle state and what the transport holds for it. */
export interface Registration {
  readonly widgetId: string
  readonly digest: string
  readonly open: (send: (message: WidgetMessage) => void, connection: { readonly origin: string | undefined }) => WidgetSession
  readonly origins: ReadonlySet<string>
  readonly onWrite: WriteHook | undefined
  lifecycle: LifecycleState
  /** Bumped whenever a session ends; a `send` of an older session is stale. */
  generation: number
  session: { readonly session: WidgetSession; readonly unsubscribe: () => void } | undefined
  link: Link | undefined
  queue: Array<Outbound>
  /** toWidget requests written and not yet answered, to deliver again on a resumed link. */
  readonly unanswered: UnansweredRequests
  /** The widget's requests seen and the answers given, to answer one the widget sends again once, never running it twice. */
  readonly answered: AnsweredRequests
  gapSeq: number
  readonly gapRequests: Set<string>
  grace: unknown
}
