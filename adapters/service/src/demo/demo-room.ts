/**
 * The demo room of `npm start`: a public room `#demo` on the embedded homeserver holding the two
 * demo widgets the service serves itself (demo-pages.ts). The widgets' URLs name the widget
 * listener's origin, which can change between runs (a taken port), so every start puts the
 * widget state events again where they differ; an unchanged one is not re-sent, so the widget's
 * token, and its URI, stay the same.
 */
import { StartupError } from "../startup-error.ts"

/** The state key and `id` of each demo widget, and the page that is it. */
export const DEMO_WIDGETS = [
  { id: "chat", name: "Demo chat", page: "chat.html" },
  { id: "call", name: "Demo call", page: "call.html" }
] as const

/** Widgets of earlier versions of the demo room, removed on start (their page never existed). */
const RETIRED_WIDGETS = ["demo"]

const WIDGET_STATE = "im.vector.modular.widgets"

/**
 * A demo widget's state content, its URL on `pageOrigin` (`http://127.0.0.1:PORT`). The fragment
 * carries what the page needs: its websocket URI, its id (the widget client names itself with it),
 * the room and the user. A fragment is never sent to a server, so the URI's token stays in the
 * browser.
 *
 * @example demoWidgetContent("http://127.0.0.1:40001", DEMO_WIDGETS[0]).url // "http://127.0.0.1:40001/demo/chat.html#ws=$matrix_websocket_uri&…"
 */
export const demoWidgetContent = (pageOrigin: string, widget: (typeof DEMO_WIDGETS)[number]) => ({
  id: widget.id,
  type: "m.custom",
  url: `${pageOrigin}/demo/${widget.page}#ws=$matrix_websocket_uri&widgetId=$matrix_widget_id&room=$matrix_room_id&user=$matrix_user_id`,
  name: widget.name,
  data: {},
  waitForIframeLoad: false,
  transports: ["m.websockets"]
})

const client = (baseUrl: string, accessToken: string) => async (method: string, path: string, body?: unknown): Promise<Record<string, unknown> | undefined> => {
  const response = await fetch(`${baseUrl}/_matrix/client/v3${path}`, {
    method,
    headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const json = (await response.json()) as Record<string, unknown>
  if (method === "GET" && response.status === 404) return undefined
  if (!response.ok) throw new StartupError(`embedded homeserver refused ${method} ${path}: ${String(json.errcode)} ${String(json.error)}`)
  return json
}

/**
 * State events any joined member of the demo room may send (power level 0; other state needs the
 * `public_chat` preset's 50): the widget definitions and their layout, so a second person can add
 * or rearrange widgets from any client, and MatrixRTC memberships, which a call widget sends for
 * its user. Widgets defined by others are hosted like the demo's own: their capabilities still
 * wait for the operator's approval in the console, which shows each prompt's widget URL and origin.
 */
export const DEMO_MEMBER_STATE: ReadonlyArray<string> = [WIDGET_STATE, "m.widget", "io.element.widgets.layout", "org.matrix.msc3401.call.member", "m.call.member"]

/**
 * Lets joined members send {@link DEMO_MEMBER_STATE}: the room's power levels get those event
 * types at 0 where they are missing or higher (a room of an earlier run included); returns
 * whether it changed them.
 */
export const ensureDemoPowerLevels = async (baseUrl: string, accessToken: string, roomId: string): Promise<boolean> => {
  const call = client(baseUrl, accessToken)
  const path = `/rooms/${encodeURIComponent(roomId)}/state/m.room.power_levels/`
  const levels = (await call("GET", path)) ?? {}
  const events = typeof levels["events"] === "object" && levels["events"] !== null ? (levels["events"] as Record<string, unknown>) : {}
  const missing = DEMO_MEMBER_STATE.filter((type) => events[type] !== 0)
  if (missing.length === 0) return false
  await call("PUT", path, { ...levels, events: { ...events, ...Object.fromEntries(missing.map((type) => [type, 0])) } })
  return true
}

/**
 * Creates the public demo room once (alias #demo), and lets its members send the demo's state
 * events; `known` is the room id kept from an earlier run.
 */
export const ensureDemoRoom = async (baseUrl: string, accessToken: string, known: string | undefined): Promise<string> => {
  if (known !== undefined) {
    await ensureDemoPowerLevels(baseUrl, accessToken, known)
    return known
  }
  const created = await client(baseUrl, accessToken)("POST", "/createRoom", {
    preset: "public_chat",
    visibility: "public",
    name: "widgethost demo",
    topic: "Widgets hosted by widgethost: open the chat and call widgets from the ready line or the console",
    room_alias_name: "demo"
  })
  const roomId = String(created!.room_id)
  await ensureDemoPowerLevels(baseUrl, accessToken, roomId)
  return roomId
}

/**
 * Puts the demo widgets in the room's state where they differ from what is there, and removes
 * retired ones. Returns how many state events it sent.
 */
export const ensureDemoWidgets = async (baseUrl: string, accessToken: string, roomId: string, pageOrigin: string): Promise<number> => {
  const call = client(baseUrl, accessToken)
  const room = `/rooms/${encodeURIComponent(roomId)}/state/${WIDGET_STATE}`
  let sent = 0
  for (const widget of DEMO_WIDGETS) {
    const want = demoWidgetContent(pageOrigin, widget)
    const have = await call("GET", `${room}/${widget.id}`)
    if (JSON.stringify(have) === JSON.stringify(want)) continue
    await call("PUT", `${room}/${widget.id}`, want)
    sent++
  }
  for (const id of RETIRED_WIDGETS) {
    const have = await call("GET", `${room}/${id}`)
    if (have === undefined || Object.keys(have).length === 0) continue
    await call("PUT", `${room}/${id}`, {})
    sent++
  }
  return sent
}
