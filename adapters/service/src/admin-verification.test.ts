/**
 * The verification routes' HTTP mapping (given the verification's answer, send a request, want
 * status and body). The protocol itself runs against a real peer in
 * test/interop/service-sas-verification.test.ts; here the verification is a recorder that answers
 * what each row says, so every status the routes can give is reached.
 */
import { afterEach, describe, expect, it } from "vitest"
import { createEngine } from "@widgethost/engine"
import { makeInMemoryHomeserver, ROOM } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"
import type { VerificationAnswer, VerificationView } from "@widgethost/homeserver-client"
import { type AdminServer, engineAdminModel, startAdminServer } from "./admin.ts"
import type { AdminVerification } from "./admin-verification.ts"
import { ApprovalQueue } from "./approvals.ts"
import { MessageLog } from "./message-log.ts"

const TOKEN = "verification-token-0123456789"
const FLOW: VerificationView = { flowId: "flow#1", direction: "incoming", otherDeviceId: "PEER", phase: "requested", emoji: null, cancelled: null }

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** A recorder: every call is noted, and answered with `answer`. */
const recorder = (answer: VerificationAnswer) => {
  const calls: Array<string> = []
  const verification: AdminVerification = {
    status: () => ({ deviceSigned: false, flow: FLOW }),
    request: () => (calls.push("request"), Promise.resolve(answer)),
    accept: (id) => (calls.push(`accept ${id}`), Promise.resolve(answer)),
    confirm: (id) => (calls.push(`confirm ${id}`), Promise.resolve(answer)),
    cancel: (id) => (calls.push(`cancel ${id}`), Promise.resolve(answer))
  }
  return { verification, calls }
}

const serverWith = async (verification: AdminVerification | undefined): Promise<AdminServer> => {
  const engine = createEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver({ rooms: [ROOM] })), approver: new ApprovalQueue().approver })
  cleanups.push(() => engine.stop())
  const model = engineAdminModel({ engine, widgets: () => [], approvals: new ApprovalQueue(), messages: new MessageLog(), ...(verification === undefined ? {} : { verification }) })
  const server = await startAdminServer({ token: TOKEN, model })
  cleanups.push(() => server.close())
  return server
}

/** `token` null: no Authorization header. */
const call = async (server: AdminServer, method: string, path: string, token: string | null = TOKEN) => {
  const res = await fetch(`${server.url}${path}`, { method, headers: token === null ? {} : { Authorization: `Bearer ${token}` } })
  return { status: res.status, body: (await res.json()) as unknown, allow: res.headers.get("allow") }
}

describe("admin API: verification routes", () => {
  const ok: VerificationAnswer = { _tag: "Ok", verification: { ...FLOW, phase: "ready" } }
  const table: ReadonlyArray<readonly [string, VerificationAnswer, string, string, number, unknown, string | undefined]> = [
    ["Verify asks the other devices", ok, "POST", "/api/verification", 200, { flow: ok.verification }, "request"],
    ["accept, the flow id percent-decoded", ok, "POST", "/api/verification/flow%231/accept", 200, { flow: ok.verification }, "accept flow#1"],
    ["confirm", ok, "POST", "/api/verification/f/confirm", 200, { flow: ok.verification }, "confirm f"],
    ["cancel", ok, "POST", "/api/verification/f/cancel", 200, { flow: ok.verification }, "cancel f"],
    ["not the flow in hand: 404", { _tag: "NotFound", message: "no verification" }, "POST", "/api/verification/f/confirm", 404, { error: { code: "NotFound", message: "no verification" } }, "confirm f"],
    ["not now: 409", { _tag: "Refused", message: "no emoji yet" }, "POST", "/api/verification/f/confirm", 409, { error: { code: "Conflict", message: "no emoji yet" } }, "confirm f"],
    ["one running: 409", { _tag: "Refused", message: "already" }, "POST", "/api/verification", 409, { error: { code: "Conflict", message: "already" } }, "request"],
    ["no such action: 404, nothing called", ok, "POST", "/api/verification/f/explode", 404, { error: { code: "NotFound", message: "no route /api/verification/f/explode" } }, undefined],
    ["malformed flow id: 400, nothing called", ok, "POST", "/api/verification/%E0%A4%A/accept", 400, { error: { code: "BadRequest", message: "malformed percent-encoding in the path" } }, undefined],
    ["no token: 401, nothing called", ok, "POST", "/api/verification/f/cancel", 401, undefined, undefined]
  ]
  it.each(table)("%s", async (_name, answer, method, path, status, body, called) => {
    const { verification, calls } = recorder(answer)
    const server = await serverWith(verification)
    const got = await call(server, method, path, status === 401 ? null : TOKEN)
    expect(got.status).toBe(status)
    if (body !== undefined) expect(got.body).toEqual(body)
    expect(calls).toEqual(called === undefined ? [] : [called])
  })

  it("GET shows the status; an action route has POST only (405 with Allow)", async () => {
    const server = await serverWith(recorder({ _tag: "Ok", verification: FLOW }).verification)
    expect(await call(server, "GET", "/api/verification")).toMatchObject({ status: 200, body: { verification: { deviceSigned: false, flow: FLOW } } })
    expect(await call(server, "GET", "/api/verification/f/confirm")).toMatchObject({ status: 405, allow: "POST" })
  })

  it("without verification (no homeserver): GET says null, nothing can be started", async () => {
    const server = await serverWith(undefined)
    expect(await call(server, "GET", "/api/verification")).toMatchObject({ status: 200, body: { verification: null } })
    expect(await call(server, "POST", "/api/verification")).toMatchObject({ status: 405, allow: "GET" })
    expect(await call(server, "POST", "/api/verification/f/accept")).toMatchObject({ status: 404 })
  })
})
