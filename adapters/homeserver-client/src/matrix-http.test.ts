import { Effect, Exit } from "effect"
import { MockAgent } from "undici"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { HomeserverError, matrixApiError } from "@widgethost/core"
import { MatrixHttp, login, parseRetryAfter, path } from "./matrix-http.ts"

const origin = "http://hs.test"

import { ManualClock } from "@widgethost/testing"

let agent: MockAgent
let clock: ManualClock
const make = (overrides: Partial<ConstructorParameters<typeof MatrixHttp>[0]> = {}) =>
  new MatrixHttp({ baseUrl: origin, accessToken: "tok", dispatcher: agent, clock, random: () => 0.5, ...overrides })

beforeEach(() => {
  agent = new MockAgent()
  agent.disableNetConnect()
  clock = new ManualClock()
})
afterEach(async () => {
  await agent.close()
})

const whoami = "/_matrix/client/v3/account/whoami"

describe("MatrixHttp", () => {
  it("sends the access token and JSON, and parses JSON", async () => {
    const pool = agent.get(origin)
    pool
      .intercept({ path: "/_matrix/client/v3/keys/query", method: "POST", headers: { authorization: "Bearer tok", "content-type": "application/json" }, body: '{"device_keys":{}}' })
      .reply(200, { device_keys: { "@a:x": {} } })
    const res = await make().request<{ device_keys: object }>({ method: "POST", path: "/_matrix/client/v3/keys/query", body: { device_keys: {} } })
    expect(res).toEqual({ device_keys: { "@a:x": {} } })
    agent.assertNoPendingInterceptors()
  })

  it("429 with a Retry-After header: waits exactly that long, then succeeds", async () => {
    const pool = agent.get(origin)
    pool.intercept({ path: whoami }).reply(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 9999 }, { headers: { "retry-after": "3" } })
    pool.intercept({ path: whoami }).reply(200, { user_id: "@a:x" })
    const { outcome, waits } = await settle(make().request<{ user_id: string }>({ method: "GET", path: whoami }))
    expect(outcome).toEqual({ user_id: "@a:x" })
    // the header wins over the body's retry_after_ms
    expect(waits).toEqual([3000])
  })

  it("429 with only retry_after_ms in the body: waits that long", async () => {
    const pool = agent.get(origin)
    pool.intercept({ path: whoami }).reply(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 1234 })
    pool.intercept({ path: whoami }).reply(429, { errcode: "M_LIMIT_EXCEEDED", retry_after_ms: 10 })
    pool.intercept({ path: whoami }).reply(200, { user_id: "@a:x" })
    const { waits } = await settle(make().request({ method: "GET", path: whoami }))
    expect(waits).toEqual([1234, 10])
  })

  it("429 asking for more than maxRateLimitWaitMs is returned, not waited for", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(429, { errcode: "M_LIMIT_EXCEEDED" }, { headers: { "retry-after": "600" } })
    const { outcome: err, waits } = await settle(make({ retry: { maxRateLimitWaitMs: 60_000 } }).request({ method: "GET", path: whoami }))
    expect(err).toBeInstanceOf(HomeserverError)
    expect((err as HomeserverError).http?.status).toBe(429)
    expect((err as HomeserverError).http?.headers).toEqual({ "retry-after": "600" })
    expect(waits).toEqual([])
  })

  it("parses Retry-After as an HTTP date", () => {
    const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:05 GMT", now)).toBe(5000)
    expect(parseRetryAfter("garbage", now)).toBeUndefined()
  })

  it("5xx: exponential backoff with jitter, then success", async () => {
    const pool = agent.get(origin)
    pool.intercept({ path: whoami }).reply(500, { errcode: "M_UNKNOWN" })
    pool.intercept({ path: whoami }).reply(502, "bad gateway")
    pool.intercept({ path: whoami }).reply(503, { errcode: "M_UNKNOWN" })
    pool.intercept({ path: whoami }).reply(200, { user_id: "@a:x" })
    const randoms = [0, 1 - 1e-9, 0.5]
    const http = make({ random: () => randoms.shift() ?? 0, retry: { baseDelayMs: 100, maxDelayMs: 10_000 } })
    const { waits } = await settle(http.request({ method: "GET", path: whoami }))
    // cap 100, 200, 400; equal jitter puts each in [cap/2, cap]
    expect(waits).toEqual([50, 200, 300])
  })

  it("5xx: gives up after maxAttempts with the last error", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(503, { errcode: "M_UNKNOWN", error: "down" }).times(3)
    const { outcome, waits } = await settle(make({ retry: { maxAttempts: 3, baseDelayMs: 100 } }).request({ method: "GET", path: whoami }))
    expect((outcome as HomeserverError).http?.status).toBe(503)
    expect(waits).toHaveLength(2)
  })

  it("4xx fails at once", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(403, { errcode: "M_FORBIDDEN", error: "no" })
    const { outcome, waits } = await settle(make().request({ method: "GET", path: whoami }))
    expect((outcome as HomeserverError).http?.body).toEqual({ errcode: "M_FORBIDDEN", error: "no" })
    expect(waits).toEqual([])
  })

  it("network errors are retried", async () => {
    const pool = agent.get(origin)
    pool.intercept({ path: whoami }).replyWithError(Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }))
    pool.intercept({ path: whoami }).replyWithError(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))
    pool.intercept({ path: whoami }).reply(200, { user_id: "@a:x" })
    const { outcome, waits } = await settle(make({ retry: { baseDelayMs: 100 } }).request<{ user_id: string }>({ method: "GET", path: whoami }))
    expect(outcome).toEqual({ user_id: "@a:x" })
    expect(waits).toHaveLength(2)
  })

  it("a send is retried with the same transaction id", async () => {
    const pool = agent.get(origin)
    const seen: Array<string> = []
    const http = make({ retry: { baseDelayMs: 10 } })
    const txn = http.txnId()
    const sendPath = path`/_matrix/client/v3/rooms/${"!r:x"}/send/${"m.room.message"}/${txn}`
    const record = (opts: { path: string }) => {
      seen.push(opts.path)
      return { errcode: "M_UNKNOWN" }
    }
    pool.intercept({ path: sendPath, method: "PUT" }).reply(500, record)
    pool.intercept({ path: sendPath, method: "PUT" }).replyWithError(new Error("socket hang up"))
    pool.intercept({ path: sendPath, method: "PUT" }).reply(200, (opts) => {
      seen.push(opts.path)
      return { event_id: "$e" }
    })
    const { outcome } = await settle(http.request<{ event_id: string }>({ method: "PUT", path: sendPath, body: { body: "hi" } }))
    expect(outcome).toEqual({ event_id: "$e" })
    expect(seen).toEqual([sendPath, sendPath])
    expect(sendPath).toContain(encodeURIComponent("!r:x"))
    agent.assertNoPendingInterceptors()
  })

  it("transaction ids are unique and deterministic under injected randomness", () => {
    const a = make()
    const ids = [a.txnId(), a.txnId(), a.txnId()]
    expect(new Set(ids).size).toBe(3)
    clock = new ManualClock()
    const b = make()
    expect([b.txnId(), b.txnId(), b.txnId()]).toEqual(ids)
  })

  it("times out a request that never answers, retrying each attempt", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(200, {}).delay(3_600_000).times(2)
    const http = make({ requestTimeoutMs: 1000, retry: { maxAttempts: 2, baseDelayMs: 10 } })
    const pending = http.request({ method: "GET", path: whoami }).catch((e: unknown) => e)
    // The first attempt's timeout fires, the backoff passes, the second attempt's timeout fires.
    await until(() => clock.waiting().some((t) => t.ms === 1000))
    clock.advance(1000)
    await until(() => clock.waiting().some((t) => t.ms !== 1000))
    clock.advance(clock.waiting()[0]!.dueIn)
    await until(() => clock.waiting().some((t) => t.ms === 1000))
    clock.advance(1000)
    const err = (await pending) as HomeserverError
    expect(err).toBeInstanceOf(HomeserverError)
    expect(err.message).toMatch(/timed out after 1000 ms/)
    expect(err.http).toBeUndefined()
  })

  it("maps errors to HomeserverError with only spec-defined headers (Effect failure channel)", async () => {
    agent
      .get(origin)
      .intercept({ path: "/_matrix/client/v3/rooms/!r%3Ax/state?x=1" })
      .reply(400, { errcode: "M_BAD_JSON", error: "bad" }, {
        headers: { "retry-after": "5", "x-request-id": "abc", server: "synapse", "set-cookie": "a=b" }
      })
    const http = make({ retry: { maxAttempts: 1 } })
    const exit = await Effect.runPromiseExit(http.effect({ method: "GET", path: path`/_matrix/client/v3/rooms/${"!r:x"}/state`, query: { x: 1, y: undefined } }))
    if (!Exit.isFailure(exit)) throw new Error("expected a failure")
    const err = exit.cause.reasons.find((r) => r._tag === "Fail")?.error
    expect(err).toBeInstanceOf(HomeserverError)
    expect(err?.http).toEqual({
      status: 400,
      headers: { "retry-after": "5" },
      url: `${origin}/_matrix/client/v3/rooms/!r%3Ax/state?x=1`,
      body: { errcode: "M_BAD_JSON", error: "bad" }
    })
  })

  it("the widget-facing matrix_api_error carries status, spec headers, url and body", async () => {
    agent
      .get(origin)
      .intercept({ path: "/_matrix/client/v3/rooms/!r%3Ax/state?x=1" })
      .reply(429, { errcode: "M_LIMIT_EXCEEDED", error: "slow down", retry_after_ms: 2000 }, {
        headers: { "retry-after": "120", "x-request-id": "abc", server: "synapse" }
      })
    const http = make({ retry: { maxAttempts: 1 } })
    const err = (await http.request({ method: "GET", path: path`/_matrix/client/v3/rooms/${"!r:x"}/state`, query: { x: 1 } }).catch((e: unknown) => e)) as HomeserverError
    expect(err).toBeInstanceOf(HomeserverError)
    expect(matrixApiError(err)).toEqual({
      http_status: 429,
      http_headers: { "retry-after": "120" },
      url: `${origin}/_matrix/client/v3/rooms/!r%3Ax/state?x=1`,
      response: { errcode: "M_LIMIT_EXCEEDED", error: "slow down", retry_after_ms: 2000 }
    })
  })

  it("a non-JSON error body still yields an errcode", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(404, "<html>nope</html>")
    const err = (await make().request({ method: "GET", path: whoami }).catch((e: unknown) => e)) as HomeserverError
    expect(err.http?.body).toEqual({ errcode: "M_UNKNOWN", error: "<html>nope</html>" })
    expect(err.http?.headers).toEqual({})
  })

  it("interrupting the Effect aborts the request without retrying", async () => {
    agent.get(origin).intercept({ path: whoami }).reply(200, {}).delay(3_600_000)
    const http = make()
    const exit = await Effect.runPromiseExit(http.effect({ method: "GET", path: whoami }).pipe(Effect.timeout("20 millis")))
    expect(Exit.isFailure(exit)).toBe(true)
    // The attempt's own timeout is cancelled once the aborted request unwinds, and no backoff wait was set.
    await until(() => clock.liveTimers === 0)
    expect(clock.delays).toEqual([REQUEST_TIMEOUT_MS])
  })

  it("logs in with a password, keeping a given device id", async () => {
    agent
      .get(origin)
      .intercept({ path: "/_matrix/client/v3/login", method: "POST" })
      .reply(200, (opts) => {
        const body = JSON.parse(typeof opts.body === "string" ? opts.body : "{}") as { identifier: { user: string }; device_id?: string }
        expect(opts.headers).not.toHaveProperty("authorization")
        return { user_id: `@${body.identifier.user}:x`, access_token: "t", device_id: body.device_id ?? "NEW" }
      })
    const session = await login(new MatrixHttp({ baseUrl: origin, dispatcher: agent, clock }), { user: "alice", password: "pw", deviceId: "DEV1" })
    expect(session).toEqual({ userId: "@alice:x", accessToken: "t", deviceId: "DEV1" })
  })
})

/** MatrixHttp's default per-attempt timeout: in these tests every shorter timer is a backoff wait. */
const REQUEST_TIMEOUT_MS = 30_000

/**
 * Runs `call` to its end on the manual clock, letting each backoff wait pass as soon as the client
 * starts it (the attempts' timeouts, the only other timers, never fall due: the mock answers
 * first). Returns what the call settled to (its value or its error) and the waits, in order.
 */
const settle = async (call: Promise<unknown>): Promise<{ outcome: unknown; waits: number[] }> => {
  const waits: number[] = []
  let done = false
  const outcome = call
    .catch((error: unknown) => error)
    .finally(() => {
      done = true
    })
  while (!done) {
    await new Promise((r) => setImmediate(r))
    const wait = clock.waiting().find((t) => t.ms !== REQUEST_TIMEOUT_MS)
    if (wait === undefined) continue
    waits.push(wait.ms)
    clock.advance(wait.dueIn)
  }
  return { outcome: await outcome, waits }
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setImmediate(r))
  if (!cond()) throw new Error("condition never held")
}
