/**
 * Conformance: MSC4533 `rtc_livekit_get_token` and `rtc_livekit_delegate_delayed_leave`, stable
 * and unstable names. Given what was approved and what the homeserver answers, a request gets
 * exactly one answer: the homeserver's body verbatim (the widget's data went to it verbatim), or
 * the spec-shaped error, with the homeserver's own error as `matrix_api_error` so the widget can
 * tell a server without MSC4195 (and keep its delayed leave alive itself).
 */
import { HomeserverError, type RtcLivekitEndpoint, SUPPORTED_API_VERSIONS } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const TOKEN_REQUEST = { server_name: "example.org", url: "wss://livekit.example.org", room_id: "!call:example.org", slot_id: "m.call#ROOM", member: { id: "member-1", claimed_device_id: "DEVICE" } }
const LEAVE_REQUEST = { room_id: "!call:example.org", slot_id: "m.call#ROOM", member: { id: "member-1", claimed_device_id: "DEVICE" }, delay_id: "syd_123" }
const unrecognised = new HomeserverError({
  message: "Unrecognized request",
  http: { status: 404, headers: {}, url: "/_matrix/client/v1/rtc/livekit/delegate_delayed_leave", body: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } }
})

const table: ReadonlyArray<{
  readonly name: string
  readonly given: { readonly approved: ReadonlyArray<string>; readonly homeserver?: Partial<Record<RtcLivekitEndpoint, Readonly<Record<string, unknown>> | HomeserverError>> }
  readonly send: readonly [action: string, data: Readonly<Record<string, unknown>>]
  readonly want: unknown
  /** What the homeserver was asked: endpoint and body, in order. */
  readonly asked: ReadonlyArray<readonly [RtcLivekitEndpoint, unknown]>
}> = [
  {
    name: "get_token approved (unstable names): the data goes as the body, the JWT comes back verbatim",
    given: { approved: ["org.matrix.msc4533.rtc_livekit_get_token"], homeserver: { get_token: { jwt: "the-jwt", extra: 1 } } },
    send: ["org.matrix.msc4533.rtc_livekit_get_token", TOKEN_REQUEST],
    want: { jwt: "the-jwt", extra: 1 },
    asked: [["get_token", TOKEN_REQUEST]]
  },
  {
    name: "get_token approved (stable names)",
    given: { approved: ["rtc_livekit_get_token"], homeserver: { get_token: { jwt: "the-jwt" } } },
    send: ["rtc_livekit_get_token", TOKEN_REQUEST],
    want: { jwt: "the-jwt" },
    asked: [["get_token", TOKEN_REQUEST]]
  },
  {
    name: "delegate_delayed_leave approved: the empty body verbatim",
    given: { approved: ["rtc_livekit_delegate_delayed_leave"], homeserver: { delegate_delayed_leave: {} } },
    send: ["org.matrix.msc4533.rtc_livekit_delegate_delayed_leave", LEAVE_REQUEST],
    want: {},
    asked: [["delegate_delayed_leave", LEAVE_REQUEST]]
  },
  {
    name: "one capability does not serve the other action: refused before anything is asked",
    given: { approved: ["org.matrix.msc4533.rtc_livekit_get_token"] },
    send: ["org.matrix.msc4533.rtc_livekit_delegate_delayed_leave", LEAVE_REQUEST],
    want: { error: { code: "NotAllowed", message: stringContaining("rtc_livekit_delegate_delayed_leave") } },
    asked: []
  },
  {
    name: "get_token not approved: refused before anything is asked",
    given: { approved: ["org.matrix.msc4515.rtc_transports"] },
    send: ["rtc_livekit_get_token", TOKEN_REQUEST],
    want: { error: { code: "NotAllowed", message: stringContaining("rtc_livekit_get_token") } },
    asked: []
  },
  {
    name: "a homeserver without MSC4195: its 404 M_UNRECOGNIZED passes through, so the widget keeps its leave alive itself",
    given: { approved: ["rtc_livekit_delegate_delayed_leave"], homeserver: { delegate_delayed_leave: unrecognised } },
    send: ["rtc_livekit_delegate_delayed_leave", LEAVE_REQUEST],
    want: { error: { code: "Homeserver", message: "Unrecognized request", matrix_api_error: { http_status: 404, response: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } } } },
    asked: [["delegate_delayed_leave", LEAVE_REQUEST]]
  }
]

describe("MSC4533 rtc_livekit_get_token and rtc_livekit_delegate_delayed_leave", () => {
  it.each(table)("$name", async ({ given, send: [action, data], want, asked }) => {
    const homeserver = makeInMemoryHomeserver()
    for (const [endpoint, answer] of Object.entries(given.homeserver ?? {})) homeserver.livekit.set(endpoint as RtcLivekitEndpoint, answer)
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(given.approved)
    h.take()
    const id = h.request(action, data)
    await flush()
    const out = h.take().filter((m) => m.requestId === id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject(want as object)
    expect(homeserver.calls.filter((c) => c.method === "rtcLivekit").map((c) => { const r = c.args as { endpoint: string; body: unknown }; return [r.endpoint, r.body] })).toEqual(asked)
  })

  it("both capabilities are approved like any other, each in both spellings, and org.matrix.msc4533 is advertised", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["org.matrix.msc4533.rtc_livekit_get_token", "rtc_livekit_delegate_delayed_leave"])
    expect(h.session.info().approved).toEqual(["org.matrix.msc4533.rtc_livekit_get_token", "rtc_livekit_delegate_delayed_leave"])
    expect(SUPPORTED_API_VERSIONS).toContain("org.matrix.msc4533")
  })

  it("before ready it is refused, never silent", async () => {
    const h = new Harness({ approver: approveAll })
    expect(h.responseTo(h.request("rtc_livekit_get_token", TOKEN_REQUEST))).toMatchObject({ error: { code: "WrongPhase" } })
  })

  it("data that is not an object is refused as malformed, the homeserver not asked", async () => {
    const homeserver = makeInMemoryHomeserver()
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(["rtc_livekit_get_token"])
    h.take()
    const id = h.request("rtc_livekit_get_token", "not an object" as never)
    await flush()
    const out = h.take().filter((m) => m.requestId === id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject({ error: { code: "Malformed" } })
    expect(homeserver.calls.filter((c) => c.method === "rtcLivekit")).toHaveLength(0)
  })
})
