import * as Result from "./result.ts"
import { TaggedError } from "./tagged-error.ts"
import type { TransportName, WidgetDefinition } from "./widget-definition.ts"

/**
 * MSC3009 transport negotiation. The widget lists what it can speak (`transports`, unstable
 * `org.matrix.msc3009.transports`); the host picks, before rendering, the best one it can serve and
 * tells the widget through `$matrix_widget_transport`.
 *
 * The rules, exactly as MSC3009 states them:
 * 1. `transports` empty, missing or not an array: the widget meant `["m.postmessage"]`.
 * 2. No known transport in the array: the widget supports `m.postmessage` as a baseline.
 * 3. Otherwise the host picks among the listed transports it can serve.
 * 4. `m.websockets` implies `waitForIframeLoad: false` (the widget makes first contact).
 *
 * Where MSC3009 is silent, this module decides:
 * - The stable field wins when it is a non-empty array; otherwise the unstable field is read
 *   (a wrong-typed stable field counts as missing, like rule 1).
 * - Unstable names are normalised (`org.matrix.msc3009.postmessage` → `m.postmessage`,
 *   `org.matrix.msc3009.websockets` → `m.websockets`); non-strings and unknown names are ignored;
 *   duplicates keep their first position.
 * - When the widget lists only transports the host cannot serve, the host falls back to
 *   `m.postmessage` if it can serve that ("`m.postmessage` remains the bare minimum every widget
 *   must support"). A host that cannot serve `m.postmessage` either (a headless host that only
 *   listens on websockets) gets `NoCommonTransport` and must not render the widget.
 */

export const POSTMESSAGE: TransportName = "m.postmessage"
export const WEBSOCKETS: TransportName = "m.websockets"

const NAMES: Readonly<Record<string, TransportName>> = {
  "m.postmessage": "m.postmessage",
  "m.websockets": "m.websockets",
  "org.matrix.msc3009.postmessage": "m.postmessage",
  "org.matrix.msc3009.websockets": "m.websockets"
}

/** The unstable (MSC3009 prefix) spelling of a transport name, for the unstable template variable. */
export const unstableTransportName = (name: TransportName): string =>
  name === "m.postmessage" ? "org.matrix.msc3009.postmessage" : "org.matrix.msc3009.websockets"

/**
 * The effective transports of a widget definition's content, in the widget's order: never empty.
 *
 * @example transportsOf({ "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] }) // ["m.websockets"]
 * @example transportsOf({ transports: "m.websockets" }) // ["m.postmessage"] (wrong type)
 */
export const transportsOf = (content: Readonly<Record<string, unknown>>): ReadonlyArray<TransportName> => {
  const stable = content["transports"]
  const listed = Array.isArray(stable) && stable.length > 0 ? stable : content["org.matrix.msc3009.transports"]
  if (!Array.isArray(listed)) return [POSTMESSAGE]
  const known: Array<TransportName> = []
  for (const name of listed) {
    const normalised = typeof name === "string" ? NAMES[name] : undefined
    if (normalised !== undefined && !known.includes(normalised)) known.push(normalised)
  }
  return known.length === 0 ? [POSTMESSAGE] : known
}

/** What a host can serve, and in which order it would rather use them. */
export interface HostTransports {
  readonly supported: ReadonlyArray<TransportName>
  /** Most preferred first; transports not listed here rank after, in `supported` order. */
  readonly prefer: ReadonlyArray<TransportName>
}

/** A browser host: postMessage into an iframe is the native path, websockets for popped-out widgets. */
export const browserHost: HostTransports = { supported: [POSTMESSAGE, WEBSOCKETS], prefer: [POSTMESSAGE] }
/** A headless host has no iframe to post into: websockets only. */
export const headlessHost: HostTransports = { supported: [WEBSOCKETS], prefer: [WEBSOCKETS] }

export interface TransportChoice {
  readonly transport: TransportName
  /** The `waitForIframeLoad` the session must use: the definition's, but always `false` for websockets. */
  readonly waitForIframeLoad: boolean
}

export class NoCommonTransport extends TaggedError("NoCommonTransport")<{
  readonly widget: ReadonlyArray<TransportName>
  readonly host: ReadonlyArray<TransportName>
}> {}

/**
 * Picks the transport for one rendering of a widget, before it is rendered.
 *
 * @example chooseTransport({ transports: ["m.postmessage", "m.websockets"], waitForIframeLoad: true }, headlessHost)
 * // Result.succeed({ transport: "m.websockets", waitForIframeLoad: false })
 */
export const chooseTransport = (
  widget: Pick<WidgetDefinition, "transports" | "waitForIframeLoad">,
  host: HostTransports
): Result.Result<TransportChoice, NoCommonTransport> => {
  const ranked = [...host.prefer.filter((t) => host.supported.includes(t)), ...host.supported]
  // Rule 1/2 are already applied by `transportsOf`; an empty list here still means postMessage.
  const offered = widget.transports.length === 0 ? [POSTMESSAGE] : widget.transports
  const transport =
    ranked.find((t) => offered.includes(t)) ??
    // The widget lists only transports we cannot serve: postMessage is every widget's baseline.
    (host.supported.includes(POSTMESSAGE) ? POSTMESSAGE : undefined)
  if (transport === undefined) return Result.fail(new NoCommonTransport({ widget: offered, host: host.supported }))
  return Result.succeed({
    transport,
    waitForIframeLoad: transport === WEBSOCKETS ? false : widget.waitForIframeLoad
  })
}
