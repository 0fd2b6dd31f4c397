/**
 * Makes this realm look like a widget's iframe to code written for postMessage, such as
 * matrix-widget-api's `WidgetApi` (and so matrix-js-sdk's `createRoomWidgetClient`), so it runs
 * unchanged over the websocket transport: `globalThis.parent.postMessage` sends over the
 * transport, and what the host sends arrives as `message` events on `globalThis`. For Node and
 * workers (a browser's `window.parent` cannot be replaced); one widget per realm, so run each
 * widget in its own worker. Returns the function that puts the realm back as it was.
 */
import type { WidgetMessage } from "@widgethost/core"
import type { WidgetTransport } from "./widget-transport.ts"

type Realm = Record<string, unknown>

export const installWidgetWindow = (transport: WidgetTransport): (() => void) => {
  const realm = globalThis as unknown as Realm
  if (typeof realm["document"] === "object") throw new Error("installWidgetWindow: this realm is a browser window; use postMessageTransport")
  const names = ["parent", "addEventListener", "removeEventListener"] as const
  const saved = names.map((name) => [name, Object.getOwnPropertyDescriptor(realm, name)] as const)
  const events = new EventTarget()
  const parent = { postMessage: (message: unknown) => transport.send(structuredClone(message) as WidgetMessage) }
  Object.defineProperty(realm, "parent", { value: parent, configurable: true, writable: true })
  Object.defineProperty(realm, "addEventListener", { value: events.addEventListener.bind(events), configurable: true, writable: true })
  Object.defineProperty(realm, "removeEventListener", { value: events.removeEventListener.bind(events), configurable: true, writable: true })
  const stop = transport.onMessage((data) => events.dispatchEvent(new MessageEvent("message", { data })))
  return () => {
    stop()
    for (const [name, descriptor] of saved) {
      if (descriptor === undefined) delete realm[name]
      else Object.defineProperty(realm, name, descriptor)
    }
  }
}
