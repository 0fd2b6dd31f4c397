import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "vitest"
import { ConfigError, parseConfig } from "./config.ts"
import { encodeRecoveryKey } from "@widgethost/homeserver-client"

/** The message of the ConfigError `input` is refused with. */
const refusal = (input: unknown): string => {
  try {
    parseConfig(input)
  } catch (error) {
    assert.instanceOf(error, ConfigError)
    return error.message
  }
  return assert.fail(`accepted ${JSON.stringify(input)}`)
}

describe("embeddedHomeserver", () => {
  it("takes MatrixRTC transports as written, each with a type", () => {
    const livekit = { type: "livekit", livekit_service_url: "https://livekit-jwt.example.org" }
    assert.deepEqual(parseConfig({ embeddedHomeserver: { rtcTransports: [livekit] } }).embeddedHomeserver.rtcTransports, [livekit])
    assert.throws(() => parseConfig({ embeddedHomeserver: { rtcTransports: [{ livekit_service_url: "x" }] } }), /embeddedHomeserver\.rtcTransports\[0\]\.type: required/)
    assert.throws(() => parseConfig({ embeddedHomeserver: { rtcTransports: "livekit" } }), /embeddedHomeserver\.rtcTransports: expected an array/)
  })

  it("defaults to token registration and no TURN", () => {
    assert.deepEqual(parseConfig({}).embeddedHomeserver, { openRegistration: false })
    assert.deepEqual(parseConfig({ embeddedHomeserver: { openRegistration: true } }).embeddedHomeserver, { openRegistration: true })
  })

  it("takes TURN URIs and a shared secret, with a default lifetime", () => {
    const turn = { uris: ["turn:t.example:3478?transport=udp", "turns:t.example:5349"], sharedSecret: "s3cret" }
    assert.deepEqual(parseConfig({ embeddedHomeserver: { turn } }).embeddedHomeserver.turn, { ...turn, ttlSeconds: 3600 })
    assert.equal(parseConfig({ embeddedHomeserver: { turn: { ...turn, ttlSeconds: 60 } } }).embeddedHomeserver.turn?.ttlSeconds, 60)
  })

  it.each([
    [{ turn: { sharedSecret: "s" } }, /^embeddedHomeserver\.turn\.uris: required/],
    [{ turn: { uris: [], sharedSecret: "s" } }, /^embeddedHomeserver\.turn\.uris: required/],
    [{ turn: { uris: ["stun:t.example"], sharedSecret: "s" } }, /^embeddedHomeserver\.turn\.uris\[0\]: expected a turn: or turns: URI/],
    [{ turn: { uris: ["turn:t"] } }, /^embeddedHomeserver\.turn\.sharedSecret: required/],
    [{ turn: { uris: ["turn:t"], sharedSecret: "s", ttlSeconds: 1.5 } }, /^embeddedHomeserver\.turn\.ttlSeconds: expected a whole number/],
    [{ turn: { uris: ["turn:t"], sharedSecret: "s", ttlSeconds: 0 } }, /^embeddedHomeserver\.turn\.ttlSeconds: expected a positive number/],
    [{ turn: { uris: ["turn:t"], sharedSecret: "s", secret: "x" } }, /^embeddedHomeserver\.turn\.secret: unknown field/],
    [{ openRegistration: "yes" }, /^embeddedHomeserver\.openRegistration: expected true or false/]
  ])("refuses %j", (embeddedHomeserver, message) => {
    assert.match(refusal({ embeddedHomeserver }), message)
  })

  it("is refused next to a homeserver of one's own", () => {
    assert.match(
      refusal({ homeserver: { url: "https://hs.example", accessToken: "t", deviceId: "D" }, embeddedHomeserver: { openRegistration: true } }),
      /^embeddedHomeserver: only applies without a homeserver section/
    )
  })
})

describe("admin", () => {
  it("refuses a token shorter than 16 characters, naming admin.token", () => {
    assert.match(refusal({ admin: { token: "short" } }), /^admin\.token: expected at least 16 characters, got 5$/)
    assert.equal(parseConfig({ admin: { token: "sixteen-chars-ok" } }).admin.token, "sixteen-chars-ok")
  })
})

describe("widgets", () => {
  const widget = (fields: Record<string, unknown>) => ({ widgets: [{ id: "clock", type: "m.custom", url: "https://clock.example/", ...fields }] })

  it.each([
    [{ transports: ["m.websockets"] }],
    [{ transports: ["m.postmessage", "m.websockets"] }],
    [{ transports: ["org.matrix.msc3009.websockets"] }],
    [{ "org.matrix.msc3009.transports": ["org.matrix.msc3009.websockets"] }],
    [{ "org.matrix.msc3009.transports": ["m.websockets"] }]
  ])("hosts a widget offering websockets: %j", (fields) => {
    const [parsed] = parseConfig(widget(fields)).widgets
    assert.deepInclude(parsed, { id: "clock", ...fields })
  })

  it.each([[{}], [{ transports: ["m.postmessage"] }], [{ transports: ["m.websocket"] }], [{ "org.matrix.msc3009.transports": ["org.matrix.msc3009.postmessage"] }]])(
    "refuses a widget without websockets, naming it: %j",
    (fields) => {
      assert.match(refusal(widget(fields)), /^widgets: "clock" does not offer websockets, the only transport this headless service serves/)
    }
  )
})

describe("rooms", () => {
  it("takes room ids and aliases, and names an entry that is neither", () => {
    assert.deepEqual(parseConfig({ rooms: ["!abc:hs.example", "#demo:hs.example"] }).rooms, ["!abc:hs.example", "#demo:hs.example"])
    assert.match(refusal({ rooms: ["!abc:hs.example", "demo"] }), /^rooms\[1\]: expected a room id \(!id:server\) or alias \(#alias:server\), got "demo"$/)
    assert.match(refusal({ rooms: ["#nohost"] }), /^rooms\[0\]: expected a room id/)
  })
})

describe("homeserver.recoveryKey", () => {
  const account = { url: "https://hs.example", user: "alice", password: "pw" }
  const key = encodeRecoveryKey(Buffer.alloc(32, 1))

  it("takes a recovery key, or a file holding one", () => {
    assert.deepInclude(parseConfig({ homeserver: { ...account, recoveryKey: key } }).homeserver, { kind: "password", recoveryKey: key })
    const dir = mkdtempSync(join(tmpdir(), "widgethost-config-"))
    try {
      writeFileSync(join(dir, "key.txt"), `${key}\n`)
      assert.deepInclude(parseConfig({ homeserver: { ...account, recoveryKeyFile: join(dir, "key.txt") } }).homeserver, { recoveryKey: key })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("refuses a mistyped key, an unreadable file, and both at once", () => {
    assert.match(refusal({ homeserver: { ...account, recoveryKey: key.replace(/.$/, key.endsWith("a") ? "b" : "a") } }), /^homeserver\.recoveryKey: not a recovery key/)
    assert.match(refusal({ homeserver: { ...account, recoveryKeyFile: "/nonexistent/key" } }), /^homeserver\.recoveryKeyFile: cannot read .*ENOENT/)
    assert.match(refusal({ homeserver: { ...account, recoveryKey: key, recoveryKeyFile: "/k" } }), /recoveryKey or recoveryKeyFile, not both/)
  })
})
