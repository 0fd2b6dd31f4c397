import type { WidgetMessage } from "@widgethost/core"

/**
 * A message's JSON text, as `JSON.stringify(message)` writes it, with the text of a delivered
 * event (`send_event`'s `data`) made once per event rather than once per widget: the router hands
 * every session the same event object, and at 100 widgets its serialisation per socket was
 * 3.7 % of a `simulate` run's CPU. Delivered events are never changed after they are handed to
 * the sessions, so the text made for the first widget is right for the others.
 */
const eventTexts = new WeakMap<object, string>()

export const messageText = (message: WidgetMessage): string => {
  const m = message as unknown as Record<string, unknown>
  const data = m["data"]
  if (m["action"] !== "send_event" || m["api"] !== "toWidget" || "response" in m || typeof data !== "object" || data === null) return JSON.stringify(message)
  let dataText = eventTexts.get(data)
  if (dataText === undefined) {
    dataText = JSON.stringify(data)
    eventTexts.set(data, dataText)
  }
  let text = "{"
  for (const key in m) {
    const value = key === "data" ? dataText : JSON.stringify(m[key])
    // JSON.stringify leaves out keys whose value it cannot write (undefined, functions).
    if (value === undefined) continue
    text += `${text.length > 1 ? "," : ""}${JSON.stringify(key)}:${value}`
  }
  return `${text}}`
}
