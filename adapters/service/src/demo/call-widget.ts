/**
 * The demo call-style widget (browser): it watches the TURN servers (MSC3846) and counts down to
 * the credentials' expiry, and sends and receives to-device messages (MSC3819) of one demo type
 * to and from another device. Served by the service at `/demo/call.html`.
 */
import type { WidgetClient } from "@widgethost/widget-client"
import { byId, h, readParams, run, setStatus, textOf } from "./demo-widget-page.ts"

const TURN = "town.robin.msc3846.turn_servers"
const PING = "io.widgethost.demo.ping"
const SEND_PING = `org.matrix.msc3819.send.to_device:${PING}`
const RECEIVE_PING = `org.matrix.msc3819.receive.to_device:${PING}`

let countdown: ReturnType<typeof setInterval> | undefined

/**
 * coturn's REST scheme (what the embedded homeserver and Synapse mint) puts the expiry, in unix
 * seconds, before the first colon of the username; other schemes show no countdown.
 */
const expiryOf = (username: string): number | undefined => {
  const match = /^(\d{9,}):/.exec(username)
  return match === null ? undefined : Number(match[1]) * 1000
}

const NO_TURN = "The homeserver offers no TURN server (configure one: embeddedHomeserver.turn)."

const showTurn = (data: Readonly<Record<string, unknown>>) => {
  const uris = Array.isArray(data["uris"]) ? data["uris"].map(String) : []
  if (uris.length === 0) {
    if (countdown !== undefined) clearInterval(countdown)
    return void (byId("turn").textContent = NO_TURN)
  }
  const username = typeof data["username"] === "string" ? data["username"] : ""
  const expiry = expiryOf(username)
  const left = h("span", { id: "turn-expiry" })
  byId("turn").replaceChildren(h("div", { class: "mono" }, uris.join(" ")), h("div", {}, "username ", h("code", {}, username)), h("div", {}, "credentials expire ", left))
  if (countdown !== undefined) clearInterval(countdown)
  const tick = () => {
    if (expiry === undefined) return void (left.textContent = "(no expiry in the username)")
    const seconds = Math.max(0, Math.round((expiry - Date.now()) / 1000))
    left.textContent = `in ${Math.floor(seconds / 60)} min ${seconds % 60} s (renewed before then by the host)`
  }
  tick()
  countdown = setInterval(tick, 1000)
}

const call = async (client: WidgetClient, user: string) => {
  const approved = client.approval?.approved ?? []
  client.on("update_turn_servers", (data) => showTurn(data))
  client.on("send_to_device", (data) => {
    if (data["type"] !== PING) return
    const content = data["content"] as { text?: unknown } | undefined
    byId("received").append(h("li", {}, h("span", { class: "sender" }, textOf(data["sender"])), h("span", { class: "body" }, textOf(content?.text, ""))))
  })
  const target = byId("target") as HTMLInputElement
  if (target.value === "") target.value = user
  const form = byId("ping") as HTMLFormElement
  const send = byId("send") as HTMLButtonElement
  send.disabled = !approved.includes(SEND_PING)
  form.onsubmit = (submitted) => {
    submitted.preventDefault()
    const device = (byId("device") as HTMLInputElement).value.trim() || "*"
    const text = (byId("text") as HTMLInputElement).value
    client.sendToDevice(PING, { [target.value.trim()]: { [device]: { text } } }).then(
      () => byId("sent").append(h("li", {}, `to ${target.value.trim()} ${device}: ${text}`)),
      (error: unknown) => setStatus(`not sent: ${error instanceof Error ? error.message : String(error)}`, "bad")
    )
  }
  if (!approved.includes(TURN)) return void (byId("turn").textContent = "Watching TURN servers was not approved.")
  byId("turn").textContent = "Watching…"
  await client.watchTurnServers()
}

const params = readParams()
if (params === undefined) setStatus("no websocket URI: open this page through the link widgethost prints (…/demo/call.html#ws=…)", "bad")
else run(params, [TURN, SEND_PING, RECEIVE_PING], (client) => call(client, params.user))
