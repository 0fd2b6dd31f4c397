/**
 * The HTTP homeserver port's `rtcTransports` (and `userDirectorySearch`) against the embedded homeserver over real HTTP:
 * the configured body verbatim, or the server's 404 `M_UNRECOGNIZED` as a HomeserverError.
 */
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { HomeserverError } from "@widgethost/core"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const LIVEKIT = { type: "livekit", livekit_service_url: "http://127.0.0.1:9/jwt" }

const portOn = async (options: Parameters<typeof startEmbeddedHomeserver>[0]): Promise<MatrixHomeserver> => {
  const hs: EmbeddedHomeserver = await startEmbeddedHomeserver(options)
  cleanups.push(() => hs.close())
  await hs.ensureUser("alice", "alice-secret")
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" } })
  cleanups.push(() => port.stop())
  return port
}

describe("HomeserverPort.rtcTransports over HTTP", () => {
  it("answers the configured transports as the server sent them", async () => {
    const port = await portOn({ rtcTransports: [LIVEKIT] })
    expect(await Effect.runPromise(port.rtcTransports())).toEqual({ rtc_transports: [LIVEKIT] })
  })

  it("fails with the server's M_UNRECOGNIZED when it has none", async () => {
    const port = await portOn({})
    const failure = await Effect.runPromise(Effect.flip(port.rtcTransports()))
    expect(failure).toBeInstanceOf(HomeserverError)
    expect([failure.http?.status, failure.http?.body]).toEqual([404, { errcode: "M_UNRECOGNIZED", error: "No RTC transports are configured on this server." }])
  })

  it("userDirectorySearch: the server's answer as it sent it", async () => {
    const port = await portOn({})
    // The directory shows room-mates and members of public rooms: Alice is in one.
    await port.http.request({ method: "POST", path: "/_matrix/client/v3/createRoom", body: { preset: "public_chat" } })
    expect(await Effect.runPromise(port.userDirectorySearch({ _tag: "UserDirectorySearch", searchTerm: "alice" }))).toMatchObject({ limited: false, results: [{ user_id: "@alice:localhost" }] })
  })
})
