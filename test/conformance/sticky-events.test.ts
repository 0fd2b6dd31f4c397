/**
 * Conformance: MSC4407 sticky events, which this host does not serve (the homeserver port has
 * no MSC4354 support). The four capability spellings are recognised and denied as `unsupported`
 * (no rule, prompt or approver can grant them), and `send_event` with `sticky_duration_ms`, or
 * with any other field the host does not serve, is refused before anything is sent: the widget
 * is never told "sent" for an event that would not be sticky.
 */
import { type ApprovalPolicy, classify } from "@widgethost/core"
import { type Approver } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { flush, Harness, ROOM } from "../src/index.ts"
import { anyOf, stringContaining } from "../src/matchers.ts"

const STICKY = ["m.send.sticky_event", "org.matrix.msc4407.send.sticky_event", "m.receive.sticky_event", "org.matrix.msc4407.receive.sticky_event"]
const SEND = ["m.send.event:org.matrix.rtc.member", "m.send.state_event:org.example.state", "m.send.delayed_event", "m.receive.event:org.matrix.rtc.member"]

describe("MSC4407 sticky capabilities", () => {
  const approveEverything: ApprovalPolicy = { rules: [{ capability: "*", decision: "approve" }] }
  it.each(STICKY)("%s: recognised, denied as unsupported even by an approve-everything rule", (capability) => {
    expect(classify(approveEverything, { id: "w1" }, capability)).toEqual({ _tag: "Deny", reason: "unsupported" })
    expect(classify({ rules: [], clientCapabilities: [capability] }, { id: "w1" }, capability)).toEqual({ _tag: "Deny", reason: "unsupported" })
  })

  it("an unknown name stays unrecognised: the two reasons are told apart", () => {
    expect(classify(approveEverything, { id: "w1" }, "org.matrix.msc4407.send.sticky_events")).toEqual({ _tag: "Deny", reason: "unrecognised" })
  })

  it("never reaches the approver and is never approved; the rest of the request is", async () => {
    const asked: Array<ReadonlyArray<string>> = []
    const approver: Approver = async ({ requested }) => {
      asked.push(requested)
      return requested
    }
    const h = new Harness({ approver })
    const seen = await h.ready([...STICKY, ...SEND])
    expect(asked).toEqual([SEND])
    const notify = Harness.requests(seen).find((m) => m.action === "notify_capabilities")
    expect(notify?.data).toEqual({ requested: [...STICKY, ...SEND], approved: SEND })
    expect(h.session.info().denied).toEqual(STICKY)
  })

  it("asked again through MSC2974: still denied, nobody prompted", async () => {
    const asked: Array<ReadonlyArray<string>> = []
    const h = new Harness({ approver: async ({ requested }) => (asked.push(requested), requested) })
    await h.ready(SEND)
    h.take()
    h.request("org.matrix.msc2974.request_capabilities", { capabilities: ["org.matrix.msc4407.send.sticky_event"] })
    await flush()
    expect(asked).toEqual([SEND])
    expect(h.session.info().approved).toEqual(SEND)
  })
})

const approveAll: Approver = async ({ requested }) => requested
const STATE = { type: "org.example.state", state_key: "", content: { a: 1 } }
const MEMBER = { type: "org.matrix.rtc.member", content: { device_id: "D" } }
const STICKY_REFUSED = {
  error: { code: "Unsupported", message: "Not supported: sticky_duration_ms (MSC4407 sticky events): no homeserver here supports MSC4354 sticky events; nothing was sent" }
}

/** given a ready widget approved for SEND (and asking for the sticky ones), send `data`, want the answer; `sent` says whether anything reached the homeserver. */
const table: ReadonlyArray<{ readonly name: string; readonly send: Record<string, unknown>; readonly want: unknown; readonly sent: boolean }> = [
  { name: "a sticky message event", send: { ...MEMBER, sticky_duration_ms: 3_600_000 }, want: STICKY_REFUSED, sent: false },
  { name: "a sticky delayed message event", send: { ...MEMBER, sticky_duration_ms: 3_600_000, delay: 1000 }, want: STICKY_REFUSED, sent: false },
  { name: "a sticky state event (no such thing in MSC4354)", send: { ...STATE, sticky_duration_ms: 1000 }, want: STICKY_REFUSED, sent: false },
  { name: "sticky_duration_ms 0 is still the field", send: { ...MEMBER, sticky_duration_ms: 0 }, want: STICKY_REFUSED, sent: false },
  { name: "sticky_duration_ms of a wrong type is still the field", send: { ...MEMBER, sticky_duration_ms: "1h" }, want: STICKY_REFUSED, sent: false },
  { name: "sticky_duration_ms set to undefined is absent: sent", send: { ...MEMBER, sticky_duration_ms: undefined }, want: { room_id: ROOM, event_id: anyOf(String) }, sent: true },
  { name: "sticky named first among other unserved fields", send: { ...MEMBER, txn_id: "t", sticky_duration_ms: 1 }, want: STICKY_REFUSED, sent: false },
  { name: "any other unserved field is refused, named", send: { ...MEMBER, ttl_ms: 5 }, want: { error: { code: "Unsupported", message: 'Not supported: send_event has no field "ttl_ms"; nothing was sent' } }, sent: false },
  { name: "a nested sticky field in content is content, not a request field: sent", send: { type: MEMBER.type, content: { sticky_duration_ms: 5 } }, want: { room_id: ROOM, event_id: anyOf(String) }, sent: true },
  { name: "every field it serves, together: sent (delayed)", send: { ...MEMBER, room_id: ROOM, delay: 10, parent_delay_id: "p" }, want: { room_id: ROOM, delay_id: anyOf(String) }, sent: true }
]

describe("send_event fields the host does not serve", () => {
  it.each(table)("$name", async ({ send, want, sent }) => {
    const h = new Harness({ approver: approveAll })
    await h.ready([...STICKY, ...SEND])
    h.take()
    const id = h.request("send_event", send)
    await flush()
    const out = h.take()
    const answers = out.filter((m) => m.api === "fromWidget" && m.requestId === id)
    expect(answers).toHaveLength(1)
    expect((answers[0] as { response: unknown }).response).toEqual(want)
    expect(h.homeserver.calls.filter((c) => c.method === "sendEvent")).toHaveLength(sent ? 1 : 0)
    // Never told success: nothing is in the room, and no echo of it comes back to the widget.
    if (!sent) {
      expect(h.homeserver.rooms.get(ROOM)!.timeline).toEqual([])
      expect(Harness.requests(out).filter((m) => m.action === "send_event")).toEqual([])
    }
  })

  it("the refusal names the field even without the event's capability (the field is checked first)", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready([])
    h.take()
    expect(h.responseTo(h.request("send_event", { ...MEMBER, sticky_duration_ms: 1 }))).toMatchObject({ error: { message: stringContaining("sticky_duration_ms") } })
  })
})
