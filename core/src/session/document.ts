/**
 * The widget's document. A session's grants belong to the document that negotiated them: when
 * the frame loads a new document (a reload, or the widget navigating itself), nothing approved
 * for the old one may serve the new one until it is approved again.
 *
 * Two signals mark a new document, whichever comes first:
 * - a frame `load` beyond the loads already accounted for (every document fires exactly one);
 * - a second `content_loaded` from a widget that starts with it (`waitForIframeLoad: false`,
 *   and every websocket widget, MSC3009): that is the new document speaking first, and its
 *   `content_loaded` may overtake the frame's `load` event on the way to the host.
 * `document` counts documents seen, `frameLoads` the loads: a load is news only while
 * `frameLoads` exceeds `document`, so the load of a document that already spoke is not counted
 * twice.
 */
import { emptyPermissions } from "../permissions.ts"
import { none } from "./state.ts"
import { emptyInFlight, emptyPendingCalls, emptyPendingToWidget, type Stepper } from "./step.ts"
import { startNegotiation } from "./negotiation.ts"

/** The frame fired `load`. */
export const onFrameLoaded = (s: Stepper): void => {
  const { state } = s
  const frameLoads = state.frameLoads + 1
  s.set({ frameLoads })
  if (frameLoads > state.document) {
    if (state.document > 0) replaceDocument(s, frameLoads)
    else s.set({ document: frameLoads })
  }
  if (s.state.phase === "loading" && state.config.waitForIframeLoad) startNegotiation(s)
}

/**
 * The widget said `content_loaded`. Acknowledged either way; for widgets that start with it, the
 * first one of a document starts negotiation and any later one announces a new document.
 */
export const onContentLoaded = (s: Stepper, acknowledge: () => void): void => {
  const { state } = s
  if (state.config.waitForIframeLoad) return acknowledge() // the load is the signal; this is a courtesy
  if (state.contentLoaded) replaceDocument(s, state.document + 1)
  else if (state.document === 0) s.set({ document: 1 })
  s.set({ contentLoaded: true })
  acknowledge()
  if (s.state.phase === "loading") startNegotiation(s)
}

/**
 * Ends the old document's part of the session: its prompt is withdrawn, its deliveries stop, its
 * TURN watch ends, answers still on their way to it are dropped (their calls may complete at the
 * homeserver, but no reply reaches the new document), and the session goes back to `loading`.
 * Denials stay: a widget must not be able to re-prompt the user by reloading itself. Counters,
 * the id sequence and the MSC2974 rate window stay: they belong to the session.
 */
const replaceDocument = (s: Stepper, document: number): void => {
  const { state } = s
  s.count("documents")
  s.report({ _tag: "DocumentReplaced", document })
  if (state.approval !== undefined) {
    s.emit({ _tag: "CancelTimer", timer: "approval-timeout" })
    s.emit({ _tag: "CancelApproval", ticket: state.approval.ticket })
  }
  if (state.turnWatching || [...state.pendingCalls.values()].some((call) => call._tag === "TurnWatch")) s.emit({ _tag: "UnwatchTurn" })
  if (state.approved.length > 0) s.emit({ _tag: "Subscribe", permissions: emptyPermissions, homeRoom: state.homeRoom })
  s.set({
    phase: "loading",
    document,
    contentLoaded: false,
    widgetVersions: undefined,
    requested: none,
    approved: none,
    permissions: emptyPermissions,
    approval: undefined,
    queuedCapabilities: none,
    pendingToWidget: emptyPendingToWidget,
    pendingCalls: emptyPendingCalls,
    gathers: new Map(),
    inFlight: emptyInFlight,
    stateToLoad: none,
    heldState: undefined,
    turnWatching: false
  })
}
