import { createHmac } from "node:crypto"
import { afterEach, assert, describe, it } from "vitest"
import type { EmbeddedHomeserver, EmbeddedHomeserverOptions } from "./index.ts"
import { MatrixError } from "./errors.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { MatrixErrorBody } from "./testing.ts"
import { Client, newUser, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
})
const start = async (options: EmbeddedHomeserverOptions = {}) => (hs = await startEmbeddedHomeserver(options))

type Challenge = { flows: Array<{ stages: Array<string> }>; params: object; session: string; errcode?: string; error?: string }
type Registered = { user_id: string; access_token: string; device_id: string }
const VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"

describe("registration", () => {
  it("by default needs a registration token: a bare first challenge, M_FORBIDDEN for a wrong token, then registers", async () => {
    const s = await start()
    assert.isString(s.registrationToken)
    const anon = new Client(s.baseUrl)
    const challenge = await anon.post<Challenge>(`${V3}/register`, { username: "alice", password: "pw" })
    assert.equal(challenge.status, 401)
    // Only flows, params and session: an errcode here would mean a stage was tried and failed.
    assert.deepEqual(Object.keys(challenge.body).sort(), ["flows", "params", "session"])
    assert.deepEqual(challenge.body.flows, [{ stages: ["m.login.registration_token"] }])
    assert.deepEqual(challenge.body.params, {})
    assert.isString(challenge.body.session)
    const { session } = challenge.body

    const wrong = await anon.post<Challenge>(`${V3}/register`, { username: "alice", password: "pw", auth: { type: "m.login.registration_token", token: "not-it", session } })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body.errcode, "M_FORBIDDEN")
    assert.deepEqual(wrong.body.flows, [{ stages: ["m.login.registration_token"] }])
    assert.equal(wrong.body.session, session)
    const dummy = await anon.post<Challenge>(`${V3}/register`, { username: "alice", password: "pw", auth: { type: "m.login.dummy", session } })
    assert.equal(dummy.status, 401)
    assert.isString(dummy.body.errcode)
    assert.deepEqual(dummy.body.flows, [{ stages: ["m.login.registration_token"] }])
    assert.equal((await anon.get(`${V3}/register/available?username=alice`)).status, 200, "nothing was created by the refused attempts")

    const done = await anon.post<Registered>(`${V3}/register`, {
      username: "alice",
      password: "pw",
      initial_device_display_name: "laptop",
      auth: { type: "m.login.registration_token", token: s.registrationToken, session }
    })
    assert.equal(done.status, 200)
    assert.equal(done.body.user_id, "@alice:localhost")
    assert.isString(done.body.access_token)
    assert.isString(done.body.device_id)
    const me = new Client(s.baseUrl, { userId: done.body.user_id, accessToken: done.body.access_token, deviceId: done.body.device_id })
    const whoami = await me.get(`${V3}/account/whoami`)
    assert.deepEqual(whoami.body, { user_id: "@alice:localhost", device_id: done.body.device_id, is_guest: false })
  })

  it("uses the configured token, refuses a malformed one, and answers the token validity endpoint", async () => {
    try {
      await startEmbeddedHomeserver({ registrationToken: "has spaces" })
      assert.fail("a token outside the spec's grammar should be refused")
    } catch (e) {
      assert.instanceOf(e, RangeError)
    }
    const s = await start({ registrationToken: "operator.Token_~-1" })
    assert.equal(s.registrationToken, "operator.Token_~-1")
    const anon = new Client(s.baseUrl)
    assert.deepEqual((await anon.get(`${VALIDITY}?token=operator.Token_~-1`)).body, { valid: true })
    assert.deepEqual((await anon.get(`${VALIDITY}?token=operator.Token_~-2`)).body, { valid: false })
    assert.deepEqual((await anon.get(`${VALIDITY}?token=${encodeURIComponent("not valid at all!")}`)).body, { valid: false })
    const missing = await anon.get<MatrixErrorBody>(VALIDITY)
    assert.equal(missing.status, 400)
    assert.equal(missing.body.errcode, "M_MISSING_PARAM")
    const done = await anon.post<Registered>(`${V3}/register`, { username: "frank", password: "pw", auth: { type: "m.login.registration_token", token: "operator.Token_~-1" } })
    assert.equal(done.status, 200)
    assert.equal(done.body.user_id, "@frank:localhost")
  })

  it("registers with m.login.dummy only when opened explicitly, still with a bare first challenge", async () => {
    const s = await start({ registration: "open" })
    assert.isUndefined(s.registrationToken)
    const anon = new Client(s.baseUrl)
    const challenge = await anon.post<Challenge>(`${V3}/register`, { username: "alice", password: "pw" })
    assert.equal(challenge.status, 401)
    assert.deepEqual(Object.keys(challenge.body).sort(), ["flows", "params", "session"])
    assert.deepEqual(challenge.body.flows, [{ stages: ["m.login.dummy"] }])
    const done = await anon.post<Registered>(`${V3}/register`, { username: "alice", password: "pw", auth: { type: "m.login.dummy", session: challenge.body.session } })
    assert.equal(done.status, 200)
    assert.equal(done.body.user_id, "@alice:localhost")
    // No token opens anything here, so none is valid.
    assert.deepEqual((await anon.get(`${VALIDITY}?token=anything`)).body, { valid: false })
  })

  it("refuses a taken name with M_USER_IN_USE, before auth", async () => {
    const s = await start()
    await s.ensureUser("bob", "pw")
    const res = await new Client(s.baseUrl).post<MatrixErrorBody>(`${V3}/register`, { username: "bob", password: "x" })
    assert.equal(res.status, 400)
    assert.equal(res.body.errcode, "M_USER_IN_USE")
    const available = await new Client(s.baseUrl).get<MatrixErrorBody>(`${V3}/register/available?username=bob`)
    assert.equal(available.body.errcode, "M_USER_IN_USE")
  })

  it("refuses invalid user names and honours inhibit_login", async () => {
    const s = await start()
    const anon = new Client(s.baseUrl)
    const auth = { type: "m.login.registration_token", token: s.registrationToken }
    const bad = await anon.post<MatrixErrorBody>(`${V3}/register`, { username: "Not Valid!", password: "x", auth })
    assert.equal(bad.status, 400)
    assert.equal(bad.body.errcode, "M_INVALID_USERNAME")
    const inhibited = await anon.post(`${V3}/register`, { username: "carol", password: "x", inhibit_login: true, auth })
    assert.equal(inhibited.status, 200)
    assert.deepEqual(inhibited.body, { user_id: "@carol:localhost", home_server: "localhost" })
  })

  it("is closed when configured so", async () => {
    const s = await start({ registration: "closed" })
    const res = await new Client(s.baseUrl).post<MatrixErrorBody>(`${V3}/register`, { username: "dave", password: "x", auth: { type: "m.login.dummy" } })
    assert.equal(res.status, 403)
    assert.equal(res.body.errcode, "M_FORBIDDEN")
    const validity = await new Client(s.baseUrl).get<MatrixErrorBody>(`${VALIDITY}?token=x`)
    assert.equal(validity.status, 403)
    assert.equal(validity.body.errcode, "M_FORBIDDEN")
  })

  it("createUser registers without user-interactive auth and refuses a taken name", async () => {
    const s = await start({ registration: "closed" })
    const created = await s.createUser("grace", "pw")
    assert.equal(created.userId, "@grace:localhost")
    const whoami = await new Client(s.baseUrl, created).get(`${V3}/account/whoami`)
    assert.equal(whoami.body.user_id, "@grace:localhost")
    const again = await s.createUser("grace", "other").then(
      () => undefined,
      (e: unknown) => e
    )
    assert.instanceOf(again, MatrixError)
    assert.equal(again.errcode, "M_USER_IN_USE")
  })
})

describe("login and logout", () => {
  it("logs in with an identifier or the legacy user field, honouring device_id", async () => {
    const s = await start()
    await s.ensureUser("erin", "secret")
    const anon = new Client(s.baseUrl)
    assert.deepEqual((await anon.get(`${V3}/login`)).body, { flows: [{ type: "m.login.password" }] })
    const viaIdentifier = await anon.post<{ user_id: string; device_id: string; access_token: string }>(`${V3}/login`, {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: "erin" },
      password: "secret",
      device_id: "MYDEVICE"
    })
    assert.equal(viaIdentifier.status, 200)
    assert.equal(viaIdentifier.body.user_id, "@erin:localhost")
    assert.equal(viaIdentifier.body.device_id, "MYDEVICE")
    const legacy = await anon.post<{ user_id: string }>(`${V3}/login`, { type: "m.login.password", user: "@erin:localhost", password: "secret" })
    assert.equal(legacy.status, 200)
    const wrong = await anon.post<MatrixErrorBody>(`${V3}/login`, { type: "m.login.password", user: "erin", password: "nope" })
    assert.equal(wrong.status, 403)
    assert.equal(wrong.body.errcode, "M_FORBIDDEN")
    const unknownUser = await anon.post<MatrixErrorBody>(`${V3}/login`, { type: "m.login.password", user: "nobody", password: "x" })
    assert.equal(unknownUser.status, 403)
  })

  it("logout invalidates the token and removes the device", async () => {
    const s = await start()
    const a = await newUser(s)
    const other = new Client(s.baseUrl, await s.ensureUser(a.userId.slice(1, a.userId.indexOf(":")), "correct horse battery staple"))
    assert.equal((await a.post(`${V3}/logout`)).status, 200)
    const after = await a.get<MatrixErrorBody>(`${V3}/account/whoami`)
    assert.equal(after.status, 401)
    assert.equal(after.body.errcode, "M_UNKNOWN_TOKEN")
    const devices = await other.get<{ devices: Array<{ device_id: string }> }>(`${V3}/devices`)
    assert.deepEqual(
      devices.body.devices.map((d) => d.device_id),
      [other.session!.deviceId]
    )
  })

  it("distinguishes a missing token from an unknown one", async () => {
    const s = await start()
    const anon = new Client(s.baseUrl)
    const missing = await anon.get<MatrixErrorBody>(`${V3}/account/whoami`)
    assert.equal(missing.status, 401)
    assert.equal(missing.body.errcode, "M_MISSING_TOKEN")
    const unknown = await anon.request<MatrixErrorBody>("GET", `${V3}/account/whoami`, { token: "syt_nope" })
    assert.equal(unknown.status, 401)
    assert.equal(unknown.body.errcode, "M_UNKNOWN_TOKEN")
    const viaQuery = await anon.get<MatrixErrorBody>(`${V3}/account/whoami?access_token=syt_nope`)
    assert.equal(viaQuery.body.errcode, "M_UNKNOWN_TOKEN")
  })

  it("deleting a device needs the password (user-interactive auth)", async () => {
    const s = await start()
    const a = await newUser(s)
    const second = await s.ensureUser(a.userId.slice(1, a.userId.indexOf(":")), "correct horse battery staple")
    const path = `${V3}/devices/${second.deviceId}`
    const challenge = await a.request<Challenge>("DELETE", path, { body: {} })
    assert.equal(challenge.status, 401)
    assert.deepEqual(challenge.body.flows, [{ stages: ["m.login.password"] }])
    assert.notProperty(challenge.body, "errcode", "nothing was tried yet")
    const wrong = await a.request<Challenge>("DELETE", path, { body: { auth: { type: "m.login.password", password: "wrong", session: challenge.body.session } } })
    assert.equal(wrong.status, 401)
    assert.equal(wrong.body.errcode, "M_FORBIDDEN")
    assert.equal(wrong.body.session, challenge.body.session)
    const right = await a.request("DELETE", path, { body: { auth: { type: "m.login.password", password: "correct horse battery staple" } } })
    assert.equal(right.status, 200)
    assert.equal((await a.get(path)).status, 404)
  })
})

describe("OpenID and TURN", () => {
  it("issues OpenID tokens that the federation userinfo endpoint resolves", async () => {
    const s = await start()
    const a = await newUser(s)
    const token = await a.post<{ access_token: string; token_type: string; matrix_server_name: string; expires_in: number }>(
      `${V3}/user/${encodeURIComponent(a.userId)}/openid/request_token`
    )
    assert.equal(token.status, 200)
    assert.equal(token.body.token_type, "Bearer")
    assert.equal(token.body.matrix_server_name, "localhost")
    assert.isAbove(token.body.expires_in, 0)
    const anon = new Client(s.baseUrl)
    const info = await anon.get(`/_matrix/federation/v1/openid/userinfo?access_token=${token.body.access_token}`)
    assert.deepEqual(info.body, { sub: a.userId })
    const bad = await anon.get<MatrixErrorBody>(`/_matrix/federation/v1/openid/userinfo?access_token=nope`)
    assert.equal(bad.status, 401)
    assert.equal(bad.body.errcode, "M_UNKNOWN_TOKEN")
    const forOther = await a.post<MatrixErrorBody>(`${V3}/user/${encodeURIComponent("@else:localhost")}/openid/request_token`)
    assert.equal(forOther.status, 403)
  })

  it("OpenID tokens expire by the configured clock", async () => {
    let now = 1_000_000
    const s = await start({ now: () => now })
    const a = await newUser(s)
    const token = await a.post<{ access_token: string; expires_in: number }>(`${V3}/user/${encodeURIComponent(a.userId)}/openid/request_token`)
    now += token.body.expires_in * 1000 + 1
    const info = await new Client(s.baseUrl).get(`/_matrix/federation/v1/openid/userinfo?access_token=${token.body.access_token}`)
    assert.equal(info.status, 401)
  })

  it("OpenID tokens: random, valid until exactly expires_in, never the access token, errors in the spec's shape", async () => {
    let now = 1_000_000
    const s = await start({ now: () => now })
    const a = await newUser(s)
    const anon = new Client(s.baseUrl)
    const userinfo = (token: string) => anon.get<{ readonly sub?: string; readonly errcode?: string }>(`/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token)}`)
    const issue = (version: string) => a.post<{ access_token: string; expires_in: number }>(`/_matrix/client/${version}/user/${encodeURIComponent(a.userId)}/openid/request_token`, {})
    const first = await issue("v3")
    const second = await issue("r0")
    assert.equal(second.status, 200)
    assert.notEqual(first.body.access_token, second.body.access_token)
    assert.isAtLeast(first.body.access_token.length, 32)
    assert.equal(first.body.expires_in, 3600)
    now += 3600 * 1000 - 1
    assert.deepEqual((await userinfo(first.body.access_token)).body, { sub: a.userId })
    now += 1
    const expired = await userinfo(first.body.access_token)
    assert.deepEqual([expired.status, expired.body.errcode], [401, "M_UNKNOWN_TOKEN"])
    // The account's access token proves nothing to a third party: it is not an OpenID token.
    const accessToken = await userinfo(a.session!.accessToken)
    assert.deepEqual([accessToken.status, accessToken.body.errcode], [401, "M_UNKNOWN_TOKEN"])
    const missing = await anon.get<MatrixErrorBody>("/_matrix/federation/v1/openid/userinfo")
    assert.deepEqual([missing.status, missing.body.errcode], [401, "M_MISSING_TOKEN"])
    const unauthenticated = await anon.post<MatrixErrorBody>(`${V3}/user/${encodeURIComponent(a.userId)}/openid/request_token`, {})
    assert.deepEqual([unauthenticated.status, unauthenticated.body.errcode], [401, "M_MISSING_TOKEN"])
  })

  it("hands out TURN REST credentials whose password is the HMAC of the username", async () => {
    const now = 1_700_000_000_000
    const s = await start({ now: () => now, turn: { uris: ["turn:turn.example:3478?transport=udp"], sharedSecret: "s3cret", ttlSeconds: 600 } })
    const a = await newUser(s)
    const res = await a.get<{ username: string; password: string; uris: Array<string>; ttl: number }>(`${V3}/voip/turnServer`)
    assert.equal(res.status, 200)
    assert.equal(res.body.username, `${now / 1000 + 600}:${a.userId}`)
    assert.equal(res.body.password, createHmac("sha1", "s3cret").update(res.body.username).digest("base64"))
    assert.deepEqual(res.body.uris, ["turn:turn.example:3478?transport=udp"])
    assert.equal(res.body.ttl, 600)
  })

  it("answers {} for TURN when none is configured", async () => {
    const s = await start()
    const a = await newUser(s)
    const res = await a.get(`${V3}/voip/turnServer`)
    assert.equal(res.status, 200)
    assert.deepEqual(res.body, {})
  })
})

describe("profile and account data", () => {
  it("stores display names (copied into member events) and account data", async () => {
    const s = await start()
    const a = await newUser(s)
    const roomId = await a.createRoom()
    const profile = `${V3}/profile/${encodeURIComponent(a.userId)}`
    assert.equal((await a.put(`${profile}/displayname`, { displayname: "Alice A." })).status, 200)
    assert.deepEqual((await a.get(`${profile}/displayname`)).body, { displayname: "Alice A." })
    assert.equal((await a.get<{ displayname: string }>(profile)).body.displayname, "Alice A.")
    const member = await a.get<{ displayname: string }>(`${V3}/rooms/${encodeURIComponent(roomId)}/state/m.room.member/${encodeURIComponent(a.userId)}`)
    assert.equal(member.body.displayname, "Alice A.")
    assert.equal((await a.get(`${V3}/profile/${encodeURIComponent("@ghost:localhost")}`)).status, 404)

    const data = `${V3}/user/${encodeURIComponent(a.userId)}/account_data/org.example.setting`
    assert.equal((await a.get(data)).status, 404)
    await a.ok("PUT", data, { on: true })
    assert.deepEqual((await a.get(data)).body, { on: true })
    const sync = await a.sync()
    assert.deepInclude(sync.account_data.events, { type: "org.example.setting", content: { on: true } })
  })

  it("serves a default push ruleset", async () => {
    const s = await start()
    const a = await newUser(s)
    const res = await a.get<{ global: { override: Array<{ rule_id: string }>; underride: Array<{ rule_id: string }> } }>(`${V3}/pushrules/`)
    assert.equal(res.status, 200)
    assert.equal(res.body.global.override[0]?.rule_id, ".m.rule.master")
    assert.include(
      res.body.global.underride.map((r) => r.rule_id),
      ".m.rule.message"
    )
  })
})
