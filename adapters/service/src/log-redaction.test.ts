import { assert, describe, it } from "vitest"
import { ConfigError, parseConfig } from "./config.ts"
import { makeLogger } from "./log.ts"
import { redactMessage, scrubSecrets } from "./log-redaction.ts"
import { MessageLog } from "./message-log.ts"

const ROOM = "!room:hs.example"
const BODY = "meet me at the old mill at midnight"
const ACCESS_TOKEN = "syt_openid_access_token_1234"
const TURN_PASSWORD = "turn-password-5678"
const FILE_DATA = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"
const TO_DEVICE_SECRET = "to-device-call-candidate-9999"

const sizeOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value))

const content = { msgtype: "m.text", body: BODY }

/** Widget API traffic whose contents and secrets must not reach a log by default. */
const traffic: ReadonlyArray<readonly ["in" | "out", unknown]> = [
  ["in", { api: "fromWidget", widgetId: "w1", requestId: "1", action: "send_event", data: { type: "m.room.message", room_id: ROOM, content } }],
  ["out", { api: "toWidget", widgetId: "w1", requestId: "2", action: "send_event", data: { type: "m.room.message", room_id: ROOM, sender: "@alice:hs.example", event_id: "$e1", content } }],
  ["in", { api: "fromWidget", widgetId: "w1", requestId: "3", action: "read_events", data: { type: "m.room.message" }, response: { events: [{ type: "m.room.message", sender: "@bob:hs.example", room_id: ROOM, content, unsigned: { prev_content: content } }] } }],
  ["in", { api: "fromWidget", widgetId: "w1", requestId: "4", action: "send_to_device", data: { type: "m.call.candidates", encrypted: false, messages: { "@bob:hs.example": { DEVICE: { candidate: TO_DEVICE_SECRET } } } } }],
  ["out", { api: "toWidget", widgetId: "w1", requestId: "5", action: "send_to_device", data: { type: "m.call.candidates", sender: "@bob:hs.example", content: { candidate: TO_DEVICE_SECRET } } }],
  ["in", { api: "fromWidget", widgetId: "w1", requestId: "6", action: "get_openid", data: {}, response: { state: "allowed", access_token: ACCESS_TOKEN, expires_in: 3600, matrix_server_name: "hs.example", token_type: "Bearer" } }],
  ["out", { api: "toWidget", widgetId: "w1", requestId: "7", action: "update_turn_servers", data: { uris: ["turn:turn.example"], username: "1700000000:w1", password: TURN_PASSWORD } }],
  ["in", { api: "fromWidget", widgetId: "w1", requestId: "8", action: "MSC4039.upload_file", data: { file: FILE_DATA } }]
]

describe("message log: contents and secrets are redacted by default", () => {
  it("a logged send_event shows type, room, sender and the body's size, not the body", () => {
    const log = new MessageLog({ now: () => 0 })
    for (const [direction, message] of traffic) log.record("s", direction, message)
    const [request, live] = log.get("s").map((entry) => entry.message as { data: Record<string, unknown> })
    assert.deepEqual(request?.data, { type: "m.room.message", room_id: ROOM, content: { "io.widgethost.redacted": true, bytes: sizeOf(content) } })
    assert.deepEqual(live?.data, {
      type: "m.room.message",
      room_id: ROOM,
      sender: "@alice:hs.example",
      event_id: "$e1",
      content: { "io.widgethost.redacted": true, bytes: sizeOf(content) }
    })
  })

  it("no body, token, TURN password, to-device content or file data is kept anywhere", () => {
    const log = new MessageLog()
    for (const [direction, message] of traffic) log.record("s", direction, message)
    const kept = JSON.stringify(log.get("s"))
    for (const secret of [BODY, ACCESS_TOKEN, TURN_PASSWORD, FILE_DATA, TO_DEVICE_SECRET]) assert.notInclude(kept, secret)
    // what an operator still needs: who a to-device message went to, and the OpenID answer's shape
    const toDevice = log.get("s")[3]?.message as { data: { messages: unknown } }
    assert.deepEqual(toDevice.data.messages, { "@bob:hs.example": { DEVICE: { "io.widgethost.redacted": true, bytes: sizeOf({ candidate: TO_DEVICE_SECRET }) } } })
    const openid = log.get("s")[5]?.message as { response: Record<string, unknown> }
    assert.deepEqual(openid.response, { state: "allowed", access_token: "io.widgethost.redacted", expires_in: 3600, matrix_server_name: "hs.example", token_type: "Bearer" })
  })

  it("a truncated preview of a large message is cut from the redacted message, not the original", () => {
    const log = new MessageLog({ maxEntryChars: 40 })
    const huge = { api: "fromWidget", action: "send_event", data: { content: { body: BODY.repeat(50) } } }
    log.record("s", "in", huge)
    assert.notInclude(JSON.stringify(log.get("s")), BODY)
  })

  it("with logContent the log keeps messages as they are, and the input is never changed", () => {
    const original = JSON.stringify(traffic)
    const log = new MessageLog({ logContent: true })
    for (const [direction, message] of traffic) log.record("s", direction, message)
    assert.isTrue(log.logsContent)
    assert.deepEqual(
      log.get("s").map((entry) => entry.message),
      traffic.map(([, message]) => message)
    )
    redactMessage(traffic)
    assert.equal(JSON.stringify(traffic), original)
  })

  it("a cyclic or very deep message is redacted without a crash", () => {
    const cyclic: Record<string, unknown> = { action: "x" }
    cyclic["self"] = cyclic
    assert.deepEqual(redactMessage(cyclic), { "io.widgethost.unserialisable": true })
    let deep: unknown = { content: BODY }
    for (let i = 0; i < 10_000; i++) deep = { next: deep }
    assert.notInclude(JSON.stringify(redactMessage(deep)), BODY)
  })
})

const R = "io.widgethost.redacted"

/** Secrets inside free strings: given a string, want it scrubbed (what names the secret stays). */
const FREE_TEXT: ReadonlyArray<readonly [string, string]> = [
  ["GET https://hs.example/_matrix/client/v3/sync?since=s72&access_token=abc.DEF-123 failed", `GET https://hs.example/_matrix/client/v3/sync?since=s72&access_token=${R} failed`],
  ["/_matrix/media/v3/download/hs/x?access_token=secret1#frag", `/_matrix/media/v3/download/hs/x?access_token=${R}#frag`],
  ["login with password=hunter2, then retry", `login with password=${R}, then retry`],
  ["refresh_token=r1&token=t2&client_secret=c3", `refresh_token=${R}&token=${R}&client_secret=${R}`],
  ["Authorization: Bearer eyJhbGciOi.J9.sig", `Authorization: Bearer ${R}`],
  ["authorization=Basic dXNlcjpwYXNz", `authorization=Basic ${R}`],
  ["Authorization: rawtoken123", `Authorization: ${R}`],
  ["the token syt_d2lkZ2V0aG9zdA_kDfLbHsuRdUcYaEVmxoA_1Z9cG0 was refused", `the token ${R} was refused`],
  ["mat_Abcdefgh12345678 and syr_abcdefgh_12345678_x", `${R} and ${R}`],
  ["MDAxOGxvY2F0aW9uIGxvY2FsaG9zdAowMDEzaWRlbnRpZmllciBrZXkKMDAxMGNpZCBnZW4gPSAxCjAw", R],
  ['body {"access_token":"syt_x","password":"p\\"q","user":"@a:hs"}', `body {"access_token":"${R}","password":"${R}","user":"@a:hs"}`],
  ["turn:1700000000%3Aw1:turn-secret@turn.example.org:3478?transport=udp", `turn:1700000000%3Aw1:${R}@turn.example.org:3478?transport=udp`],
  ["turns:user:p4ss@turn.example.org", `turns:user:${R}@turn.example.org`],
  ["https://alice:s3cret@hs.example/path", `https://alice:${R}@hs.example/path`],
  ["ACCESS_TOKEN=AbC&Password=Xy", `ACCESS_TOKEN=${R}&Password=${R}`],
  // several secrets of different shapes in one string: every one goes
  [
    "GET /sync?access_token=a1&x=1 Authorization: Bearer b2.c3 then syt_abcdefgh_ijk and turn:u:pw@turn.example",
    `GET /sync?access_token=${R}&x=1 Authorization: Bearer ${R} then ${R} and turn:u:${R}@turn.example`
  ],
  ['{"password":"p1","refresh_token":"r2"} via https://bob:pw2@hs.example/x', `{"password":"${R}","refresh_token":"${R}"} via https://bob:${R}@hs.example/x`],
  ["mat_abcdefgh, mar_abcdefgh; mct_abcdefgh", `${R}, ${R}; ${R}`],
  // nothing secret: left as it is
  ["@bob:hs.example sent $event:hs.example in !room:hs.example at 12:30", "@bob:hs.example sent $event:hs.example in !room:hs.example at 12:30"],
  ["turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=udp"],
  ["token_type=Bearer", "token_type=Bearer"],
  ["mxc://hs.example/AbCdEf and a stoken=keep (not a token)", "mxc://hs.example/AbCdEf and a stoken=keep (not a token)"],
  // near misses: a trigger word or shape without the rest of the pattern
  ["tokens=5 and mytoken=keep and token_type=Bearer", "tokens=5 and mytoken=keep and token_type=Bearer"],
  ['{"token_type":"Bearer","expires_in":3600}', '{"token_type":"Bearer","expires_in":3600}'],
  ["Basically fine; authorization header missing", "Basically fine; authorization header missing"],
  ["system_user and mat_short and xsyt_abcdefghijk and MDAxshort", "system_user and mat_short and xsyt_abcdefghijk and MDAxshort"],
  ["https://hs.example/path@v2, mailto:alice@hs.example, turn:turn.example.org@3478", "https://hs.example/path@v2, mailto:alice@hs.example, turn:turn.example.org@3478"],
  ["send_event", "send_event"],
  ["$Wc1_Nf8uVtXmKPpd-q3yRz_1aBCdeFgHiJkLmNoPqRsTuVw", "$Wc1_Nf8uVtXmKPpd-q3yRz_1aBCdeFgHiJkLmNoPqRsTuVw"]
]

describe("free strings: secrets are scrubbed by pattern, not only by key", () => {
  it.each(FREE_TEXT)("%s", (given, want) => {
    assert.equal(scrubSecrets(given), want)
  })

  it("a scrubbed string is left as it is when scrubbed again (the marker sets off no pattern)", () => {
    for (const [, want] of FREE_TEXT) assert.equal(scrubSecrets(want), want)
    assert.equal(scrubSecrets(R), R)
  })

  it("every string a message keeps is scrubbed, at any depth; with logContent nothing is", () => {
    const message = { action: "x", error: { message: "GET /sync?access_token=syt_abcdefgh_1234 failed" }, uris: ["turn:u:pw@turn.example"] }
    assert.deepEqual(redactMessage(message), { action: "x", error: { message: `GET /sync?access_token=${R} failed` }, uris: [`turn:u:${R}@turn.example`] })
    assert.equal(redactMessage("Bearer abc"), `Bearer ${R}`)
    const log = new MessageLog({ logContent: true })
    log.record("s", "in", message)
    assert.deepEqual(log.get("s")[0]?.message, message)
  })

  it("a log line's fields are scrubbed, at any depth; its message (the service's own words) is not", () => {
    const lines: string[] = []
    makeLogger({ json: false, write: (line) => void lines.push(line) })("warn", "console: http://127.0.0.1:1/?token=shown-to-the-terminal", { error: "GET /sync?access_token=syt_abcdefgh_99 failed", peer: { url: "https://u:pw@hs.example/" } })
    const text = lines.join("")
    assert.notInclude(text, "syt_abcdefgh_99")
    assert.notInclude(text, ":pw@")
    assert.include(text, `access_token=${R}`)
    assert.include(text, "?token=shown-to-the-terminal")
  })
})

describe("service logs: fields are redacted unless the operator opts in", () => {
  const fields = { sessionId: "s", report: { message: traffic[0]?.[1], openid: { access_token: ACCESS_TOKEN } }, turn: { password: TURN_PASSWORD } }

  it("JSON and text lines keep the fields' shape without contents or secrets", () => {
    for (const json of [true, false]) {
      const lines: string[] = []
      makeLogger({ json, write: (line) => void lines.push(line) })("info", "session report", fields)
      const text = lines.join("")
      for (const secret of [BODY, ACCESS_TOKEN, TURN_PASSWORD]) assert.notInclude(text, secret)
      assert.include(text, "m.room.message")
      assert.include(text, ROOM)
    }
  })

  it("logContent: true writes them", () => {
    const lines: string[] = []
    makeLogger({ json: true, write: (line) => void lines.push(line), logContent: true })("info", "session report", fields)
    for (const secret of [BODY, ACCESS_TOKEN, TURN_PASSWORD]) assert.include(lines.join(""), secret)
  })
})

describe("configuration: logContent", () => {
  it("is false by default, true when set, and anything but a boolean is refused", () => {
    assert.isFalse(parseConfig({}).logContent)
    assert.isTrue(parseConfig({ logContent: true }).logContent)
    assert.throws(() => parseConfig({ logContent: "yes" }), ConfigError, "logContent: expected true or false")
  })
})
