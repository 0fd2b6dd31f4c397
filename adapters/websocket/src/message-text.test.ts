import { assert, describe, it } from "vitest"
import type { WidgetMessage } from "@widgethost/core"
import { messageText } from "./message-text.ts"

const event = { type: "m.room.message", room_id: "!r:x", event_id: "$1", sender: "@b:x", content: { body: "h\u00e9\"llo", n: [1, null] }, origin_server_ts: 1 }
const delivery = (widgetId: string, requestId: string, extra: Record<string, unknown> = {}) =>
  ({ api: "toWidget", widgetId, requestId, action: "send_event", data: event, ...extra }) as unknown as WidgetMessage

describe("messageText", () => {
  it("is JSON.stringify's text for deliveries of one event to several widgets, each with its own ids", () => {
    for (const m of [delivery("w1", "r1"), delivery("w2", "r2"), delivery("w\n3", "r\"3", { skipped: undefined, more: { a: 1 } })])
      assert.equal(messageText(m), JSON.stringify(m))
  })

  it("every other message is JSON.stringify's text", () => {
    for (const m of [
      { api: "toWidget", widgetId: "w", requestId: "r", action: "capabilities", data: {} },
      { api: "fromWidget", widgetId: "w", requestId: "r", action: "send_event", data: { type: "t", content: {} }, response: { event_id: "$e" } },
      { api: "toWidget", widgetId: "w", requestId: "r", action: "send_event", data: null }
    ])
      assert.equal(messageText(m as unknown as WidgetMessage), JSON.stringify(m))
  })

  it("a value JSON cannot write still throws (the transport counts it unserialisable)", () => {
    const loop: Record<string, unknown> = {}
    loop.self = loop
    assert.throws(() => messageText(delivery("w", "r", { data: loop })))
  })
})
