/**
 * The service end to end through the real command: `widgethost serve` on the embedded
 * homeserver, a websocket widget connecting to its rendered URL, approval through the admin API,
 * a message from another account reaching the widget, restart and resume, and every bad-input
 * case failing with one clear line and exit code 2.
 */
import { createHmac } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { createServer } from "node:net"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { anyOf, stringContaining } from "../src/matchers.ts"
import { decodeRecoveryKey } from "@widgethost/homeserver-client"
import { freePort, type ReadyLine, type ServiceProcess, startService } from "../src/service-process.ts"

const services: ServiceProcess[] = []
const dirs: string[] = []

afterEach(async () => {
  for (const service of services.splice(0)) await service.kill()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "widgethost-service-"))
  dirs.push(dir)
  return dir
}

type Ready = ReadyLine

const start = (args: string[]) => {
  const service = startService(args)
  services.push(service)
  return service
}

/** A scripted websocket widget: answers the host's requests, collects what it is sent. */
const connectWidget = async (url: string, capabilities: string[]) => {
  const wsUri = decodeURIComponent(/[#&]ws=([^&]+)/.exec(url)![1]!)
  const socket = new WebSocket(wsUri)
  const received: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  socket.on("message", (data) => {
    // A Buffer: the socket's binaryType is the default, "nodebuffer".
    const message = JSON.parse((data as Buffer).toString()) as Record<string, unknown>
    received.push(message)
    if (message.api === "toWidget" && !("response" in message)) {
      const response = message.action === "capabilities" ? { capabilities } : message.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      socket.send(JSON.stringify({ ...message, response }))
    }
    for (const waiter of waiters.splice(0)) waiter()
  })
  await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)))
  const widgetId = "chat"
  // As matrix-widget-api's WidgetApi does: versions first, then content_loaded, which starts negotiation (MSC3009).
  socket.send(JSON.stringify({ api: "fromWidget", widgetId, requestId: "hello", action: "supported_api_versions", data: {} }))
  socket.send(JSON.stringify({ api: "fromWidget", widgetId, requestId: "loaded", action: "content_loaded", data: {} }))
  const waitFor = async (predicate: (m: Record<string, unknown>) => boolean, ms = 15_000) => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = received.find(predicate)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(received.map((m) => m.action))}`)
      await new Promise<void>((resolve) => {
        waiters.push(resolve)
        setTimeout(resolve, 200)
      })
    }
  }
  return { socket, received, waitFor }
}

const admin = async (ready: Ready, path: string, init: RequestInit = {}) => {
  const response = await fetch(`${ready.ready.admin_url.replace(/\/?(\?.*)?$/, "")}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ready.ready.admin_token}`, "content-type": "application/json", ...(init.headers ?? {}) }
  })
  return { status: response.status, body: (await response.json()) as unknown }
}

const matrixCall = async (base: string, method: string, path: string, body?: unknown, token?: string) => {
  const response = await fetch(`${base}${path.startsWith("/_matrix/") ? "" : "/_matrix/client/v3"}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}
const matrix = async (base: string, method: string, path: string, body?: unknown, token?: string) => (await matrixCall(base, method, path, body, token)).body

const writeConfig = (config: unknown) => {
  const file = join(tempDir(), "widgethost.json")
  writeFileSync(file, JSON.stringify(config))
  return file
}

describe("widgethost serve", () => {
  it("hosts the demo chat widget: approve through the admin API, receive another account's message, restart and resume", async () => {
    const dataDir = tempDir()
    const first = start(["serve", "--data-dir", dataDir])
    const ready = await first.ready
    expect(ready.ready.user_id).toMatch(/^@widgethost:/)
    expect(ready.ready.rooms).toHaveLength(1)
    const [widget] = ready.ready.widgets
    expect(widget).toMatchObject({ id: "chat", room_id: ready.ready.rooms[0], transport: "m.websockets" })
    expect(widget!.url).toContain("ws=ws%3A%2F%2F127.0.0.1")

    const w = await connectWidget(widget!.url, ["m.receive.event:m.room.message"])
    // The capability prompt waits in the admin API until approved.
    let pending: Array<{ id: string; requested: string[] }> = []
    for (let i = 0; i < 50 && pending.length === 0; i++) {
      pending = ((await admin(ready, "/api/approvals")).body as { approvals: typeof pending }).approvals
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 100))
    }
    expect(pending[0]!.requested).toEqual(["m.receive.event:m.room.message"])
    expect((await admin(ready, `/api/approvals/${pending[0]!.id}`, { method: "POST", body: JSON.stringify({ approve: "all" }) })).status).toBe(200)
    const notify = await w.waitFor((m) => m.action === "notify_capabilities")
    expect(notify.data).toEqual({ requested: ["m.receive.event:m.room.message"], approved: ["m.receive.event:m.room.message"] })

    // Another account, registered over plain client-server HTTP with the ready line's token, joins and speaks.
    expect(ready.ready.registration_token).toMatch(/^[A-Za-z0-9._~-]{16,64}$/)
    const bob = await matrix(ready.ready.homeserver, "POST", "/register", {
      username: "bob",
      password: "bob-secret-1",
      auth: { type: "m.login.registration_token", token: ready.ready.registration_token }
    })
    const token = String(bob.access_token)
    await matrix(ready.ready.homeserver, "POST", `/join/${encodeURIComponent(ready.ready.rooms[0]!)}`, {}, token)
    await matrix(ready.ready.homeserver, "PUT", `/rooms/${encodeURIComponent(ready.ready.rooms[0]!)}/send/m.room.message/t1`, { msgtype: "m.text", body: "hello widget" }, token)
    const delivered = await w.waitFor((m) => m.action === "send_event" && m.api === "toWidget")
    expect(delivered.data).toMatchObject({ type: "m.room.message", sender: String(bob.user_id), content: { body: "hello widget" } })

    const { sessions } = (await admin(ready, "/api/sessions")).body as { sessions: Array<{ state: string; approved: string[] }> }
    expect(sessions[0]).toMatchObject({ state: "ready", approved: ["m.receive.event:m.room.message"] })

    // SIGTERM: widgets are closed with a proper code, the process exits 0.
    const closed = new Promise<number>((resolve) => w.socket.once("close", (code) => resolve(code)))
    first.child.kill("SIGTERM")
    const firstExit = await first.exited
    if (firstExit !== 0) console.error(first.child.signalCode, first.output().stderr)
    expect(firstExit).toBe(0)
    expect(await closed).toBe(1001)

    // A second start resumes: same account, same device, same room.
    const second = start(["serve", "--data-dir", dataDir])
    const again = await second.ready
    expect(again.ready.user_id).toBe(ready.ready.user_id)
    expect(again.ready.device_id).toBe(ready.ready.device_id)
    expect(again.ready.rooms).toEqual(ready.ready.rooms)
    expect(again.ready.registration_token).toBe(ready.ready.registration_token)
    second.child.kill("SIGTERM")
    const secondExit = await second.exited
    if (secondExit !== 0) console.error(second.child.signalCode, second.output().stderr)
    expect(secondExit).toBe(0)
  }, 90_000)

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

  it("rooms by alias: resolved through the directory, joined when the account is not in them; a widget in an unjoined room is a warning", async () => {
    const dataDir = tempDir()
    const first = start(["serve", "--data-dir", dataDir])
    const ready = await first.ready
    const hs = ready.ready.homeserver
    // Someone else's public room with a widget of its own, known to the service only by its alias.
    const owner = (await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "owner" }) })).body as { access_token: string }
    const created = await matrix(
      hs,
      "POST",
      "/createRoom",
      {
        preset: "public_chat",
        room_alias_name: "side",
        initial_state: [{ type: "m.widget", state_key: "side-widget", content: { type: "m.custom", url: "https://side.example/#ws=$matrix_websocket_uri", transports: ["m.websockets"] } }]
      },
      owner.access_token
    )
    const sideRoom = String(created.room_id)
    first.child.kill("SIGTERM")
    expect(await first.exited).toBe(0)

    const file = writeConfig({
      rooms: ["#side:localhost"],
      widgets: [{ id: "stray", roomId: "!nowhere:localhost", type: "m.custom", url: "https://stray.example/", transports: ["m.websockets"] }]
    })
    const second = start(["serve", "--config", file, "--data-dir", dataDir])
    const again = await second.ready
    expect(again.ready.rooms).toEqual([sideRoom])
    expect(again.ready.widgets).toContainEqual({ id: "side-widget", room_id: sideRoom, transport: "m.websockets", url: stringContaining("https://side.example/#ws=ws%3A%2F%2F127.0.0.1") })
    expect(again.ready.widgets.map((w) => w.id)).toContain("stray")
    const members = await matrix(hs, "GET", `/rooms/${encodeURIComponent(sideRoom)}/joined_members`, undefined, owner.access_token)
    expect(Object.keys(members.joined as object)).toContain(again.ready.user_id)
    // Logs are released after the ready line: wait for the warning.
    for (let i = 0; i < 100 && !second.output().stderr.includes("stray"); i++) await new Promise((r) => setTimeout(r, 100))
    const warnings = second.output().stderr.split("\n").filter((line) => line.includes("!nowhere:localhost") && / warn /.test(line))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/ warn .*widget stray names room !nowhere:localhost, which this account has not joined/)
    expect(second.child.exitCode).toBeNull()
  }, 90_000)

  it("unauthorised admin requests get 401", async () => {
    const s = start(["serve", "--data-dir", tempDir()])
    const ready = await s.ready
    const response = await fetch(`${new URL(ready.ready.admin_url).origin}/api/sessions`)
    expect(response.status).toBe(401)
  }, 60_000)
})

describe("bad input: one clear line, exit code 2, nothing half-started", () => {
  const failsWith = async (args: string[], pattern: RegExp) => {
    const run = start(args)
    const code = await run.exited
    const { stdout, stderr } = run.output()
    expect(code).toBe(2)
    expect(stdout).toBe("")
    expect(stderr.trim().split("\n")[0]).toMatch(pattern)
    return { stderr }
  }
  /** As `failsWith`, and the line is all there is on stderr: no stack trace, no log chatter. */
  const failsWithOneLine = async (args: string[], pattern: RegExp) => {
    const { stderr } = await failsWith(args, pattern)
    expect(stderr.trimEnd().split("\n"), stderr).toHaveLength(1)
  }

  it("an unknown flag", () => failsWith(["serve", "--frobnicate"], /unknown option --frobnicate/))
  it("an unknown command", () => failsWith(["serverless"], /unknown command serverless/))
  it("a missing configuration file", () => failsWith(["serve", "--config", "/nonexistent/widgethost.json"], /cannot read configuration .*ENOENT/))
  it("malformed configuration JSON", () => {
    const file = join(tempDir(), "bad.json")
    writeFileSync(file, "{ nope")
    return failsWith(["serve", "--config", file], /not valid JSON/)
  })
  it("a wrong-typed field names its path", () => {
    const file = join(tempDir(), "bad.json")
    writeFileSync(file, JSON.stringify({ listen: { port: "eighty" } }))
    return failsWith(["serve", "--config", file], /listen\.port: expected a port number/)
  })
  it("an unreachable homeserver", async () => {
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), homeserver: { url: `http://127.0.0.1:${await freePort()}`, accessToken: "t", deviceId: "D" } }))
    return failsWith(["serve", "--config", file], /cannot reach the homeserver/)
  }, 60_000)
  it("wrong credentials", async () => {
    // A real homeserver (the embedded one from a first service run) refusing a bad password.
    const dataDir = tempDir()
    const s = start(["serve", "--data-dir", dataDir])
    const ready = await s.ready
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), homeserver: { url: ready.ready.homeserver, user: "widgethost", password: "wrong" } }))
    await failsWith(["serve", "--config", file], /cannot reach the homeserver.*(M_FORBIDDEN|password|Forbidden)/i)
  }, 60_000)
  it("a port in use", async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as { port: number }).port
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), listen: { port } }))
    try {
      await failsWith(["serve", "--config", file], /cannot listen for widgets on 127\.0\.0\.1:\d+: EADDRINUSE/)
    } finally {
      blocker.close()
    }
  }, 60_000)
  it("an admin token under 16 characters names admin.token, before anything starts", async () => {
    const dataDir = join(tempDir(), "never-created")
    const file = writeConfig({ dataDir, admin: { token: "too-short" } })
    await failsWithOneLine(["serve", "--config", file], /^widgethost: admin\.token: expected at least 16 characters, got 9$/)
    expect(existsSync(dataDir), "no data directory, no homeserver: nothing started").toBe(false)
  })
  it("a declared widget without websockets names the widget", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), widgets: [{ id: "postmessage-only", type: "m.custom", url: "https://widget.example/" }] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: widgets: "postmessage-only" does not offer websockets/)
  })
  it("a configured room that does not exist", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["!missing:localhost"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: room !missing:localhost: cannot join it \(404 M_NOT_FOUND/)
  }, 60_000)
  it("a configured alias that does not exist", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["#nowhere:localhost"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: room #nowhere:localhost: cannot resolve the alias \(404 M_NOT_FOUND/)
  }, 60_000)
  it("a configured room that is neither an id nor an alias", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["demo"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: rooms\[0\]: expected a room id \(!id:server\) or alias \(#alias:server\)/)
  })
  it("an unwritable data directory", () => {
    const parent = tempDir()
    const locked = join(parent, "locked")
    mkdirSync(locked)
    chmodSync(locked, 0o500)
    // root ignores permission bits: use a path under a regular file instead, which nobody can create.
    const file = join(parent, "file")
    writeFileSync(file, "")
    return failsWith(["serve", "--data-dir", join(file, "data")], /data directory .* is not writable/)
  })
})
