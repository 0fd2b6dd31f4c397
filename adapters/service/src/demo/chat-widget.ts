/**
 * The demo chat widget (browser): the room's recent messages through `read_events`, live ones as
 * the host pushes them (`send_event`), a box to send one, and the approved capabilities. Served
 * by the service at `/demo/chat.html`.
 */
import type { WidgetClient } from "@widgethost/widget-client"
import { byId, h, readParams, run, setStatus, textOf } from "./demo-widget-page.ts"

const READ = "org.matrix.msc2762.receive.event:m.room.message"
const SEND = "org.matrix.msc2762.send.event:m.room.message"

interface RoomMessage {
  readonly event_id?: unknown
  readonly sender?: unknown
  readonly type?: unknown
  readonly origin_server_ts?: unknown
  readonly content?: { readonly body?: unknown; readonly msgtype?: unknown }
}

const shown = new Set<string>()

const show = (event: RoomMessage) => {
  if (event.type !== "m.room.message" || typeof event.event_id !== "string" || shown.has(event.event_id)) return
  shown.add(event.event_id)
  const body = typeof event.content?.body === "string" ? event.content.body : "(no text)"
  const at = typeof event.origin_server_ts === "number" ? new Date(event.origin_server_ts).toLocaleTimeString([], { hour12: false }) : ""
  const list = byId("messages")
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4
  list.querySelector(".empty")?.remove()
  list.append(h("li", { "data-event-id": event.event_id }, h("span", { class: "time" }, at), h("span", { class: "sender" }, textOf(event.sender)), h("span", { class: "body" }, body)))
  if (atBottom) list.scrollTop = list.scrollHeight
}

const chat = async (client: WidgetClient) => {
  client.on("send_event", (event) => show(event))
  const form = byId("compose") as HTMLFormElement
  const input = byId("text") as HTMLInputElement
  const send = byId("send") as HTMLButtonElement
  const canSend = client.approval?.approved.includes(SEND) === true
  input.disabled = send.disabled = !canSend
  input.placeholder = canSend ? "Say something to the room" : "sending was not approved"
  form.onsubmit = (submitted) => {
    submitted.preventDefault()
    const body = input.value.trim()
    if (body === "") return
    send.disabled = true
    client.sendEvent("m.room.message", { msgtype: "m.text", body }).then(
      () => {
        input.value = ""
        send.disabled = false
      },
      (error: unknown) => {
        setStatus(`not sent: ${error instanceof Error ? error.message : String(error)}`, "bad")
        send.disabled = false
      }
    )
  }
  if (client.approval?.approved.includes(READ) !== true) return void byId("messages").replaceChildren(h("li", { class: "empty" }, "Reading messages was not approved."))
  const { events } = await client.readEvents("m.room.message", { limit: 30 })
  const oldestFirst = [...(events as ReadonlyArray<RoomMessage>)].sort((a, b) => Number(a.origin_server_ts ?? 0) - Number(b.origin_server_ts ?? 0))
  for (const event of oldestFirst) show(event)
  if (shown.size === 0) byId("messages").replaceChildren(h("li", { class: "empty" }, "No messages yet. Send one, or sign in as another user and write in #demo."))
}

const params = readParams()
if (params === undefined) setStatus("no websocket URI: open this page through the link widgethost prints (…/demo/chat.html#ws=…)", "bad")
else {
  byId("room").textContent = params.room
  run(params, [READ, SEND], chat)
}
