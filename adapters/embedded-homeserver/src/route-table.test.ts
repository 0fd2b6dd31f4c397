import { assert, describe, it } from "vitest"
import { MatrixError } from "./errors.ts"
import { TokenKeyCache, tokenKey } from "./ids.ts"
import { readTarget, RouteTable } from "./route-table.ts"
import { authed, CLIENT, json, open } from "./routing.ts"

const table = new RouteTable([
  open("GET", "/_matrix/client/versions", () => json({ which: "versions" })),
  authed("PUT", `${CLIENT}/rooms/:roomId/send/:eventType/:txnId`, () => json({ which: "send" })),
  authed("GET", `${CLIENT}/rooms/:roomId/state/:eventType`, () => json({ which: "state" })),
  authed("PUT", `${CLIENT}/rooms/:roomId/state/:eventType`, () => json({ which: "put state" })),
  authed("GET", `${CLIENT}/rooms/:roomId/state/:eventType/:stateKey`, () => json({ which: "state key" }))
])

const errcodeOf = (f: () => unknown): [number, string] => {
  try {
    f()
  } catch (e) {
    if (e instanceof MatrixError) return [e.status, e.body().errcode as string]
    throw e
  }
  assert.fail("expected a MatrixError")
}

describe("route table", () => {
  it("matches by segments: literals, {v3} (v3 or r0), parameters percent-decoded within their segment", () => {
    const { route, params } = table.match("PUT", "/_matrix/client/r0/rooms/!a%3Ab/send/m.room.message/t%2F1")
    assert.equal(route.method, "PUT")
    assert.deepEqual(params, { roomId: "!a:b", eventType: "m.room.message", txnId: "t/1" })
    // A trailing slash leaves an empty last segment: no parameter (the server trims it first).
    assert.equal(errcodeOf(() => table.match("GET", "/_matrix/client/v3/rooms/!r/state/m.room.name/"))[0], 404)
  })

  it("an empty segment is no parameter; HEAD finds GET; the first route of the right method wins", () => {
    assert.equal(errcodeOf(() => table.match("GET", "/_matrix/client/v3/rooms//state/m.room.name"))[0], 404)
    assert.deepEqual(table.match("HEAD", "/_matrix/client/versions").params, {})
    assert.equal(table.match("PUT", "/_matrix/client/v3/rooms/!r/state/m.room.name").route.method, "PUT")
    assert.deepEqual(table.match("GET", "/_matrix/client/v3/rooms/!r/state/m.room.name/k").params, { roomId: "!r", eventType: "m.room.name", stateKey: "k" })
  })

  it("a known path under another method is 405, an unknown one 404, both M_UNRECOGNIZED; a v4 prefix is unknown", () => {
    assert.deepEqual(errcodeOf(() => table.match("DELETE", "/_matrix/client/versions")), [405, "M_UNRECOGNIZED"])
    assert.deepEqual(errcodeOf(() => table.match("GET", "/_matrix/client/versions/extra")), [404, "M_UNRECOGNIZED"])
    assert.deepEqual(errcodeOf(() => table.match("PUT", "/_matrix/client/v4/rooms/!r/send/t/1")), [404, "M_UNRECOGNIZED"])
  })

  it("malformed percent-encoding in a parameter is 400 M_INVALID_PARAM", () => {
    assert.deepEqual(errcodeOf(() => table.match("PUT", "/_matrix/client/v3/rooms/%E0%A4%A/send/t/1")), [400, "M_INVALID_PARAM"])
  })
})

describe("request targets", () => {
  const viaUrl = (raw: string) => {
    const url = new URL(raw, "http://embedded.invalid")
    return { pathname: url.pathname, query: [...url.searchParams] }
  }
  const read = (raw: string) => {
    const t = readTarget(raw)
    return { pathname: t.pathname, query: [...t.query] }
  }

  it("reads every target as the URL parser does, plain ones without it", () => {
    for (const raw of [
      "/_matrix/client/v3/sync",
      "/_matrix/client/v3/sync?",
      "/_matrix/client/v3/sync?since=s12&timeout=30000&filter=%7B%22room%22%3A%7B%7D%7D",
      "/_matrix/client/v3/rooms/!a%3Ab/send/m.room.message/wh1.2.3",
      "/a?b=c+d&e=%20&f='x'&g=\"",
      "/a/./b",
      "/a/../b",
      "/a/%2e%2E/b",
      "/a/.%2e",
      "/a/..",
      "//evil/path",
      "/a b",
      "/a\\b",
      "/a#frag",
      "/a?b#frag",
      "/é?x=é",
      "/a/...b/.c"
    ])
      assert.deepEqual(read(raw), viaUrl(raw), raw)
  })

  it("a target without a query shares one empty query", () => {
    assert.strictEqual(readTarget("/a").query, readTarget("/b?").query)
    assert.equal(readTarget("/a").query.size, 0)
  })
})

describe("token keys", () => {
  it("are the tokens' hashes, remembered up to the limit, the oldest forgotten first", () => {
    const cache = new TokenKeyCache(2)
    assert.equal(cache.of("syt_a"), tokenKey("syt_a"))
    cache.of("syt_b")
    cache.of("syt_c")
    assert.equal(cache.size, 2)
    assert.equal(cache.of("syt_a"), tokenKey("syt_a"))
    assert.equal(cache.size, 2)
  })
})
