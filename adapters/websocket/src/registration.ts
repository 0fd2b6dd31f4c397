/**
 * What the websocket transport holds per connection and per registered widget: mutable records
 * the transport owns; every decision about them is the lifecycle's (registration-lifecycle.ts).
 */
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetSession } from "@widgethost/engine"
import type { WebSocket } from "ws"
import type { LifecycleState } from "./registration-lifecycle.ts"
import type { WriteHook } from "./transport-types.ts"

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

/** A queued message whose writing the registration's `onWrite` hook wants to hear of. */
export interface Marked {
  readonly data: string
  readonly mark: unknown
}

/** One outbound message, serialised: most are plain strings. */
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
  gapSeq: number
  readonly gapRequests: Set<string>
  grace: unknown
}
