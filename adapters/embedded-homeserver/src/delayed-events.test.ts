import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it } from "vitest"
import type { EmbeddedHomeserver, EmbeddedHomeserverOptions } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import type { ClientEvent, MatrixErrorBody } from "./testing.ts"
import { Client, newUser, room } from "./testing.ts"

const UNSTABLE = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"
const DELAY = "org.matrix.msc4140.delay"

let hs: EmbeddedHomeserver | undefined
let dir: string | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  dir = undefined
})
const start = async (options: EmbeddedHomeserverOptions = {}) => (hs = await startEmbeddedHomeserver(options))

interface Listing {
  readonly scheduled: ReadonlyArray<{ delay_id: string; room_id: string; type: string; state_key?: string; delay: number; running_since: number; content: object }>
  readonly finalised: ReadonlyArray<{ delayed_event: { delay_id: string }; outcome: string; reason: string; event_id?: string; error?: MatrixErrorBody }>
}

const timeline = async (c: Client, roomId: string) =>
  (await c.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=f&limit=100`)).body.chunk

const eventually = async (check: () => Promise<boolean>, ms = 5000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail("condition not met in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("delayed events (MSC4140)", () => {
  it("schedules a message, lists it, and sends it when the delay elapses", async () => {
    const s = await start()
    const a = await newUser(s)
    const roomId = await a.createRoom()
    const res = await a.put<{ delay_id: string }>(`${room(roomId)}/send/m.room.message/d1?${DELAY}=1500`, { body: "later" })
    assert.equal(res.status, 200)
    assert.isString(res.body.delay_id)
    assert.notProperty(res.body, "event_id")
    const retried = await a.put<{ delay_id: string }>(`${room(roomId)}/send/m.room.message/d1?${DELAY}=1500`, { body: "later" })
    assert.equal(retried.body.delay_id, res.body.delay_id)
    const listing = (await a.get<Listing>(UNSTABLE)).body
    assert.deepEqual(
      listing.scheduled.map((d) => [d.delay_id, d.room_id, d.type, d.delay, d.content]),
      [[res.body.delay_id, roomId, "m.room.message", 1500, { body: "later" }]]
    )
    assert.isFalse((await timeline(a, roomId)).some((e) => e.content.body === "later"))
    // 1.5 s: long enough that the listing above runs before it fires on a loaded CI machine.
    await eventually(async () => (await timeline(a, roomId)).some((e) => e.content.body === "later"), 10_000)
    const after = (await a.get<Listing>(UNSTABLE)).body
    assert.deepEqual(after.scheduled, [])
    const [sent] = after.finalised
    assert.isDefined(sent)
    assert.equal(sent.outcome, "send")
    assert.equal(sent.reason, "delay")
    assert.isString(sent.event_id)
  })

  it("cancel, restart and send actions, with and without the action in the path", async () => {
    let now = 1_000_000
    const s = await start({ now: () => now })
    const a = await newUser(s)
    const roomId = await a.createRoom()
    const schedule = async (txn: string, path = `send/m.room.message/${txn}`) =>
      (await a.put<{ delay_id: string }>(`${room(roomId)}/${path}?${DELAY}=60000`, { body: txn })).body.delay_id
    const cancelled = await schedule("c")
    const restarted = await schedule("r")
    const sent = await schedule("s")
    assert.equal((await a.post(`${UNSTABLE}/${cancelled}`, { action: "cancel" })).status, 200)
    now += 5000
    assert.equal((await a.post(`${UNSTABLE}/${restarted}/restart`)).status, 200)
    assert.equal((await a.post(`/_matrix/client/v1/delayed_events/${sent}/send`)).status, 200)
    // `send` is safe to retry; a cancelled or unknown one is gone.
    assert.equal((await a.post(`${UNSTABLE}/${sent}`, { action: "send" })).status, 200)
    const gone = await a.post<MatrixErrorBody>(`${UNSTABLE}/${cancelled}`, { action: "send" })
    assert.equal(gone.status, 404)
    assert.equal(gone.body.errcode, "M_NOT_FOUND")
    assert.equal((await a.post(`${UNSTABLE}/nope`, { action: "cancel" })).status, 404)
    assert.equal((await a.post(`${UNSTABLE}/${restarted}`, { action: "explode" })).status, 400)

    const bodies = (await timeline(a, roomId)).filter((e) => e.type === "m.room.message").map((e) => e.content.body)
    assert.deepEqual(bodies, ["s"])
    const listing = (await a.get<Listing>(UNSTABLE)).body
    assert.deepEqual(
      listing.scheduled.map((d) => [d.delay_id, d.running_since]),
      [[restarted, 1_005_000]]
    )
    const scheduledOnly = (await a.get<Listing>(`${UNSTABLE}?status=scheduled`)).body
    assert.notProperty(scheduledOnly, "finalised")
    assert.equal((await a.get(`${UNSTABLE}?status=bogus`)).status, 400)
    assert.sameMembers(
      listing.finalised.map((f) => `${f.delayed_event.delay_id}:${f.outcome}:${f.reason}`),
      [`${cancelled}:cancel:action`, `${sent}:send:action`]
    )
  })

  it("delays state events, judges power at send time, and refuses over-long delays", async () => {
    const s = await start()
    const a = await newUser(s)
    const b = await newUser(s)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const stateKey = encodeURIComponent(`${b.userId}_DEVICE`)
    // b may not set this state (50 needed), but scheduling is allowed: power is checked when sent.
    const scheduled = await b.put<{ delay_id: string }>(`${room(roomId)}/state/org.example.call.member/${stateKey}?${DELAY}=60000`, { joined: true })
    assert.equal(scheduled.status, 200)
    const failed = await b.post<MatrixErrorBody>(`${UNSTABLE}/${scheduled.body.delay_id}/send`)
    assert.equal(failed.status, 403)
    const listing = (await b.get<Listing>(UNSTABLE)).body
    const [failedSend] = listing.finalised
    assert.isDefined(failedSend)
    assert.equal(failedSend.reason, "error")
    assert.equal(failedSend.error?.errcode, "M_FORBIDDEN")

    const own = await a.put<{ delay_id: string }>(`${room(roomId)}/state/org.example.call.member/${encodeURIComponent(a.userId)}?${DELAY}=60000`, {})
    await a.post(`${UNSTABLE}/${own.body.delay_id}/send`)
    assert.deepEqual((await a.get(`${room(roomId)}/state/org.example.call.member/${encodeURIComponent(a.userId)}`)).body, {})

    const tooLong = await a.put<MatrixErrorBody>(`${room(roomId)}/send/m.room.message/x?${DELAY}=${30 * 24 * 3600 * 1000}`, { body: "x" })
    assert.equal(tooLong.status, 400)
    assert.equal(tooLong.body["org.matrix.msc4140.errcode"], "M_MAX_DELAY_EXCEEDED")
  })

  it("management needs an access token, and only the owner may act: others get M_NOT_FOUND", async () => {
    const s = await start()
    const a = await newUser(s)
    const b = await newUser(s)
    const roomId = await a.createRoom({ preset: "public_chat" })
    await b.join(roomId)
    const delayId = (await a.put<{ delay_id: string }>(`${room(roomId)}/send/m.room.message/w?${DELAY}=60000`, { body: "will" })).body.delay_id
    const paths = [
      { path: `${UNSTABLE}/${delayId}`, body: { action: "send" } },
      { path: `${UNSTABLE}/${delayId}/cancel`, body: {} },
      { path: `/_matrix/client/v1/delayed_events/${delayId}/restart`, body: {} }
    ]
    const anon = new Client(s.baseUrl)
    for (const { path, body } of paths) {
      const missing = await anon.post<MatrixErrorBody>(path, body)
      assert.equal(missing.status, 401, path)
      assert.equal(missing.body.errcode, "M_MISSING_TOKEN", path)
      const unknown = await anon.request<MatrixErrorBody>("POST", path, { body, token: "syt_not_a_token" })
      assert.equal(unknown.status, 401, path)
      assert.equal(unknown.body.errcode, "M_UNKNOWN_TOKEN", path)
      // Someone else's delay reads exactly as one that does not exist.
      const foreign = await b.post<MatrixErrorBody>(path, body)
      const absent = await b.post<MatrixErrorBody>(path.replace(delayId, "syd_doesnotexist"), body)
      assert.equal(foreign.status, 404, path)
      assert.deepEqual(foreign.body, absent.body, path)
      assert.equal(foreign.body.errcode, "M_NOT_FOUND", path)
    }
    for (const listing of ["", "/_matrix/client/v1/delayed_events"]) {
      const res = await anon.get<MatrixErrorBody>(listing === "" ? UNSTABLE : listing)
      assert.equal(res.status, 401)
      assert.equal(res.body.errcode, "M_MISSING_TOKEN")
    }
    // None of that touched it: still scheduled with its first start, nothing sent, b lists nothing.
    const mine = (await a.get<Listing>(UNSTABLE)).body
    assert.deepEqual(mine.scheduled.map((d) => d.delay_id), [delayId])
    assert.deepEqual(mine.finalised, [])
    assert.deepEqual((await b.get<Listing>(UNSTABLE)).body.scheduled, [])
    assert.isFalse((await timeline(a, roomId)).some((e) => e.content.body === "will"))
    assert.equal((await a.post(`${UNSTABLE}/${delayId}/cancel`)).status, 200)
  })

  it("survives a restart and fires afterwards", async () => {
    dir = await mkdtemp(join(tmpdir(), "widgethost-hs-delayed-"))
    let s = await start({ dataDir: dir })
    const session = await s.ensureUser("alice", "pw")
    const a = new Client(s.baseUrl, session)
    const roomId = await a.createRoom()
    await a.put(`${room(roomId)}/send/m.room.message/later?${DELAY}=400`, { body: "after restart" })
    await s.close()
    s = await start({ dataDir: dir })
    const again = new Client(s.baseUrl, session)
    assert.lengthOf((await again.get<Listing>(UNSTABLE)).body.scheduled, 1)
    await eventually(async () => (await timeline(again, roomId)).some((e) => e.content.body === "after restart"))
  })

  describe("the revision served", () => {
    const versions = async (s: EmbeddedHomeserver) => ((await (await fetch(`${s.baseUrl}/_matrix/client/versions`)).json()) as { unstable_features: Record<string, boolean> }).unstable_features
    const ENDPOINT = (prefix: string, roomId: string, type: string, txn: string) => `${prefix}/rooms/${encodeURIComponent(roomId)}/delayed_event/${type}/${txn}`
    const STABLE_PREFIX = "/_matrix/client/v3"
    const UNSTABLE_PREFIX = "/_matrix/client/unstable/org.matrix.msc4140"

    it("query-parameter (the default): org.matrix.msc4140 only, and no delayed_event endpoint", async () => {
      const s = await start()
      const features = await versions(s)
      assert.isTrue(features["org.matrix.msc4140"])
      assert.notProperty(features, "org.matrix.msc4140.stable")
      const a = await newUser(s)
      const roomId = await a.createRoom()
      for (const prefix of [STABLE_PREFIX, UNSTABLE_PREFIX]) {
        const res = await a.put<MatrixErrorBody>(ENDPOINT(prefix, roomId, "m.room.message", `t${prefix.length}`), { delay_ms: 1000, content: { body: "x" } })
        assert.deepEqual([res.status, res.body.errcode], [404, "M_UNRECOGNIZED"], prefix)
      }
    })

    for (const shape of ["endpoint", "endpoint-stable"] as const) {
      it(`${shape}: schedules at the endpoint (state too), ignores the query parameter, takes the action in the path only`, async () => {
        const s = await start({ delayedEvents: shape })
        assert.equal((await versions(s))["org.matrix.msc4140.stable"], shape === "endpoint-stable" ? true : undefined)
        const a = await newUser(s)
        const roomId = await a.createRoom()
        const prefixes = shape === "endpoint-stable" ? [STABLE_PREFIX, UNSTABLE_PREFIX] : [UNSTABLE_PREFIX]
        if (shape === "endpoint") {
          const stable = await a.put<MatrixErrorBody>(ENDPOINT(STABLE_PREFIX, roomId, "m.room.message", "s0"), { delay_ms: 1000, content: { body: "x" } })
          assert.deepEqual([stable.status, stable.body.errcode], [404, "M_UNRECOGNIZED"])
        }
        for (const prefix of prefixes) {
          const message = await a.put<{ delay_id: string }>(ENDPOINT(prefix, roomId, "m.room.message", `m${prefix.length}`), { delay_ms: 60_000, content: { body: `later ${prefix}` } })
          assert.equal(message.status, 200)
          const retried = await a.put<{ delay_id: string }>(ENDPOINT(prefix, roomId, "m.room.message", `m${prefix.length}`), { delay_ms: 60_000, content: { body: `later ${prefix}` } })
          assert.equal(retried.body.delay_id, message.body.delay_id)
          const state = await a.put<{ delay_id: string }>(ENDPOINT(prefix, roomId, "m.room.topic", `t${prefix.length}`), { delay_ms: 60_000, state_key: "", content: { topic: prefix } })
          const listing = (await a.get<Listing>(UNSTABLE)).body.scheduled.filter((d) => d.delay_id === state.body.delay_id)
          assert.deepEqual(listing.map((d) => [d.type, d.state_key, d.content]), [["m.room.topic", "", { topic: prefix }]])
          const bad = await a.put<MatrixErrorBody>(ENDPOINT(prefix, roomId, "m.room.message", `b${prefix.length}`), { content: {} })
          assert.deepEqual([bad.status, bad.body.errcode], [400, "M_BAD_JSON"])
          // The action goes in the path; Synapse's action-in-body form is not this revision.
          const inBody = await a.post<MatrixErrorBody>(`${UNSTABLE}/${message.body.delay_id}`, { action: "send" })
          assert.deepEqual([inBody.status, inBody.body.errcode], [404, "M_UNRECOGNIZED"])
          assert.equal((await a.post(`${UNSTABLE}/${message.body.delay_id}/send`)).status, 200)
          assert.isTrue((await timeline(a, roomId)).some((e) => e.content.body === `later ${prefix}`))
        }
        // The 2025 query parameter means nothing here: the event goes out at once, as on any server without that revision.
        const immediate = await a.put<{ event_id?: string; delay_id?: string }>(`${room(roomId)}/send/m.room.message/q1?${DELAY}=60000`, { body: "at once" })
        assert.isString(immediate.body.event_id)
        assert.notProperty(immediate.body, "delay_id")
      })
    }
  })
})
