/**
 * What a client hands `createEngine` and what it gets back: the engine's public contract, apart
 * from the engine itself (engine.ts).
 */
import type { ApprovalPolicy, Clock, OpenIdApprover, HomeserverUpdate, Limits, PromiseHomeserverPort, Report, SessionFeature, TransportName, WidgetDefinition } from "@widgethost/core"
import type { Approver } from "./approval-prompt.ts"
import type { ClientHooks, CustomAction } from "./client-hooks.ts"
import type { LifecycleEvent } from "./lifecycle.ts"
import type { RecordedSteps } from "./recorded-steps.ts"
import type { EngineSession, SessionInfo } from "./session-handle.ts"
import type { TurnPoller, TurnPollerOptions } from "./turn-poller.ts"
import type { WidgetSink } from "./widget-session.ts"

export interface EngineOptions {
  /**
   * The Matrix account widgets act as: a `PromiseHomeserverPort`, plain async functions (e.g.
   * `fromMatrixClient` of `@widgethost/matrix-js-sdk`). An Effect-native `HomeserverPort` (e.g.
   * `connectHomeserver` of `@widgethost/homeserver-client`) goes through `fromEffectPort` of
   * `@widgethost/core/effect`; given one as it is, `createEngine` throws a `TypeError` saying so.
   */
  readonly homeserver: PromiseHomeserverPort
  /**
   * The optional proposals served beyond the core ones (`toDeviceFeature`, `delayedEventsFeature`,
   * `relationsFeature`, `userDirectoryFeature`, `mediaFeature`, `openIdFeature`,
   * `roomAccountDataFeature`, `rtcFeature`, `clientActionsFeature`; `allFeatures` is every one). A feature left out is
   * not served: its capabilities are denied, its actions refused, its versions not advertised.
   * Absent: `createEngine` serves `allFeatures`, `createLeanEngine` none.
   */
  readonly features?: ReadonlyArray<SessionFeature>
  /** Absent: whatever the policy leaves undecided is denied. */
  readonly approver?: Approver
  readonly policy?: ApprovalPolicy
  /** Asked about MSC1960 `get_openid` when the policy has no `m.openid` rule for it. Absent: blocked. */
  readonly openIdApprover?: OpenIdApprover
  readonly limits?: Partial<Limits>
  /** Every timer and reading of time in the engine: a `ManualClock` (or wrapped `SimulatedClock`) in tests; `realClock` otherwise. */
  readonly clock?: Clock
  readonly turn?: TurnPollerOptions
  readonly onReport?: (sessionId: string, widgetId: string, report: Report) => void
  /**
   * A callback of the embedder threw or rejected (a widget sink, the approver, the homeserver
   * port, `onReport`, a close listener). The engine carries on: that message is lost, that
   * prompt is denied, that homeserver call answers the widget with an error; other sessions
   * never notice. Default: `console.error`.
   */
  readonly onError?: (error: unknown, where: EngineFault) => void
  /** Whether to subscribe to the homeserver port's updates (default true). */
  readonly subscribe?: boolean
  /**
   * The client-side actions the client serves (navigate, always-on-screen, stickers, modals), one
   * hook each. Without a hook the action is unserved: its capability is denied, the action unknown.
   * Served by `clientActionsFeature` (in `allFeatures`, so `createEngine` serves them): a lean
   * engine made without it throws when given any hook.
   */
  readonly hooks?: ClientHooks
  /**
   * fromWidget actions the engine does not know, served by the client (`io.element.join`, ...).
   * Engine actions cannot be overridden: `createEngine` throws when one is named here. Like
   * `hooks`, they need `clientActionsFeature`.
   */
  readonly customActions?: Readonly<Record<string, CustomAction>>
  /**
   * Extra `supported_api_versions` entries, for what the client serves (its custom actions, its
   * toWidget requests such as MSC2873 `theme_change`). A known version whose actions nothing
   * serves is refused at `createEngine`. Versions the hooks serve are added without asking.
   */
  readonly apiVersions?: ReadonlyArray<string>
  /**
   * Version-gated toWidget requests (MSC2873 `theme_change`, `language_change`; MSC2790
   * `widget_config`, `button_clicked`, `close_modal`) that `session.request` sends at once,
   * whatever versions the widget announced, as matrix-widget-api's `ClientWidgetApi` does: its
   * `WidgetApi` never announces `org.matrix.msc2790`, yet Element Web's modal widgets are sent
   * those. Default: none; each waits for the widget's versions and is refused without its
   * version. Any other name is refused at `createEngine`.
   */
  readonly ungatedRequests?: ReadonlyArray<string>
  /**
   * Every lifecycle event of every session (phase, capabilities, closed, error), beside each
   * session's own `on`. Given, every session is watched; absent, only those someone listens to.
   */
  readonly onLifecycle?: (sessionId: string, widgetId: string, event: LifecycleEvent) => void
  /**
   * Where the session chart's steps are recorded once and replayed, skipping xstate's macrostep
   * search on every later step (`recordedSteps`, shared by all engines, or a `new RecordedSteps()`).
   * `createEngine` uses `recordedSteps` unless given one; `createLeanEngine` none unless given
   * one: each step then goes through xstate's macrostep, to the same effect, a little slower,
   * without the recorder in the bundle.
   */
  readonly recordedSteps?: RecordedSteps
}

/** Which embedder callback failed, for which session. */
export interface EngineFault {
  readonly fault: "send" | "approver" | "homeserver" | "report" | "close-listener" | "listener"
  readonly sessionId: string
  readonly widgetId: string
}

export interface OpenSessionOptions {
  readonly widget: WidgetDefinition
  readonly send: WidgetSink
  /** The widget's origin, for policy rules. */
  readonly origin?: string
  /** Overrides the definition's waitForIframeLoad (MSC3009: false for websockets). */
  readonly waitForIframeLoad?: boolean
  /**
   * The transport the widget speaks over (MSC3009), `m.postmessage` by default. It decides how
   * MSC4039 files travel: over postMessage as Blobs and ArrayBuffers (structured clone), over
   * `m.websockets` (JSON) as base64 strings; see `@widgethost/core`'s `readWidgetFile`.
   */
  readonly transport?: TransportName
}

export interface Engine {
  readonly openSession: (options: OpenSessionOptions) => EngineSession
  /** The room the user is viewing; account widgets act there. */
  readonly setViewedRoom: (roomId: string | undefined) => void
  readonly sessions: () => ReadonlyArray<SessionInfo>
  readonly session: (sessionId: string) => EngineSession | undefined
  /** Feed a homeserver update by hand (when `subscribe` is false, or from a recorded run). */
  readonly deliver: (update: HomeserverUpdate) => void
  /** Runs every input still waiting in session inboxes (normally done at the end of each turn). */
  readonly flush: () => void
  readonly turnPoller: TurnPoller
  readonly stop: () => void
}

