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
import { dropClientRequests } from "./client-requests.ts"
import { noOpenId, none, type SessionState } from "./state.ts"
import { emptyInFlight, emptyPendingCalls, emptyPendingToWidget, type Stepper } from "./step.ts"

/** Guard: this frame `load` brings a new document (one beyond the first, not yet seen speaking). */
export const loadBringsNewDocument = (state: SessionState): boolean => state.frameLoads + 1 > state.document && state.document > 0

/** Guard: this `content_loaded` (from a widget that starts with it) is a new document speaking first. */
export const contentBringsNewDocument = (state: SessionState): boolean => state.contentLoaded

/** The frame fired `load` and no new document came with it (the first one, or one that already spoke). */
export const onFrameLoad = (s: Stepper): void => {
  const frameLoads = s.state.frameLoads + 1
  s.set({ frameLoads })
  // The first load names the first document (a later one would have been a new document).
  if (s.state.document === 0) s.set({ document: frameLoads })
}

/** The frame fired `load` with a new document in it. */
export const onFrameLoadOfNewDocument = (s: Stepper): void => {
  const frameLoads = s.state.frameLoads + 1
  s.set({ frameLoads })
  replaceDocument(s, frameLoads)
}

/** A widget that starts with `content_loaded` said it: its first document speaks. */
export const onFirstContentLoaded = (s: Stepper): void => {
  if (s.state.document === 0) s.set({ document: 1 })
  s.set({ contentLoaded: true })
}

/** A second `content_loaded`: a new document speaks before its frame's `load` reached the host. */
export const onContentLoadedOfNewDocument = (s: Stepper): void => {
  replaceDocument(s, s.state.document + 1)
  s.set({ contentLoaded: true })
}

/**
 * Ends the old document's part of the session: its prompt is withdrawn, its deliveries stop, its
 * TURN watch ends, answers still on their way to it are dropped (their calls may complete at the
 * homeserver, but no reply reaches the new document), the client's hooks still working for it are
 * told to stop; the chart goes back to `loading`.
 * Denials stay: a widget must not be able to re-prompt the user by reloading itself. Counters,
 * the id sequence and the MSC2974 rate window stay: they belong to the session.
 */
const replaceDocument = (s: Stepper, document: number): void => {
  const { state } = s
  s.count("documents")
  s.report({ _tag: "DocumentReplaced", document })
  // The chart leaves the old document's phase (and with it the approval timeout).
  if (state.approval !== undefined) s.emit({ _tag: "CancelApproval", ticket: state.approval.ticket })
  if (state.openId.prompt !== undefined) s.emit({ _tag: "CancelApproval", ticket: state.openId.prompt.ticket })
  if (state.turnWatching || [...state.pendingCalls.values()].some((call) => call._tag === "TurnWatch")) s.emit({ _tag: "UnwatchTurn" })
  if (state.approved.length > 0) s.emit({ _tag: "Subscribe", permissions: emptyPermissions, homeRoom: state.homeRoom })
  s.state.config.features?.clientActions?.withdraw(s)
  dropClientRequests(s, "the widget's frame holds a new document")
  s.set({
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
    turnWatching: false,
    // An OpenID approval was the old document's; a refusal stays (see `OpenIdState`).
    openId: state.openId.decision === "blocked" ? { decision: "blocked", prompt: undefined } : noOpenId
  })
}
