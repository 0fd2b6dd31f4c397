/**
 * The admin API's actions on the service: creating users, the account, blocking a widget,
 * closing a session (each route only where the model can serve it).
 */
import { assert, describe, it, vi } from "vitest"
import { ROOM } from "@widgethost/testing"
import { call, errorCode, path, useAdminCleanup, withPrompt, world } from "./admin.test-kit.ts"

useAdminCleanup()

describe("admin API: creating users", () => {
  it("POST /api/users answers 201 with the account, keeps the homeserver's errcode on a refusal, 400 for a bad body", async () => {
    const asked: Array<unknown> = []
    const w = await world({
      createUser: (request) => {
        asked.push(request)
        return Promise.resolve(
          request.username === "taken"
            ? { _tag: "Refused", code: "Conflict", errcode: "M_USER_IN_USE", message: "User ID already taken." }
            : { _tag: "Created", user: { user_id: `@${request.username}:hs`, access_token: "syt_x", device_id: "DEV", password: "generated" } }
        )
      }
    })
    const created = await call(w.server, "POST", "/api/users", { body: { username: "bob" } })
    assert.equal(created.status, 201)
    assert.deepEqual(created.json, { user_id: "@bob:hs", access_token: "syt_x", device_id: "DEV", password: "generated" })
    const taken = await call(w.server, "POST", "/api/users", { body: { username: "taken", password: "pw" } })
    assert.equal(taken.status, 409)
    assert.deepEqual(taken.json, { error: { code: "Conflict", message: "User ID already taken.", errcode: "M_USER_IN_USE" } })
    for (const body of [[], { username: "" }, { username: 7 }, { username: "x", password: "" }, { username: "x", admin: true }, "{not json"]) {
      const res = await call(w.server, "POST", "/api/users", { body })
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(errorCode(res.json), "BadRequest")
    }
    assert.equal((await call(w.server, "POST", "/api/users", { token: null, body: { username: "eve" } })).status, 401)
    assert.equal((await call(w.server, "GET", "/api/users")).status, 405)
    assert.deepEqual(asked, [{ username: "bob" }, { username: "taken", password: "pw" }], "only valid, authorised requests reach the homeserver")
  })

  it("has no /api/users without a homeserver of the service's own", async () => {
    const w = await world()
    const res = await call(w.server, "POST", "/api/users", { body: { username: "bob" } })
    assert.equal(res.status, 404)
    assert.equal(errorCode(res.json), "NotFound")
  })
})

describe("admin API: the account", () => {
  it("GET /api/account answers the model's account, null without one; 401 without the token", async () => {
    const account = {
      userId: "@widgethost:localhost",
      deviceId: "DEV",
      homeserver: "http://127.0.0.1:1",
      demo: [{ id: "chat", name: "Demo chat", url: "http://127.0.0.1:2/demo/chat.html#ws=x" }],
      addUserCommand: "npm run widgethost -- users add NAME",
      registrationToken: "reg-token"
    }
    const w = await world({ account: () => account })
    assert.deepEqual((await call(w.server, "GET", "/api/account")).json, { account })
    assert.equal((await call(w.server, "GET", "/api/account", { token: null })).status, 401)
    assert.equal((await call(w.server, "POST", "/api/account")).status, 405)
    const bare = await world()
    assert.deepEqual((await call(bare.server, "GET", "/api/account")).json, { account: null })
  })
})

describe("admin API: blocking a widget", () => {
  it("POST /api/widgets/block blocks a hosted widget; 404 for an unknown one, 400 for a bad body, 401 without the token, nothing blocked by those", async () => {
    const asked: Array<unknown> = []
    const w = await world({ blockWidget: (ref) => (asked.push(ref), ref.id === "w1") })
    const blocked = await call(w.server, "POST", "/api/widgets/block", { body: { id: "w1", roomId: ROOM } })
    assert.equal(blocked.status, 200)
    assert.deepEqual(blocked.json, { blocked: { id: "w1", roomId: ROOM } })
    const unknown = await call(w.server, "POST", "/api/widgets/block", { body: { id: "w9" } })
    assert.equal(unknown.status, 404)
    assert.equal(errorCode(unknown.json), "NotFound")
    for (const body of [[], { id: "" }, { id: 7 }, { id: "w1", roomId: "" }, { id: "w1", url: "x" }, "{not json"]) {
      const res = await call(w.server, "POST", "/api/widgets/block", { body })
      assert.equal(res.status, 400, JSON.stringify(body))
    }
    assert.equal((await call(w.server, "POST", "/api/widgets/block", { token: null, body: { id: "w1" } })).status, 401)
    assert.equal((await call(w.server, "GET", "/api/widgets/block")).status, 405)
    assert.deepEqual(asked, [{ id: "w1", roomId: ROOM }, { id: "w9" }], "only valid, authorised requests reach the widget host")
  })

  it("has no block route when the model cannot block", async () => {
    const w = await world()
    assert.equal((await call(w.server, "POST", "/api/widgets/block", { body: { id: "w1" } })).status, 404)
  })
})

describe("admin API: closing a session", () => {
  it("POST /api/sessions/{id}/close closes it, withdraws its prompt; again is 404", async () => {
    const w = await withPrompt()
    const res = await call(w.server, "POST", `${path("api", "sessions", w.sessionId)}/close`)
    assert.equal(res.status, 200)
    assert.deepEqual(res.json, { closed: true })
    await vi.waitFor(() => assert.deepEqual(w.engine.sessions(), []))
    assert.equal(w.approvals.size, 0, "the prompt was withdrawn")
    assert.deepEqual((await call(w.server, "GET", "/api/sessions")).json, { sessions: [] })
    const again = await call(w.server, "POST", `${path("api", "sessions", w.sessionId)}/close`)
    assert.equal(again.status, 404)
    // the log outlives the session until the service forgets it
    assert.equal((await call(w.server, "GET", `${path("api", "sessions", w.sessionId)}/log`)).status, 200)
  })
})
