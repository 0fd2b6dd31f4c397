/**
 * What both demo widgets share, in the browser: reading the fragment the host filled in, the
 * status line, building DOM nodes (widget-controlled text only ever as `textContent`), and a
 * websocket connection to the host that reconnects (the transport resumes the session within its
 * grace window). Bundled for the browser by demo-pages.ts; it is the widget kit's example too.
 */
import { type Approval, websocketTransport, WidgetClient } from "@widgethost/widget-client"

export interface WidgetParams {
  readonly ws: string
  readonly widgetId: string
  readonly room: string
  readonly user: string
}

/** The fragment the host rendered (`#ws=…&widgetId=…&room=…&user=…`); undefined without a websocket URI. */
export const readParams = (): WidgetParams | undefined => {
  const params = new URLSearchParams(location.hash.slice(1))
  const ws = params.get("ws")
  if (ws === null || ws === "") return undefined
  return { ws, widgetId: params.get("widgetId") ?? "demo", room: params.get("room") ?? "", user: params.get("user") ?? "" }
}

export const byId = (id: string): HTMLElement => {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`the page has no #${id}`)
  return node
}

/** An element with text and children; attributes are set as attributes, never parsed as markup. */
export const h = (tag: string, attrs: Readonly<Record<string, string>> = {}, ...children: ReadonlyArray<Node | string>): HTMLElement => {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value)
  node.append(...children)
  return node
}

/** Text from an untrusted field: strings as they are, anything else as a placeholder. */
export const textOf = (value: unknown, fallback = "?"): string => (typeof value === "string" ? value : fallback)

export const setStatus = (text: string, kind: "wait" | "ok" | "bad") => {
  const status = byId("status")
  status.textContent = text
  status.className = kind
}

/** Lists the approved capabilities, and those asked for but denied. */
export const showApproval = (approval: Approval) => {
  const denied = approval.requested.filter((c) => !approval.approved.includes(c))
  byId("capabilities").replaceChildren(
    ...approval.approved.map((c) => h("li", { class: "approved" }, c)),
    ...denied.map((c) => h("li", { class: "denied", title: "denied" }, c))
  )
}

/**
 * Connects, says `content_loaded`, and hands each connected client to `onClient` (again after
 * every reconnect). The status line says what is happening, including "waiting for approval in
 * the console" until the host notifies the capabilities.
 */
export const run = (params: WidgetParams, capabilities: ReadonlyArray<string>, onClient: (client: WidgetClient, approval: Approval) => void | Promise<void>) => {
  const connect = async () => {
    setStatus("connecting…", "wait")
    let client: WidgetClient
    try {
      const transport = await websocketTransport(params.ws)
      transport.onClose((reason) => {
        setStatus(`disconnected (${reason}); reconnecting…`, "bad")
        setTimeout(() => void connect(), 2000)
      })
      client = new WidgetClient({ transport, widgetId: params.widgetId, capabilities })
    } catch (error) {
      setStatus(`cannot connect: ${error instanceof Error ? error.message : String(error)}; retrying…`, "bad")
      setTimeout(() => void connect(), 3000)
      return
    }
    client.on("notify_capabilities", () => {
      if (client.approval !== undefined) showApproval(client.approval)
    })
    setStatus("waiting for approval in the widgethost console…", "wait")
    void client.contentLoaded().catch(() => undefined)
    const approval = await client.ready
    showApproval(approval)
    setStatus("connected", "ok")
    try {
      await onClient(client, approval)
    } catch (error) {
      setStatus(error instanceof Error ? error.message : String(error), "bad")
    }
  }
  void connect()
}
