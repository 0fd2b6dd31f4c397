/** The bench's world: one room, one user, the host's and the widgets' origins, what a widget asks for. */

export const ROOM = "!bench:example.org"
export const USER = "@bench:example.org"
export const HOST_ORIGIN = "https://client.example.org"
export const WIDGET_ORIGIN = "https://widget.example.org"
export const WIDGET_URL = `${WIDGET_ORIGIN}/index.html`

export const receiveEvent = (type: string) => `org.matrix.msc2762.receive.event:${type}`
export const sendEvent = (type: string) => `org.matrix.msc2762.send.event:${type}`

/** The capability set of every widget that sends and receives room messages. */
export const MESSAGE_CAPABILITIES: ReadonlyArray<string> = [sendEvent("m.room.message"), receiveEvent("m.room.message")]

/** What a widget is: its id, the room it lives in, the capabilities it asks for. */
export interface WidgetPlan {
  readonly id: string
  readonly roomId: string
  readonly capabilities: ReadonlyArray<string>
}
