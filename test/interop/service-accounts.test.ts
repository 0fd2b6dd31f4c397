/**
 * The service end to end through the real command, its accounts on the embedded homeserver: its
 * own device cross-signed with a recovery key written once, registration behind the ready line's
 * token (or open, when configured), users created through the admin API, and TURN credentials.
 * (Hosting widgets: service-hosting.test.ts; bad input: service-bad-input.test.ts.)
 */
import { createHmac } from "node:crypto"
import { readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { decodeRecoveryKey } from "@widgethost/homeserver-client"
import { describe, expect, it } from "vitest"
import { anyOf } from "../src/matchers.ts"
import { admin, matrix, matrixCall, useServiceFixture } from "../src/service-fixture.ts"

const { start, tempDir, writeConfig } = useServiceFixture()

describe("widgethost serve: accounts and credentials", () => {
  it("cross-signs its own device on the first start, writes the recovery key once (0600), and the console says where it is", async () => {
    const dataDir = tempDir()
    const first = start(["serve", "--data-dir", dataDir])
    const ready = await first.ready
    const file = join(dataDir, "recovery-key.txt")
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const recoveryKey = readFileSync(file, "utf8")
    // The spec's encoding: base58 in groups of four, decoding to a 32-byte key (prefix and parity checked).
    expect(recoveryKey).toMatch(/^([1-9A-HJ-NP-Za-km-z]{4} )+[1-9A-HJ-NP-Za-km-z]{1,4}\n$/)
    expect(decodeRecoveryKey(recoveryKey)).toHaveLength(32)
    const identity = (await admin(ready, "/api/identity")).body as { identity: { status: string; detail: string } }
    expect(identity.identity.status).toBe("cross-signed")
    expect(identity.identity.detail).toContain(file)
    expect(identity.identity.detail).toMatch(/somewhere safe/)
    // What any other client reads: a master key, and the device signed by the self-signing key.
    const bob = (await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "bob" }) })).body as { access_token: string }
    type Query = {
      master_keys: Record<string, unknown>
      self_signing_keys: Record<string, { keys: Record<string, string> }>
      device_keys: Record<string, Record<string, { signatures: Record<string, Record<string, string>> }>>
    }
    const query = (await matrix(ready.ready.homeserver, "POST", "/keys/query", { device_keys: { [ready.ready.user_id]: [] } }, bob.access_token)) as unknown as Query
    expect(query.master_keys[ready.ready.user_id]).toBeDefined()
    const selfSigningKeyId = Object.keys(query.self_signing_keys[ready.ready.user_id]!.keys)[0]!
    expect(Object.keys(query.device_keys[ready.ready.user_id]![ready.ready.device_id]!.signatures[ready.ready.user_id]!)).toContain(selfSigningKeyId)
    first.child.kill("SIGTERM")
    expect(await first.exited).toBe(0)

    const second = start(["serve", "--data-dir", dataDir])
    const again = await second.ready
    expect(((await admin(again, "/api/identity")).body as { identity: { status: string } }).identity.status).toBe("cross-signed")
    expect(readFileSync(file, "utf8")).toBe(recoveryKey)
    second.child.kill("SIGTERM")
    expect(await second.exited).toBe(0)
  }, 90_000)

  it("registration needs the ready line's token; the admin API creates users", async () => {
    const s = start(["serve", "--data-dir", tempDir()])
    const ready = await s.ready
    const hs = ready.ready.homeserver
    const token = ready.ready.registration_token
    expect(token).toEqual(anyOf(String))

    // What any web page could try: open registration is gone, and the first challenge is bare.
    const first = await matrixCall(hs, "POST", "/register", { username: "mallory", password: "pw" })
    expect(first.status).toBe(401)
    expect(Object.keys(first.body).sort()).toEqual(["flows", "params", "session"])
    expect(first.body.flows).toEqual([{ stages: ["m.login.registration_token"] }])
    const dummy = await matrixCall(hs, "POST", "/register", { username: "mallory", password: "pw", auth: { type: "m.login.dummy", session: first.body.session } })
    expect(dummy.status).toBe(401)
    const wrong = await matrixCall(hs, "POST", "/register", { username: "mallory", password: "pw", auth: { type: "m.login.registration_token", token: "guess", session: first.body.session } })
    expect(wrong.status).toBe(401)
    expect(wrong.body.errcode).toBe("M_FORBIDDEN")
    expect(wrong.body.flows).toEqual([{ stages: ["m.login.registration_token"] }])
    const validity = "/_matrix/client/v1/register/m.login.registration_token/validity"
    expect((await matrixCall(hs, "GET", `${validity}?token=${encodeURIComponent(token!)}`)).body).toEqual({ valid: true })
    expect((await matrixCall(hs, "GET", `${validity}?token=guess`)).body).toEqual({ valid: false })

    const created = await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "carol" }) })
    expect(created.status).toBe(201)
    const carol = created.body as { user_id: string; access_token: string; device_id: string; password: string }
    expect(carol).toMatchObject({ user_id: "@carol:localhost", access_token: anyOf(String), device_id: anyOf(String), password: anyOf(String) })
    expect(await matrix(hs, "GET", "/account/whoami", undefined, carol.access_token)).toMatchObject({ user_id: "@carol:localhost" })
    const login = await matrixCall(hs, "POST", "/login", { type: "m.login.password", identifier: { type: "m.id.user", user: "carol" }, password: carol.password })
    expect(login.status).toBe(200)
    // No TURN configured: the answer Synapse gives without turn_uris.
    expect(await matrixCall(hs, "GET", "/voip/turnServer", undefined, carol.access_token)).toEqual({ status: 200, body: {} })
    const chosen = await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "dave", password: "dave-secret-1" }) })
    expect(chosen.status).toBe(201)
    expect(chosen.body).not.toHaveProperty("password")

    const taken = await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "carol" }) })
    expect(taken).toEqual({ status: 409, body: { error: { code: "Conflict", message: anyOf(String), errcode: "M_USER_IN_USE" } } })
    const invalid = await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "Not Valid!" }) })
    expect(invalid.status).toBe(400)
    expect(invalid.body).toMatchObject({ error: { code: "BadRequest", errcode: "M_INVALID_USERNAME" } })
    expect((await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ name: "x" }) })).status).toBe(400)
    const anonymous = await fetch(`${new URL(ready.ready.admin_url).origin}/api/users`, { method: "POST", body: JSON.stringify({ username: "eve" }) })
    expect(anonymous.status).toBe(401)
    expect((await matrixCall(hs, "GET", "/register/available?username=eve")).status).toBe(200)
  }, 60_000)

  it("embeddedHomeserver.openRegistration opens m.login.dummy registration, and the ready line has no token", async () => {
    const file = writeConfig({ embeddedHomeserver: { openRegistration: true } })
    const s = start(["serve", "--config", file, "--data-dir", tempDir()])
    const ready = await s.ready
    expect(ready.ready.registration_token).toBeNull()
    const first = await matrixCall(ready.ready.homeserver, "POST", "/register", { username: "olive", password: "pw" })
    expect(first.status).toBe(401)
    expect(first.body.flows).toEqual([{ stages: ["m.login.dummy"] }])
    const done = await matrixCall(ready.ready.homeserver, "POST", "/register", { username: "olive", password: "pw", auth: { type: "m.login.dummy", session: first.body.session } })
    expect(done.status).toBe(200)
    expect(done.body.user_id).toBe("@olive:localhost")
  }, 60_000)

  it("embeddedHomeserver.turn: /voip/turnServer hands out coturn REST credentials (HMAC-SHA1 of an expiring username)", async () => {
    const secret = "coturn-static-auth-secret"
    const uris = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
    const file = writeConfig({ embeddedHomeserver: { turn: { uris, sharedSecret: secret, ttlSeconds: 600 } } })
    const s = start(["serve", "--config", file, "--data-dir", tempDir()])
    const ready = await s.ready
    const caller = (await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "caller" }) })).body as { user_id: string; access_token: string }
    const before = Math.floor(Date.now() / 1000)
    const res = await matrixCall(ready.ready.homeserver, "GET", "/voip/turnServer", undefined, caller.access_token)
    const after = Math.ceil(Date.now() / 1000)
    expect(res.status).toBe(200)
    const { username, password, ttl } = res.body as { username: string; password: string; ttl: number }
    expect(res.body.uris).toEqual(uris)
    expect(ttl).toBe(600)
    const [expiry, ...rest] = username.split(":")
    expect(rest.join(":")).toBe(caller.user_id)
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 600)
    expect(Number(expiry)).toBeLessThanOrEqual(after + 600)
    expect(password).toBe(createHmac("sha1", secret).update(username).digest("base64"))
  }, 60_000)
})
