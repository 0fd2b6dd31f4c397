import { afterEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "./index.ts"
import { Client, newUser } from "./testing.ts"

let hs: EmbeddedHomeserver | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
})

const LIVEKIT = { type: "livekit", livekit_service_url: "http://127.0.0.1:9/livekit/jwt" }

/** given the server's configuration, GET the transports on both paths, want this answer. */
const table: ReadonlyArray<{ readonly given: ReadonlyArray<typeof LIVEKIT> | undefined; readonly status: number; readonly body: unknown }> = [
  { given: [LIVEKIT], status: 200, body: { rtc_transports: [LIVEKIT] } },
  { given: [], status: 404, body: { errcode: "M_UNRECOGNIZED", error: "No RTC transports are configured on this server." } },
  { given: undefined, status: 404, body: { errcode: "M_UNRECOGNIZED", error: "No RTC transports are configured on this server." } }
]

describe("MatrixRTC transport discovery (MSC4143)", () => {
  it.each(table)("configured $given → $status", async ({ given, status, body }) => {
    hs = await startEmbeddedHomeserver(given === undefined ? {} : { rtcTransports: given })
    const alice = await newUser(hs)
    for (const path of ["/_matrix/client/v1/rtc/transports", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports"]) {
      const res = await alice.get(path)
      expect([res.status, res.body]).toEqual([status, body])
    }
  })

  it("needs an access token", async () => {
    hs = await startEmbeddedHomeserver({ rtcTransports: [LIVEKIT] })
    const res = await new Client(hs.baseUrl).get<{ errcode: string }>("/_matrix/client/v1/rtc/transports")
    expect([res.status, res.body.errcode]).toEqual([401, "M_MISSING_TOKEN"])
  })
})
