/**
 * Conformance: MSC4157 delayed events through the engine. A delayed `send_event` answers with
 * its `delay_id`; `update_delayed_event` (stable and unstable names) cancels, restarts or sends
 * one, `refresh` (the MSC's word) being MSC4140's `restart`. Every request gets one answer.
 */
import { describe, expect, it } from "vitest"
import { approveAll, flush, forbidden, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const UPDATE = "m.update_delayed_event"

/** given the approved capabilities, send an update, want the answer and the homeserver's call. */
const table: ReadonlyArray<{
  readonly name: string
  readonly approved: ReadonlyArray<string>
  readonly send: { readonly action: string; readonly data: Record<string, unknown> }
  readonly want: unknown
  readonly call?: { readonly delayId: string; readonly action: string }
}> = [
  { name: "cancel", approved: [UPDATE], send: { action: "update_delayed_event", data: { delay_id: "d1", action: "cancel" } }, want: {}, call: { delayId: "d1", action: "cancel" } },
  { name: "send", approved: [UPDATE], send: { action: "update_delayed_event", data: { delay_id: "d1", action: "send" } }, want: {}, call: { delayId: "d1", action: "send" } },
  { name: "restart (MSC4140, matrix-widget-api)", approved: [UPDATE], send: { action: "update_delayed_event", data: { delay_id: "d1", action: "restart" } }, want: {}, call: { delayId: "d1", action: "restart" } },
  { name: "refresh (MSC4157) is restart", approved: [UPDATE], send: { action: "update_delayed_event", data: { delay_id: "d1", action: "refresh" } }, want: {}, call: { delayId: "d1", action: "restart" } },
  {
    name: "unstable action and capability",
    approved: ["org.matrix.msc4157.update_delayed_event"],
    send: { action: "org.matrix.msc4157.update_delayed_event", data: { delay_id: "d2", action: "cancel" } },
    want: {},
    call: { delayId: "d2", action: "cancel" }
  },
  {
    name: "without the capability: refused, nothing asked",
    approved: ["m.send.delayed_event"],
    send: { action: "update_delayed_event", data: { delay_id: "d1", action: "cancel" } },
    want: { error: { code: "NotAllowed", message: stringContaining("m.update_delayed_event") } }
  },
  { name: "no delay_id", approved: [UPDATE], send: { action: "update_delayed_event", data: { action: "cancel" } }, want: { error: { code: "Malformed", message: stringContaining("delay_id") } } },
  { name: "an unknown action", approved: [UPDATE], send: { action: "update_delayed_event", data: { delay_id: "d1", action: "toString" } }, want: { error: { code: "Malformed", message: stringContaining("action must be") } } }
]

describe("MSC4157 update_delayed_event", () => {
  it.each(table)("$name", async ({ approved, send, want, call }) => {
    const h = new Harness({ approver: approveAll })
    await h.ready(approved)
    h.take()
    const id = h.request(send.action, send.data)
    await flush()
    const answers = h.take().filter((m) => m.requestId === id)
    expect(answers).toHaveLength(1)
    expect((answers[0] as { response: unknown }).response).toMatchObject(want as object)
    expect(h.homeserver.calls.filter((c) => c.method === "updateDelayedEvent").map((c) => c.args)).toEqual(call === undefined ? [] : [{ _tag: "UpdateDelayedEvent", ...call }])
  })

  it("the homeserver's error reaches the widget as matrix_api_error", async () => {
    const homeserver = makeInMemoryHomeserver()
    homeserver.failNext("updateDelayedEvent", forbidden("/_matrix/client/unstable/org.matrix.msc4140/delayed_events/d1"))
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready([UPDATE])
    h.take()
    const id = h.request("update_delayed_event", { delay_id: "d1", action: "restart" })
    await flush()
    expect(h.responseTo(id)).toMatchObject({ error: { code: "Homeserver", matrix_api_error: { http_status: 403 } } })
  })

  it("a delayed send_event answers its delay_id, and needs m.send.delayed_event", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["m.send.state_event:org.matrix.msc3401.call.member", "m.send.delayed_event"])
    h.take()
    const id = h.request("send_event", { type: "org.matrix.msc3401.call.member", state_key: "_@a:b_D", content: {}, delay: 8000 })
    await flush()
    expect(h.responseTo(id)).toMatchObject({ room_id: "!room:localhost", delay_id: expect.any(String) as unknown })
    const without = new Harness({ approver: approveAll })
    await without.ready(["m.send.state_event:org.matrix.msc3401.call.member"])
    expect(without.responseTo(without.request("send_event", { type: "org.matrix.msc3401.call.member", state_key: "_@a:b_D", content: {}, delay: 8000 }))).toMatchObject({
      error: { code: "NotAllowed", message: stringContaining("m.send.delayed_event") }
    })
  })
})
