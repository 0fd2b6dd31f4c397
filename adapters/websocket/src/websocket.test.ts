/**
 * The websocket transport: who may connect (token, origin, plain HTTP, wss), how frames become
 * messages, and the limits that close a link. Connections over time are in
 * websocket.connections.test.ts, backpressure and the write hook in websocket.backpressure.test.ts,
 * a run with the real engine in websocket.engine.test.ts; shared setup in websocket.test-kit.ts.
 */
import { execFileSync } from "node:child_process"
import { once } from "node:events"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it, vi } from "vitest"
import { WebSocket } from "ws"
import { CloseCode } from "./link-endings.ts"
import { connect, FakeSession, fromWidget, refusedStatus, settle, start, useTransportCleanup } from "./websocket.test-kit.ts"

useTransportCleanup()

describe("websocket transport: who may connect", () => {
  it("refuses a missing or wrong token in the HTTP upgrade, before any message, and opens no session", async () => {
    const { transport, register, sessions } = await start()
    const { uri } = register()
    const wrong = uri.slice(0, -4) + (uri.endsWith("AAAA") ? "BBBB" : "AAAA")
    assert.equal(await refusedStatus(wrong), 401)
    assert.equal(await refusedStatus(`${transport.url}/widget/`), 401)
    assert.equal(await refusedStatus(`${transport.url}/`), 401)
    assert.equal(await refusedStatus(`${uri}x`), 401)
    assert.equal(sessions.length, 0)
    assert.equal(transport.stats().refused.token, 4)
    assert.equal(transport.stats().accepted, 0)
  })

  it("the URI carries an unguessable token, different per registration", async () => {
    const { register, transport } = await start()
    const a = register("w").uri
    const b = register("w").uri
    assert.notEqual(a, b)
    assert.match(a, new RegExp(`^${transport.url}/widget/[A-Za-z0-9_-]{43}$`))
    assert.match(transport.url, /^ws:\/\/127\.0\.0\.1:\d+$/)
  })

  it("a given token keeps the URI across transports on the same port; a malformed or taken token is refused", async () => {
    const token = "A".repeat(43)
    const first = await start()
    const { uri } = first.transport.register("w", (send) => new FakeSession("w", send), { token })
    assert.equal(uri, `${first.transport.url}/widget/${token}`)
    assert.throws(() => first.transport.register("v", (send) => new FakeSession("v", send), { token }), /already registered/)
    assert.throws(() => first.transport.register("v", (send) => new FakeSession("v", send), { token: "short" }), /43 base64url/)
    const port = Number(new URL(first.transport.url).port)
    await first.transport.close()
    const second = await start({ port })
    const again = second.transport.register("w", (send) => new FakeSession("w", send), { token })
    assert.equal(again.uri, uri)
    await connect(again.uri)
    assert.equal(second.transport.stats().accepted, 1)
  })

  it("refuses a browser Origin that is not allowed (403); allows listed origins and clients without Origin", async () => {
    const { transport, register, sessions } = await start({ allowedOrigins: ["https://global.example"] })
    const plain = register("plain")
    const own = register("own", {}, ["https://widget.example"])
    assert.equal(await refusedStatus(plain.uri, { origin: "https://evil.example" }), 403)
    assert.equal(await refusedStatus(own.uri, { origin: "https://evil.example" }), 403)
    assert.equal(await refusedStatus(plain.uri, { origin: "https://widget.example" }), 403, "a registration's origin is not another's")
    assert.equal(await refusedStatus(own.uri, { origin: "null" }), 403)
    assert.equal(sessions.length, 0)
    await connect(own.uri, { origin: "https://widget.example" })
    await connect(plain.uri, { origin: "https://global.example" })
    const other = register("other")
    await connect(other.uri)
    assert.equal(sessions.length, 3)
    assert.equal(transport.stats().refused.origin, 4)
  })

  it("tells the session opener the connecting page's origin (undefined without Origin)", async () => {
    const { transport } = await start()
    const origins: Array<string | undefined> = []
    const opener = (widgetId: string) => transport.register(widgetId, (send, connection) => (origins.push(connection.origin), new FakeSession(widgetId, send)), { origins: ["https://widget.example"] })
    const client = await connect(opener("browser").uri, { origin: "https://widget.example" })
    client.ws.send(JSON.stringify({ api: "fromWidget", widgetId: "browser", requestId: "a", action: "content_loaded", data: {} }))
    const native = await connect(opener("native").uri)
    native.ws.send(JSON.stringify({ api: "fromWidget", widgetId: "native", requestId: "b", action: "content_loaded", data: {} }))
    await vi.waitFor(() => assert.equal(origins.length, 2))
    assert.sameMembers(origins, ["https://widget.example", undefined])
  })

  it("answers a plain HTTP request with 426", async () => {
    const { transport } = await start()
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(transport.url.replace("ws:", "http:") + "/widget/x", (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      })
      req.on("error", reject)
      req.end()
    })
    assert.equal(status, 426)
    assert.equal(transport.stats().refused["not-websocket"], 1)
  })

  it("hands plain HTTP requests to onHttpRequest when given, and upgrades still need a token", async () => {
    const { transport } = await start({ onHttpRequest: (req, res) => void res.writeHead(200, { "Content-Type": "text/plain" }).end(`page ${req.url}`) })
    const answer = await fetch(transport.url.replace("ws:", "http:") + "/demo/chat.html")
    assert.equal(answer.status, 200)
    assert.equal(await answer.text(), "page /demo/chat.html")
    assert.equal(transport.stats().refused["not-websocket"], 0)
    assert.equal(await refusedStatus(`${transport.url}/widget/${"A".repeat(43)}`, {}), 401)
  })

  it("serves wss:// when given a certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-tls-"))
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" })
      const cert = readFileSync(join(dir, "cert.pem"))
      const { transport, register, sessions } = await start({ tls: { cert, key: readFileSync(join(dir, "key.pem")) } })
      assert.match(transport.url, /^wss:\/\//)
      const { uri } = register("w", { echo: true })
      const client = await connect(uri, { ca: cert })
      client.ws.send(fromWidget(1))
      await vi.waitFor(() => assert.equal(client.inbox.length, 1))
      assert.equal(sessions.length, 1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("websocket transport: messages", () => {
  it("one text frame is one message: parsed JSON reaches the session, answers come back", async () => {
    const { register, sessions } = await start()
    const client = await connect(register("w", { echo: true }).uri)
    client.ws.send(fromWidget(1))
    client.ws.send(fromWidget(2))
    await vi.waitFor(() => assert.equal(client.inbox.length, 2))
    assert.deepEqual(sessions[0]!.received, [JSON.parse(fromWidget(1)), JSON.parse(fromWidget(2))])
    assert.deepEqual(client.inbox.map((m) => m["requestId"]), ["r1", "r2"])
    assert.deepEqual(sessions[0]!.events, ["receive", "receive"], "no frameLoaded: MSC3009 websockets wait for the widget")
  })

  it("invalid JSON is passed on as the raw string for the session to judge", async () => {
    const { register, sessions } = await start()
    const client = await connect(register().uri)
    client.ws.send("{not json")
    client.ws.send("42")
    await vi.waitFor(() => assert.equal(sessions[0]!.received.length, 2))
    assert.deepEqual(sessions[0]!.received, ["{not json", 42])
  })

  it("a widget that connects and never speaks: its session is opened and simply waits", async () => {
    const { register, sessions, timers, transport } = await start({ pingIntervalMs: 100, deadAfterMs: 300 })
    const client = await connect(register().uri)
    for (let i = 0; i < 10; i++) {
      const ping = once(client.ws, "ping")
      timers.advance(100)
      await ping
      await settle()
    }
    await settle()
    assert.equal(sessions.length, 1)
    assert.deepEqual(sessions[0]!.events, [], "no receive, no transportDown")
    assert.equal(client.ws.readyState, WebSocket.OPEN)
    assert.equal(transport.stats().connections, 1)
  })

  it("100 concurrent widgets each receive only their own traffic", async () => {
    const { register, sessions } = await start()
    const ids = Array.from({ length: 100 }, (_, i) => `widget-${i}`)
    const clientsById = await Promise.all(ids.map(async (id) => [id, await connect(register(id, { echo: true }).uri)] as const))
    for (const [id, client] of clientsById) {
      for (let n = 0; n < 3; n++) client.ws.send(JSON.stringify({ api: "fromWidget", widgetId: id, requestId: `${id}/${n}`, action: "x", data: {} }))
    }
    await vi.waitFor(() => assert.isTrue(clientsById.every(([, c]) => c.inbox.length === 3)))
    for (const [id, client] of clientsById) {
      assert.deepEqual(client.inbox.map((m) => m["requestId"]), [`${id}/0`, `${id}/1`, `${id}/2`])
      assert.isTrue(client.inbox.every((m) => m["widgetId"] === id))
    }
    assert.equal(sessions.length, 100)
    for (const session of sessions) {
      assert.equal(session.received.length, 3)
      assert.isTrue(session.received.every((m) => (m as { widgetId: string }).widgetId === session.widgetId))
    }
  })
})

describe("websocket transport: limits", () => {
  it("a binary frame closes with 1003", async () => {
    const { register, sessions, transport } = await start()
    const client = await connect(register().uri)
    client.ws.send(Buffer.from([1, 2, 3]))
    const { code } = await client.closed
    assert.equal(code, CloseCode.Unsupported)
    assert.equal(sessions[0]!.received.length, 0)
    await vi.waitFor(() => assert.deepEqual(sessions[0]!.events, ["transportDown"]))
    assert.equal(transport.stats().closed[1003], 1)
  })

  it("a frame over maxFrameBytes closes with 1009 before it reaches the session", async () => {
    const { register, sessions, transport } = await start({ maxFrameBytes: 1024 })
    const client = await connect(register().uri)
    client.ws.send(JSON.stringify({ pad: "x".repeat(1000) }))
    client.ws.send(JSON.stringify({ pad: "x".repeat(2000) }))
    const { code } = await client.closed
    assert.equal(code, CloseCode.TooBig)
    assert.equal(sessions[0]!.received.length, 1)
    assert.equal(transport.stats().closed[1009], 1)
  })

  it("a text frame with invalid UTF-8 closes with 1007", async () => {
    const { register, sessions, transport } = await start()
    const client = await connect(register().uri)
    client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
    const { code } = await client.closed
    assert.equal(code, CloseCode.InvalidPayload)
    assert.equal(sessions[0]!.received.length, 0)
    assert.equal(transport.stats().closed[1007], 1)
  })

  it("a flood over the rate limit closes with 4429; the window resets with time", async () => {
    const { register, sessions, timers, transport } = await start({ rateLimit: { messages: 5, perMs: 1000 } })
    const { uri } = register()
    const steady = await connect(uri)
    for (let n = 0; n < 5; n++) steady.ws.send(fromWidget(n))
    await vi.waitFor(() => assert.equal(sessions[0]!.received.length, 5))
    timers.advance(1000)
    // Fresh ids: a request id seen before is a repeat, never the session's again.
    for (let n = 5; n < 10; n++) steady.ws.send(fromWidget(n))
    await vi.waitFor(() => assert.equal(sessions[0]!.received.length, 10))
    assert.equal(steady.ws.readyState, WebSocket.OPEN)
    timers.advance(1000)
    for (let n = 10; n < 30; n++) steady.ws.send(fromWidget(n))
    const { code, reason } = await steady.closed
    assert.equal(code, CloseCode.RateLimited)
    assert.match(reason, /rate limit/)
    assert.equal(sessions[0]!.received.length, 15, "nothing over the limit is delivered")
    assert.equal(transport.stats().closed[4429], 1)
  })

  it("a half-open peer (no pongs) is detected by the ping timeout: 4408, transportDown", async () => {
    const { register, sessions, timers, transport } = await start({ pingIntervalMs: 100, deadAfterMs: 300 })
    const client = await connect(register().uri, { autoPong: false })
    timers.advance(300)
    await settle()
    assert.deepEqual(sessions[0]!.events, [], "not dead before deadAfterMs")
    timers.advance(100)
    await vi.waitFor(() => assert.deepEqual(sessions[0]!.events, ["transportDown"]))
    assert.equal(transport.stats().closed[4408], 1)
    const { code } = await client.closed
    assert.equal(code, 1006, "the socket is cut, not closed")
  })
})
