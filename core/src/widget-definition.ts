/**
 * A widget as the engine hosts it: parsed from room state (`m.widget`,
 * `im.vector.modular.widgets`), account data (`m.widgets`) or configuration.
 * Parsing and validation are added beside this type (see `parseWidgetDefinition`).
 */

/** Stable transport names (MSC3009); unstable `org.matrix.msc3009.*` names are normalised to these. */
export type TransportName = "m.postmessage" | "m.websockets"

export interface WidgetDefinition {
  readonly id: string
  /** `room`: acts in `roomId`. `account`: acts in whichever room the user is viewing. */
  readonly kind: "room" | "account"
  /** The widget's own room, for room widgets. */
  readonly roomId?: string
  readonly type: string
  /** The URL template, before `$matrix_*` variables are filled in. */
  readonly url: string
  readonly name?: string
  readonly data: Readonly<Record<string, unknown>>
  readonly creatorUserId?: string
  readonly waitForIframeLoad: boolean
  /** The transports the widget says it can use, in its order of preference, normalised. */
  readonly transports: ReadonlyArray<TransportName>
}
