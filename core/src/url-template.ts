import { unstableTransportName } from "./transport-choice.ts"
import type { TransportName } from "./widget-definition.ts"

/**
 * Widget URL templating (MSC2764 "URL Templating", MSC2774, MSC2873, MSC3009, MSC3819).
 *
 * - Every value is URL-encoded with `encodeURIComponent`, so a value can never inject a variable
 *   (`$` becomes `%24`) nor break out of its URL component.
 * - The host's variables take priority over `data` keys of the same name (MSC2764).
 * - Host variables are always filled, with MSC2764's fallbacks: room id `""` when none, display
 *   name falls back to the user id, avatar URL `""`; the other client variables are `""` when the
 *   host did not give them, and `$matrix_websocket_uri` is `""` unless the transport is websockets.
 * - Names are matched longest first in one pass, so `$matrix_room_id_x` is the `data` key
 *   `matrix_room_id_x` when there is one. A variable's end is not delimited (MSC2764: variables
 *   "can appear anywhere in the URL"), so without such a key `$matrix_room_id_x` renders as the
 *   room id followed by `_x`, as in matrix-widget-api.
 * - `$` followed by anything that is neither a host variable nor a `data` key stays as it is.
 * - `data` values that are strings, numbers or booleans are substituted as text; MSC2764 leaves
 *   objects, arrays and `null` undefined, and we substitute their JSON.
 */
export interface TemplateVariables {
  readonly widgetId: string
  readonly userId: string
  /** The room the widget acts in; `""` when none applies. */
  readonly roomId?: string
  /** Falls back to `userId`. */
  readonly displayName?: string
  /** The HTTP(S) download URL of the user's avatar, not the `mxc://` URI. */
  readonly avatarUrl?: string
  /** MSC2873 client id, e.g. `io.element.web`. */
  readonly clientId?: string
  readonly clientTheme?: string
  /** RFC 5646 language tag (underscores allowed). */
  readonly clientLanguage?: string
  /** MSC3819 device id. */
  readonly deviceId?: string
  /** MSC3009: the transport the host chose. */
  readonly transport?: TransportName
  /** MSC3009: the `ws://`/`wss://` URI to connect to, when the transport is websockets. */
  readonly websocketUri?: string
  /** The homeserver base URL (matrix-widget-api's `$org.matrix.msc4039.matrix_base_url`). */
  readonly baseUrl?: string
  /** The widget definition's `data`: each key is a variable. */
  readonly data?: Readonly<Record<string, unknown>>
}

/** The host's variables (without `$`), stable and unstable spellings. */
export const hostVariables = (vars: TemplateVariables): Readonly<Record<string, string>> => {
  const roomId = vars.roomId ?? ""
  const clientId = vars.clientId ?? ""
  const clientTheme = vars.clientTheme ?? ""
  const clientLanguage = vars.clientLanguage ?? ""
  const deviceId = vars.deviceId ?? ""
  const websocketUri = vars.transport === "m.websockets" ? (vars.websocketUri ?? "") : ""
  return {
    matrix_widget_id: vars.widgetId,
    "org.matrix.msc2774_widget_id": vars.widgetId,
    matrix_room_id: roomId,
    matrix_user_id: vars.userId,
    matrix_display_name: vars.displayName === undefined || vars.displayName === "" ? vars.userId : vars.displayName,
    matrix_avatar_url: vars.avatarUrl ?? "",
    matrix_client_id: clientId,
    "org.matrix.msc2873.client_id": clientId,
    matrix_client_theme: clientTheme,
    "org.matrix.msc2873.client_theme": clientTheme,
    matrix_client_language: clientLanguage,
    "org.matrix.msc2873.client_language": clientLanguage,
    matrix_device_id: deviceId,
    "org.matrix.msc3819.matrix_device_id": deviceId,
    // The stable variable carries the stable name; the unstable variable the unstable name.
    matrix_widget_transport: vars.transport ?? "",
    "org.matrix.msc3009.widget_transport": vars.transport === undefined ? "" : unstableTransportName(vars.transport),
    matrix_websocket_uri: websocketUri,
    "org.matrix.msc3009.websocket_uri": websocketUri,
    "org.matrix.msc4039.matrix_base_url": vars.baseUrl ?? ""
  }
}

const asText = (value: unknown): string =>
  typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value) ?? ""

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Fills a widget URL template; see the module comment for the rules.
 *
 * @example
 * renderWidgetUrl("https://w.example/?room=$matrix_room_id&t=$title", { widgetId: "w", userId: "@a:x", roomId: "!r:x", data: { title: "a b" } })
 * // "https://w.example/?room=!r%3Ax&t=a%20b"
 */
export const renderWidgetUrl = (template: string, vars: TemplateVariables): string => {
  const values = new Map<string, string>()
  for (const [key, value] of Object.entries(vars.data ?? {})) {
    if (key !== "" && value !== undefined) values.set(key, asText(value))
  }
  for (const [key, value] of Object.entries(hostVariables(vars))) values.set(key, value)
  if (values.size === 0) return template
  const names = [...values.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp)
  const pattern = new RegExp(`\\$(${names.join("|")})`, "g")
  return template.replace(pattern, (_match, name: string) => encodeURIComponent(values.get(name) ?? ""))
}
