import { describe, expect, it } from "vitest"
import { HomeserverError } from "@widgethost/core"
import { newestTimestamp, SyncHealthMeter, syncErrorKind, type SyncLoopView } from "./sync-health.ts"

const httpError = (status: number) => new HomeserverError({ message: `GET /sync failed with ${status}`, http: { status, headers: {}, url: "/sync", body: { errcode: "M_X" } } })

describe("syncErrorKind: an error of the HTTP client, as an operator names it", () => {
  it.each([
    ["refused", new HomeserverError({ message: "network error: GET /_matrix/client/v3/sync: fetch failed ECONNREFUSED" }), "network"],
    ["timed out", new HomeserverError({ message: "request timed out after 60000 ms: GET /sync" }), "timeout"],
    ["not JSON", new HomeserverError({ message: "invalid JSON from homeserver: GET /sync" }), "bad-response"],
    ["401", httpError(401), "unknown-token"],
    ["429", httpError(429), "rate-limited"],
    ["502", httpError(502), "server-error"],
    ["500", httpError(500), "server-error"],
    ["404", httpError(404), "client-error"],
    ["an aborted request", new HomeserverError({ message: "request aborted: GET /sync" }), "other"],
    ["not a HomeserverError", new Error("boom"), "other"]
  ] as const)("%s → %s", (_name, error, kind) => {
    expect(syncErrorKind(error)).toBe(kind)
  })
})

describe("SyncHealthMeter: lag, backoff and errors from what the shell did", () => {
  const setup = () => {
    let now = 1_000_000
    const meter = new SyncHealthMeter(() => now)
    return { meter, advance: (ms: number) => (now += ms), at: () => now }
  }
  const running: SyncLoopView = { phase: "running", failures: 0, sleeping: false }

  it("starting before the first sync; connected after it, the lag growing with the clock", () => {
    const { meter, advance } = setup()
    expect(meter.snapshot(running, 0)).toMatchObject({ state: "starting", lastSyncAt: null, lastSyncAgoMs: null, behindMs: null, retries: 0, backoff: null, errors: {} })
    meter.requesting()
    meter.syncSucceeded()
    advance(2_500)
    expect(meter.snapshot(running, 0)).toMatchObject({ state: "connected", lastSyncAt: new Date(1_000_000).toISOString(), lastSyncAgoMs: 2_500, retries: 0 })
  })

  it("an outage: failures counted by kind, the backoff's wait counting down, a retry per wait; recovery clears the backoff", () => {
    const { meter, advance } = setup()
    meter.syncSucceeded()
    advance(1_000)
    meter.failed("network", new HomeserverError({ message: "network error: ECONNREFUSED" }))
    meter.backingOff(800)
    advance(300)
    expect(meter.snapshot({ phase: "running", failures: 1, sleeping: true }, 1)).toMatchObject({
      state: "retrying",
      lastSyncAgoMs: 1_300,
      failuresInRow: 1,
      httpRetries: 1,
      backoff: { ms: 800, retryInMs: 500 },
      errors: { network: 1 },
      lastError: { kind: "network", message: "network error: ECONNREFUSED" }
    })
    advance(500)
    meter.requesting()
    meter.failed("server-error", httpError(503))
    meter.backingOff(1_600)
    advance(1_600)
    meter.requesting()
    expect(meter.snapshot({ phase: "running", failures: 2, sleeping: false }, 3)).toMatchObject({ state: "retrying", retries: 2, backoff: null, errors: { network: 1, "server-error": 1 } })
    meter.syncSucceeded()
    expect(meter.snapshot(running, 3)).toMatchObject({ state: "connected", lastSyncAgoMs: 0, retries: 2, failuresInRow: 0, errors: { network: 1, "server-error": 1 } })
  })

  it("behind: the newest delivered event's age when handed over; a batch without events leaves it", () => {
    const { meter, at } = setup()
    meter.delivered(at() - 90_000)
    expect(meter.snapshot(running, 0).behindMs).toBe(90_000)
    meter.delivered(undefined)
    expect(meter.snapshot(running, 0).behindMs).toBe(90_000)
    meter.delivered(at() + 5) // a server clock ahead of ours is not "ahead"
    expect(meter.snapshot(running, 0).behindMs).toBe(0)
  })

  it("halted and stopped come from the machine's phase", () => {
    const { meter } = setup()
    expect(meter.snapshot({ phase: "halted", failures: 0, sleeping: false }, 0).state).toBe("halted")
    expect(meter.snapshot({ phase: "stopping", failures: 0, sleeping: false }, 0).state).toBe("stopped")
  })

  it("newestTimestamp ignores events without a numeric origin_server_ts", () => {
    expect(newestTimestamp([{ origin_server_ts: 5 }, { origin_server_ts: "9" }, {}, { origin_server_ts: 7 }])).toBe(7)
    expect(newestTimestamp([])).toBeUndefined()
  })
})
