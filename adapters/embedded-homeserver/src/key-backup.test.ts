import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { MatrixErrorBody } from "./testing.ts"
import { Client, newUser, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver
let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "widgethost-backup-"))
  hs = await startEmbeddedHomeserver({ dataDir: dir })
})
afterEach(async () => {
  await hs.close()
  await rm(dir, { recursive: true, force: true })
})

const ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"
const key = (firstMessageIndex: number, forwardedCount: number, isVerified: boolean, tag = "x") => ({
  first_message_index: firstMessageIndex,
  forwarded_count: forwardedCount,
  is_verified: isVerified,
  session_data: { ephemeral: `eph-${tag}`, ciphertext: `ct-${tag}`, mac: `mac-${tag}` }
})
const ROOM = "!room:localhost"

describe("server-side key backup (/room_keys)", () => {
  it("no backup: 404 M_NOT_FOUND; a created version is current, with count and etag", async () => {
    const a = await newUser(hs)
    const none = await a.get<MatrixErrorBody>(`${V3}/room_keys/version`)
    assert.equal(none.status, 404)
    assert.equal(none.body.errcode, "M_NOT_FOUND")
    const created = await a.post<{ version: string }>(`${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk1" } })
    assert.equal(created.status, 200)
    const current = await a.get(`${V3}/room_keys/version`)
    assert.deepEqual(current.body, { algorithm: ALGORITHM, auth_data: { public_key: "pk1" }, count: 0, etag: "0", version: created.body.version })
    // Another user sees none of it.
    const b = await newUser(hs)
    assert.equal((await b.get(`${V3}/room_keys/version`)).status, 404)
    assert.equal((await b.get(`${V3}/room_keys/version/${created.body.version}`)).status, 404)
  })

  it("keys: stored by room and session, the better copy kept (verified, lower index, fewer forwards), read back at each level", async () => {
    const a = await newUser(hs)
    const { version } = await a.ok<{ version: string }>("POST", `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk" } })
    const put = await a.put<{ count: number; etag: string }>(`${V3}/room_keys/keys?version=${version}`, { rooms: { [ROOM]: { sessions: { s1: key(5, 0, false, "a"), s2: key(0, 0, false, "b") } } } })
    assert.deepEqual(put.body, { count: 2, etag: "1" })
    const cases: Array<[string, ReturnType<typeof key>, string]> = [
      ["a higher index loses", key(9, 0, false, "worse-index"), "a"],
      ["verified beats unverified", key(7, 3, true, "verified"), "verified"],
      ["a lower index wins among verified", key(2, 3, true, "lower"), "lower"],
      ["fewer forwards win at the same index", key(2, 1, true, "fewer"), "fewer"],
      ["unverified never replaces verified", key(0, 0, false, "unverified"), "fewer"]
    ]
    for (const [what, candidate, want] of cases) {
      await a.ok("PUT", `${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/s1?version=${version}`, candidate)
      const got = await a.get<{ session_data: { ciphertext: string } }>(`${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/s1?version=${version}`)
      assert.equal(got.body.session_data.ciphertext, `ct-${want}`, what)
    }
    const all = await a.get<{ rooms: Record<string, { sessions: Record<string, unknown> }> }>(`${V3}/room_keys/keys?version=${version}`)
    assert.deepEqual(Object.keys(all.body.rooms[ROOM]!.sessions).sort(), ["s1", "s2"])
    const roomOnly = await a.get<{ sessions: Record<string, unknown> }>(`${V3}/room_keys/keys/${encodeURIComponent(ROOM)}?version=${version}`)
    assert.deepEqual(Object.keys(roomOnly.body.sessions).sort(), ["s1", "s2"])
    assert.deepEqual((await a.get(`${V3}/room_keys/keys/${encodeURIComponent("!empty:localhost")}?version=${version}`)).body, { sessions: {} })
    assert.equal((await a.get(`${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/nope?version=${version}`)).status, 404)
    assert.equal(((await a.get(`${V3}/room_keys/version`)).body as { count: number }).count, 2)
    const deleted = await a.request<{ count: number }>("DELETE", `${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/s2?version=${version}`)
    assert.equal(deleted.body.count, 1)
  })

  it("writing to an old version is 403 M_WRONG_ROOM_KEYS_VERSION with current_version; a missing or unknown version is an error", async () => {
    const a = await newUser(hs)
    const v1 = (await a.ok<{ version: string }>("POST", `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk1" } })).version
    const v2 = (await a.ok<{ version: string }>("POST", `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk2" } })).version
    assert.notEqual(v1, v2)
    const old = await a.put<MatrixErrorBody & { current_version?: string }>(`${V3}/room_keys/keys?version=${v1}`, { rooms: {} })
    assert.equal(old.status, 403)
    assert.equal(old.body.errcode, "M_WRONG_ROOM_KEYS_VERSION")
    assert.equal(old.body.current_version, v2)
    assert.equal((await a.put<MatrixErrorBody>(`${V3}/room_keys/keys`, { rooms: {} })).body.errcode, "M_MISSING_PARAM")
    assert.equal((await a.put<MatrixErrorBody>(`${V3}/room_keys/keys?version=99`, { rooms: {} })).status, 404)
    assert.equal((await a.put<MatrixErrorBody>(`${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/s?version=${v2}`, { nonsense: true })).body.errcode, "M_BAD_JSON")
    // Deleting the current version makes the older one current again; its number is never reused.
    assert.equal((await a.request("DELETE", `${V3}/room_keys/version/${v2}`)).status, 200)
    assert.equal(((await a.get(`${V3}/room_keys/version`)).body as { version: string }).version, v1)
    const v3 = (await a.ok<{ version: string }>("POST", `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk3" } })).version
    assert.notEqual(v3, v2)
    // Updating auth_data keeps the algorithm.
    assert.equal((await a.put<MatrixErrorBody>(`${V3}/room_keys/version/${v3}`, { algorithm: "other", auth_data: {} })).body.errcode, "M_INVALID_PARAM")
    assert.equal((await a.put(`${V3}/room_keys/version/${v3}`, { algorithm: ALGORITHM, auth_data: { public_key: "pk3", signatures: {} } })).status, 200)
  })

  it("survives a restart (journaled)", async () => {
    const a = await newUser(hs)
    const { version } = await a.ok<{ version: string }>("POST", `${V3}/room_keys/version`, { algorithm: ALGORITHM, auth_data: { public_key: "pk" } })
    await a.ok("PUT", `${V3}/room_keys/keys?version=${version}`, { rooms: { [ROOM]: { sessions: { s1: key(0, 0, true, "kept") } } } })
    await hs.close()
    hs = await startEmbeddedHomeserver({ dataDir: dir })
    const again = new Client(hs.baseUrl, a.session)
    assert.deepEqual((await again.get(`${V3}/room_keys/version`)).body, { algorithm: ALGORITHM, auth_data: { public_key: "pk" }, count: 1, etag: "1", version })
    const got = await again.get<{ session_data: { ciphertext: string } }>(`${V3}/room_keys/keys/${encodeURIComponent(ROOM)}/s1?version=${version}`)
    assert.equal(got.body.session_data.ciphertext, "ct-kept")
  })
})
