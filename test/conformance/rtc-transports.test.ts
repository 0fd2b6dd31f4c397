/**
 * Conformance: MSC4515 `get_rtc_transports`, stable and unstable names. Given what was approved
 * and what the homeserver answers, a request gets exactly one answer: the homeserver's body
 * verbatim, or the spec-shaped error (the homeserver's own error as `matrix_api_error`).
 */
import { HomeserverError, SUPPORTED_API_VERSIONS } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const LIVEKIT = { rtc_transports: [{ type: "livekit", livekit_service_url: "https://livekit-jwt.example.org", extra: { kept: true } }] }
const unrecognised = new HomeserverError({
  message: "Unrecognized request",
  http: { status: 404, headers: {}, url: "/_matrix/client/v1/rtc/transports", body: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } }
})

const table: ReadonlyArray<{
  readonly name: string
  readonly given: { readonly approved: ReadonlyArray<string>; readonly homeserver: Readonly<Record<string, unknown>> | HomeserverError }
  readonly send: string
  readonly want: unknown
  /** Whether the homeserver was asked. */
  readonly calls: number
}> = [
  { name: "approved (unstable names): the body verbatim", given: { approved: ["org.matrix.msc4515.rtc_transports"], homeserver: LIVEKIT }, send: "org.matrix.msc4515.get_rtc_transports", want: LIVEKIT, calls: 1 },
  { name: "approved (stable names): the body verbatim", given: { approved: ["rtc_transports"], homeserver: LIVEKIT }, send: "get_rtc_transports", want: LIVEKIT, calls: 1 },
  { name: "names mix: the capability's two spellings are one", given: { approved: ["rtc_transports"], homeserver: LIVEKIT }, send: "org.matrix.msc4515.get_rtc_transports", want: LIVEKIT, calls: 1 },
  {
    name: "not approved: refused before anything is asked",
    given: { approved: ["m.turn_servers"], homeserver: LIVEKIT },
    send: "org.matrix.msc4515.get_rtc_transports",
    want: { error: { code: "NotAllowed", message: stringContaining("rtc_transports") } },
    calls: 0
  },
  {
    name: "a homeserver without the endpoint: its error passes through",
    given: { approved: ["org.matrix.msc4515.rtc_transports"], homeserver: unrecognised },
    send: "org.matrix.msc4515.get_rtc_transports",
    want: { error: { code: "Homeserver", message: "Unrecognized request", matrix_api_error: { http_status: 404, response: { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" } } } },
    calls: 1
  }
]

describe("MSC4515 get_rtc_transports", () => {
  it.each(table)("$name", async ({ given, send, want, calls }) => {
    const homeserver = makeInMemoryHomeserver()
    homeserver.rtc = given.homeserver
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready(given.approved)
    h.take()
    const id = h.request(send)
    await flush()
    const out = h.take().filter((m) => m.requestId === id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject(want as object)
    expect(homeserver.calls.filter((c) => c.method === "rtcTransports")).toHaveLength(calls)
  })

  it("the capability is approved like any other, and org.matrix.msc4515 is advertised", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready(["org.matrix.msc4515.rtc_transports"])
    expect(h.session.info().approved).toEqual(["org.matrix.msc4515.rtc_transports"])
    expect(SUPPORTED_API_VERSIONS).toContain("org.matrix.msc4515")
  })

  it("before ready it is refused, never silent", async () => {
    const h = new Harness({ approver: approveAll })
    expect(h.responseTo(h.request("get_rtc_transports"))).toMatchObject({ error: { code: "WrongPhase" } })
  })
})
