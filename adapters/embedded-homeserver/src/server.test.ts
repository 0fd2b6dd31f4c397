import { request } from "node:http"
import { afterEach, assert, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { MatrixErrorBody } from "./testing.ts"
import { Client, newUser, room, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
})
const start = async () => (hs = await startEmbeddedHomeserver())

describe("discovery", () => {
  it("advertises versions, unstable features, well-known and capabilities", async () => {
    const s = await start()
    assert.match(s.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
    const anon = new Client(s.baseUrl)
    const versions = await anon.get<{ versions: Array<string>; unstable_features: Record<string, boolean> }>("/_matrix/client/versions")
    assert.include(versions.body.versions, "v1.1")
    assert.include(versions.body.versions, "v1.12")
    assert.isTrue(versions.body.unstable_features["org.matrix.msc4140"])
    assert.deepEqual((await anon.get("/.well-known/matrix/client")).body, { "m.homeserver": { base_url: s.baseUrl } })
    const a = await newUser(s)
    const caps = await a.get<{ capabilities: { "m.room_versions": { default: string } } }>(`${V3}/capabilities`)
    assert.equal(caps.body.capabilities["m.room_versions"].default, "10")
    // r0 paths are the same endpoints
    assert.equal((await a.get("/_matrix/client/r0/account/whoami")).status, 200)
  })
})

describe("error shapes", () => {
  it("answers unknown endpoints with M_UNRECOGNIZED (404, or 405 for a known path)", async () => {
    const s = await start()
    const anon = new Client(s.baseUrl)
    const unknown = await anon.get<MatrixErrorBody>(`${V3}/no/such/thing`)
    assert.equal(unknown.status, 404)
    assert.equal(unknown.body.errcode, "M_UNRECOGNIZED")
    const wrongMethod = await anon.request<MatrixErrorBody>("DELETE", `${V3}/login`)
    assert.equal(wrongMethod.status, 405)
    assert.equal(wrongMethod.body.errcode, "M_UNRECOGNIZED")
    assert.isString(wrongMethod.body.error)
    assert.equal(unknown.headers.get("content-type"), "application/json")
  })

  it("rejects malformed JSON with M_NOT_JSON and non-objects with M_BAD_JSON", async () => {
    const s = await start()
    const a = await newUser(s)
    const roomId = await a.createRoom()
    const path = `${room(roomId)}/send/m.room.message/t1`
    const notJson = await a.request<MatrixErrorBody>("PUT", path, { raw: "{not json", headers: { "content-type": "application/json" } })
    assert.equal(notJson.status, 400)
    assert.equal(notJson.body.errcode, "M_NOT_JSON")
    const array = await a.request<MatrixErrorBody>("PUT", path, { raw: "[1,2]" })
    assert.equal(array.status, 400)
    assert.equal(array.body.errcode, "M_BAD_JSON")
    const wrongType = await a.post<MatrixErrorBody>(`${V3}/login`, { type: "m.login.password", user: 42, password: "x" })
    assert.equal(wrongType.status, 400)
    assert.equal(wrongType.body.errcode, "M_BAD_JSON")
    const deep = await a.request<MatrixErrorBody>("PUT", path, { raw: `${"[".repeat(5000)}${"]".repeat(5000)}` })
    assert.equal(deep.status, 400)
  })

  it("refuses bodies over 1 MiB with 413 M_TOO_LARGE and keeps serving", async () => {
    const s = await start()
    const a = await newUser(s)
    const roomId = await a.createRoom()
    const big = await a.request<MatrixErrorBody>("PUT", `${room(roomId)}/send/m.room.message/big`, {
      raw: JSON.stringify({ body: "x".repeat(1024 * 1024 + 10) })
    })
    assert.equal(big.status, 413)
    assert.equal(big.body.errcode, "M_TOO_LARGE")
    // An event may not exceed 64 KiB even when the body is within the request limit.
    const bigEvent = await a.put<MatrixErrorBody>(`${room(roomId)}/send/m.room.message/big2`, { body: "x".repeat(70_000) })
    assert.equal(bigEvent.status, 413)
    assert.equal((await a.get(`${V3}/account/whoami`)).status, 200)
  })

  it("survives garbage: bad percent-encoding, bad tokens, bad query parameters, raw junk on the socket", async () => {
    const s = await start()
    const a = await newUser(s)
    assert.equal((await a.get(`${V3}/rooms/%E0%A4%A/state`)).status, 400)
    assert.equal((await a.get<MatrixErrorBody>(`${V3}/sync?since=garbage`)).body.errcode, "M_INVALID_PARAM")
    assert.equal((await a.get<MatrixErrorBody>(`${V3}/sync?timeout=-5`)).body.errcode, "M_INVALID_PARAM")
    assert.equal((await a.get<MatrixErrorBody>(`${V3}/sync?filter=%7Bbroken`)).body.errcode, "M_NOT_JSON")
    assert.equal((await a.get(`${V3}/rooms/!nope:localhost/messages?dir=b`)).status, 404)
    assert.equal((await a.request("GET", `${V3}/account/whoami`, { token: null, headers: { authorization: "Basic abc" } })).status, 401)
    await new Promise<void>((resolve) => {
      const url = new URL(s.baseUrl)
      const req = request({ host: url.hostname, port: url.port, method: "POST", path: `${V3}/login`, headers: { "content-length": "100" } })
      req.on("error", () => resolve())
      req.write("{\"type\":")
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 50)
    })
    assert.equal((await a.get(`${V3}/account/whoami`)).status, 200)
  })
})

describe("fault injection", () => {
  it("fails matching requests the given number of times, then recovers", async () => {
    const s = await start()
    const a = await newUser(s)
    s.injectFault({ path: /\/account\/whoami$/, times: 2, kind: { status: 429, retryAfterMs: 1500, retryAfterHeader: true } })
    const first = await a.get<MatrixErrorBody>(`${V3}/account/whoami`)
    assert.equal(first.status, 429)
    assert.deepEqual(first.body, { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: 1500 })
    assert.equal(first.headers.get("retry-after"), "2")
    assert.equal((await a.get(`${V3}/account/whoami`)).status, 429)
    assert.equal((await a.get(`${V3}/account/whoami`)).status, 200)
  })

  it("filters by method and can return a custom body or drop the connection", async () => {
    const s = await start()
    const a = await newUser(s)
    const roomId = await a.createRoom()
    s.injectFault({ path: /\/send\//, method: "PUT", times: 1, kind: { status: 502, body: { errcode: "M_UNKNOWN", error: "bad gateway" } } })
    const failed = await a.put<MatrixErrorBody>(`${room(roomId)}/send/m.room.message/f1`, { body: "x" })
    assert.equal(failed.status, 502)
    assert.equal(failed.body.error, "bad gateway")
    s.injectFault({ path: /\/joined_rooms$/, times: 1, kind: "drop-connection" })
    let dropped = false
    try {
      await a.get(`${V3}/joined_rooms`)
    } catch {
      dropped = true
    }
    assert.isTrue(dropped)
    assert.deepEqual((await a.get(`${V3}/joined_rooms`)).body, { joined_rooms: [roomId] })
    // The failed send was never processed: the same txn id now creates the event.
    assert.equal((await a.put(`${room(roomId)}/send/m.room.message/f1`, { body: "x" })).status, 200)
  })
})

describe("lifecycle", () => {
  it("close ends a pending long-poll", async () => {
    const s = await startEmbeddedHomeserver()
    const a = await newUser(s)
    const { next_batch } = await a.sync()
    const started = Date.now()
    const poll = a.get(`${V3}/sync?since=${next_batch}&timeout=20000`)
    await new Promise((r) => setTimeout(r, 100))
    await s.close()
    const res = await poll.catch(() => undefined)
    assert.isBelow(Date.now() - started, 5000)
    if (res !== undefined) assert.equal(res.status, 200)
  })
})
