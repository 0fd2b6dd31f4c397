/**
 * Conformance: MSC1960 `get_openid` and `openid_credentials`. Given the policy, the OpenID
 * approver and the homeserver, the widget's requests (and its reloads, and the user's answers)
 * produce exactly this conversation: one answer per `get_openid` (`allowed` with the token,
 * `blocked`, or `request`), and after a `request` one `openid_credentials` naming it.
 */
import { HomeserverError, type PolicyRule, type WidgetMessage } from "@widgethost/core"
import type { OpenIdApprovalRequest, OpenIdApprover } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { anyOf, stringContaining } from "../src/matchers.ts"

const TOKEN = { access_token: anyOf(String), token_type: "Bearer", matrix_server_name: "localhost", expires_in: 3600 }
const TOKEN_URL = "/_matrix/client/v3/user/%40alice%3Alocalhost/openid/request_token"
const limitExceeded = new HomeserverError({
  message: "Too many requests",
  http: { status: 429, headers: {}, url: TOKEN_URL, body: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests" } }
})
const approveOpenId: PolicyRule = { capability: "m.openid", decision: "approve" }

/** What happens, in order: a request, the user's answer to the oldest open prompt, a reload. */
type Step = { readonly get: string; readonly data?: unknown } | { readonly decide: boolean } | { readonly reload: true }
/** What the widget sees: the answer to one of its requests, or an `openid_credentials` request's data. */
type Seen = { readonly reply: string; readonly response: unknown } | { readonly credentials: unknown }

interface Given {
  readonly rules?: ReadonlyArray<PolicyRule>
  /** `hold`: each prompt waits for a `decide` step. `rejects`: the approver's promise rejects. */
  readonly approver?: "hold" | "rejects"
  readonly homeserver?: HomeserverError
  readonly origin?: string
}

const get = (id: string, data?: unknown): Step => (data === undefined ? { get: id } : { get: id, data })
const reply = (id: string, response: unknown): Seen => ({ reply: id, response })
const credentials = (id: string, outcome: object): Seen => ({ credentials: { ...outcome, original_request_id: id } })

const table: ReadonlyArray<{ readonly name: string; readonly given: Given; readonly send: ReadonlyArray<Step>; readonly want: ReadonlyArray<Seen>; readonly prompts: number; readonly tokens: number }> = [
  { name: "allowed by policy: the token at once", given: { rules: [approveOpenId] }, send: [get("a")], want: [reply("a", { state: "allowed", ...TOKEN })], prompts: 0, tokens: 1 },
  {
    name: "blocked by policy, even with an approver",
    given: { rules: [{ capability: "m.openid", decision: "deny" }], approver: "hold" },
    send: [get("a")],
    want: [reply("a", { state: "blocked" })],
    prompts: 0,
    tokens: 0
  },
  {
    name: "policy rules are per widget: another widget's rule does not decide",
    given: { rules: [{ widgetId: "other", capability: "m.openid", decision: "approve" }], approver: "hold" },
    send: [get("a"), { decide: false }],
    want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" })],
    prompts: 1,
    tokens: 0
  },
  {
    name: "origin rules: the widget's origin decides",
    given: { rules: [{ origin: "https://*.trusted.example", capability: "m.openid", decision: "approve" }], origin: "https://call.trusted.example" },
    send: [get("a")],
    want: [reply("a", { state: "allowed", ...TOKEN })],
    prompts: 0,
    tokens: 1
  },
  {
    name: "origin rules: another origin is not decided by them",
    given: { rules: [{ origin: "https://*.trusted.example", capability: "m.openid", decision: "approve" }], origin: "https://evil.example" },
    send: [get("a")],
    want: [reply("a", { state: "blocked" })],
    prompts: 0,
    tokens: 0
  },
  { name: "a catch-all capability rule does not hand out identity", given: { rules: [{ capability: "*", decision: "approve" }] }, send: [get("a")], want: [reply("a", { state: "blocked" })], prompts: 0, tokens: 0 },
  {
    name: "request, the approver approves: openid_credentials with original_request_id",
    given: { approver: "hold" },
    send: [get("a"), { decide: true }],
    want: [reply("a", { state: "request" }), credentials("a", { state: "allowed", ...TOKEN })],
    prompts: 1,
    tokens: 1
  },
  { name: "the approver denies: blocked credentials", given: { approver: "hold" }, send: [get("a"), { decide: false }], want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" })], prompts: 1, tokens: 0 },
  { name: "the approver fails: blocked", given: { approver: "rejects" }, send: [get("a")], want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" })], prompts: 1, tokens: 0 },
  { name: "no approver, no rule: blocked at once", given: {}, send: [get("a")], want: [reply("a", { state: "blocked" })], prompts: 0, tokens: 0 },
  {
    name: "an approval is remembered for the document: no second prompt",
    given: { approver: "hold" },
    send: [get("a"), { decide: true }, get("b")],
    want: [reply("a", { state: "request" }), credentials("a", { state: "allowed", ...TOKEN }), reply("b", { state: "allowed", ...TOKEN })],
    prompts: 1,
    tokens: 2
  },
  {
    name: "a refusal is remembered too",
    given: { approver: "hold" },
    send: [get("a"), { decide: false }, get("b")],
    want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" }), reply("b", { state: "blocked" })],
    prompts: 1,
    tokens: 0
  },
  {
    name: "a new document asks again",
    given: { approver: "hold" },
    send: [get("a"), { decide: true }, { reload: true }, get("b"), { decide: true }],
    want: [reply("a", { state: "request" }), credentials("a", { state: "allowed", ...TOKEN }), reply("b", { state: "request" }), credentials("b", { state: "allowed", ...TOKEN })],
    prompts: 2,
    tokens: 2
  },
  {
    name: "a refusal outlives a reload (no re-prompting by reloading)",
    given: { approver: "hold" },
    send: [get("a"), { decide: false }, { reload: true }, get("b")],
    want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" }), reply("b", { state: "blocked" })],
    prompts: 1,
    tokens: 0
  },
  {
    name: "a reload withdraws the open prompt: its late answer reaches nobody",
    given: { approver: "hold" },
    send: [get("a"), { reload: true }, { decide: true }, get("b"), { decide: false }],
    want: [reply("a", { state: "request" }), reply("b", { state: "request" }), credentials("b", { state: "blocked" })],
    prompts: 2,
    tokens: 0
  },
  {
    name: "concurrent requests share the open prompt, each gets its own credentials",
    given: { approver: "hold" },
    send: [get("a"), get("b"), { decide: true }],
    want: [reply("a", { state: "request" }), reply("b", { state: "request" }), credentials("a", { state: "allowed", ...TOKEN }), credentials("b", { state: "allowed", ...TOKEN })],
    prompts: 1,
    tokens: 1
  },
  {
    name: "homeserver error, answered at once: passed through as matrix_api_error",
    given: { rules: [approveOpenId], homeserver: limitExceeded },
    send: [get("a")],
    want: [reply("a", { error: { code: "Homeserver", message: "Too many requests", matrix_api_error: { http_status: 429, http_headers: {}, url: TOKEN_URL, response: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests" } } } })],
    prompts: 0,
    tokens: 1
  },
  {
    name: "homeserver error after a prompt: blocked (openid_credentials has no error form)",
    given: { approver: "hold", homeserver: limitExceeded },
    send: [get("a"), { decide: true }],
    want: [reply("a", { state: "request" }), credentials("a", { state: "blocked" })],
    prompts: 1,
    tokens: 1
  },
  {
    name: "malformed: data fields MSC1960 does not define are refused, nobody asked",
    given: { approver: "hold" },
    send: [get("a", { scope: "everything" })],
    want: [reply("a", { error: { code: "Malformed", message: stringContaining("scope") } })],
    prompts: 0,
    tokens: 0
  },
  { name: "malformed: data that is not an object", given: { rules: [approveOpenId] }, send: [get("a", ["x"])], want: [reply("a", { error: { code: "Malformed", message: stringContaining("data") } })], prompts: 0, tokens: 0 }
]

/** Runs `send` on a ready session; returns what the widget saw of OpenID, prompts and token calls. */
const run = async (given: Given, send: ReadonlyArray<Step>) => {
  const homeserver = makeInMemoryHomeserver()
  if (given.homeserver !== undefined) homeserver.failNext("requestOpenIdToken", given.homeserver, 10)
  const prompts: Array<OpenIdApprovalRequest> = []
  const held: Array<(allowed: boolean) => void> = []
  const openIdApprover: OpenIdApprover = (request) => {
    prompts.push(request)
    if (given.approver === "rejects") return Promise.reject(new Error("the dialog crashed"))
    return new Promise<boolean>((resolve) => held.push(resolve))
  }
  const h = new Harness({
    approver: approveAll,
    homeserver,
    onError: () => {},
    ...(given.origin === undefined ? {} : { origin: given.origin }),
    ...(given.rules === undefined ? {} : { policy: { rules: given.rules } }),
    ...(given.approver === undefined ? {} : { openIdApprover })
  })
  await h.ready([])
  h.take()
  const seen: WidgetMessage[] = []
  for (const step of send) {
    if ("get" in step) h.session.receive({ api: "fromWidget", widgetId: h.widgetId, requestId: step.get, action: "get_openid", data: step.data ?? {} })
    else if ("decide" in step) held.shift()?.(step.decide)
    else {
      h.session.frameLoaded()
      seen.push(...h.ackAll([]))
      await flush()
    }
    await flush()
    seen.push(...h.take())
  }
  const out: Seen[] = []
  for (const m of seen) {
    if (m.api === "fromWidget" && m.action === "get_openid") out.push(reply(m.requestId, (m as { response?: unknown }).response))
    else if (m.api === "toWidget" && m.action === "openid_credentials") out.push({ credentials: m.data })
  }
  return { out, prompts: prompts.length, tokens: homeserver.calls.filter((c) => c.method === "requestOpenIdToken").length, h, prompted: prompts }
}

describe("MSC1960 get_openid", () => {
  it.each(table)("$name", async ({ given, send, want, prompts, tokens }) => {
    const result = await run(given, send)
    expect(result.out).toEqual(want)
    expect(result.prompts).toBe(prompts)
    expect(result.tokens).toBe(tokens)
    expect(result.h.phase).toBe("ready")
  })
})

describe("MSC1960 around the table", () => {
  it("the approver is told the session, the widget and its origin; its signal aborts on a reload and on close", async () => {
    const prompts: Array<OpenIdApprovalRequest> = []
    const h = new Harness({ approver: approveAll, origin: "https://widget.example", openIdApprover: (request) => (prompts.push(request), new Promise<boolean>(() => {})) })
    await h.ready([])
    h.request("get_openid")
    await flush()
    expect(prompts).toHaveLength(1)
    expect(prompts[0]).toMatchObject({ sessionId: h.session.sessionId, widgetId: "w1", origin: "https://widget.example" })
    expect(prompts[0]!.signal.aborted).toBe(false)
    h.session.frameLoaded()
    h.ackAll([])
    await flush()
    expect(prompts[0]!.signal.aborted).toBe(true)
    h.ackAll([])
    await flush()
    h.request("get_openid")
    await flush()
    expect(prompts).toHaveLength(2)
    h.session.close()
    await flush()
    expect(prompts[1]!.signal.aborted).toBe(true)
  })

  it("before the session is ready: refused, never silent, nobody asked", async () => {
    const prompts: unknown[] = []
    const h = new Harness({ approver: approveAll, openIdApprover: async (request) => (prompts.push(request), true) })
    expect(h.responseTo(h.request("get_openid"))).toMatchObject({ error: { code: "WrongPhase" } })
    await flush()
    expect(prompts).toEqual([])
  })

  it("an approver that resolves with anything but true refuses", async () => {
    const h = new Harness({ approver: approveAll, openIdApprover: async () => "yes" as unknown as boolean })
    await h.ready([])
    h.take()
    h.request("get_openid", {}, "a")
    await flush()
    expect(Harness.requests(h.take()).map((m) => m.data)).toEqual([{ state: "blocked", original_request_id: "a" }])
  })

  it("openid_credentials never acknowledged: timed out and reported, the session carries on", async () => {
    const reports: Array<{ _tag: string }> = []
    const h = new Harness({ approver: approveAll, openIdApprover: async () => true, onReport: (_s, _w, report) => reports.push(report) })
    await h.ready([])
    h.take()
    h.request("get_openid", {}, "a")
    await flush()
    const [sent] = Harness.requests(h.take())
    expect(sent?.action).toBe("openid_credentials")
    await h.advance(15_000)
    expect(reports).toContainEqual({ _tag: "RequestTimedOut", action: "openid_credentials", requestId: sent!.requestId })
    // A late acknowledgement is matched to nothing: counted, dropped, no crash.
    h.respond(sent!, {})
    h.request("get_openid", {}, "b")
    await flush()
    expect(h.responseTo("b")).toEqual({ state: "allowed", ...TOKEN })
    expect(h.session.info()).toMatchObject({ phase: "ready", counters: { unmatched: 1, timedOut: 1 } })
  })

  it("an acknowledgement, or an error answer, settles openid_credentials", async () => {
    const reports: Array<{ _tag: string }> = []
    const h = new Harness({ approver: approveAll, openIdApprover: async () => true, onReport: (_s, _w, report) => reports.push(report) })
    await h.ready([])
    h.take()
    h.request("get_openid", {}, "a")
    h.request("get_openid", {}, "b")
    await flush()
    const [first, second] = Harness.requests(h.take())
    h.respond(first!, {})
    h.respond(second!, { error: { message: "what is this?" } })
    await h.advance(15_000)
    expect(reports).toContainEqual({ _tag: "WidgetError", action: "openid_credentials", message: "what is this?" })
    expect(reports.filter((r) => r._tag === "RequestTimedOut")).toEqual([])
    expect(h.session.info().counters).toMatchObject({ unmatched: 0, timedOut: 0 })
  })

  it("requests waiting for one prompt are bounded: past the bound, an error", async () => {
    const h = new Harness({ approver: approveAll, limits: { maxPendingCalls: 2 }, openIdApprover: () => new Promise<boolean>(() => {}) })
    await h.ready([])
    for (const id of ["a", "b", "c"]) h.request("get_openid", {}, id)
    await flush()
    expect(["a", "b", "c"].map((id) => h.responseTo(id))).toEqual([{ state: "request" }, { state: "request" }, { error: { code: "TooManyPending", message: stringContaining("limit 2") } }])
  })

  it("every answer is reported with who decided it (MSC1960: tell the user about remembered answers)", async () => {
    const reports: Array<{ _tag: string }> = []
    const h = new Harness({ approver: approveAll, openIdApprover: async () => true, onReport: (_s, _w, report) => reports.push(report) })
    await h.ready([])
    h.request("get_openid")
    await flush()
    h.request("get_openid")
    await flush()
    expect(reports.filter((r) => r._tag === "OpenIdAnswered")).toEqual([
      { _tag: "OpenIdAnswered", state: "allowed", by: "approver" },
      { _tag: "OpenIdAnswered", state: "allowed", by: "remembered" }
    ])
  })

  it("m.openid is a policy name, not a capability: asked for as one, it is denied", async () => {
    const h = new Harness({ approver: approveAll, policy: { rules: [approveOpenId] } })
    await h.ready(["m.openid"])
    expect(h.session.info()).toMatchObject({ approved: [], denied: ["m.openid"] })
  })
})
