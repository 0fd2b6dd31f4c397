/**
 * MSC1960 end to end over real HTTP: a widget on the real engine, the HTTP homeserver port, the
 * embedded homeserver. The token the widget gets from `get_openid` (at once, or after the prompt
 * in `openid_credentials`) is what the widget's backend checks at the token's server, and there
 * it names the widget's user; an expired or made-up token is refused there.
 */
import { afterEach, describe, expect, it } from "vitest"
import { type PolicyRule, type WidgetRequest } from "@widgethost/core"
import { createEngine, type OpenIdApprover } from "@widgethost/engine"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { RealtimeWidget, roomWidget, waitUntil } from "../src/engine-fixture.ts"
import { approveAll } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"

const cleanups: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const approveOpenId: PolicyRule = { capability: "m.openid", decision: "approve" }

/** A ready widget of Alice's on the embedded homeserver (whose clock is `now`). */
const setUp = async (options: { readonly rules?: ReadonlyArray<PolicyRule>; readonly openIdApprover?: OpenIdApprover; readonly now?: () => number }) => {
  const hs: EmbeddedHomeserver = await startEmbeddedHomeserver(options.now === undefined ? {} : { now: options.now })
  cleanups.push(() => hs.close())
  await hs.ensureUser("alice", "alice-secret")
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" } })
  cleanups.push(() => port.stop())
  const engine = createEngine({
    homeserver: fromEffectPort(port),
    approver: approveAll,
    policy: { rules: options.rules ?? [] },
    ...(options.openIdApprover === undefined ? {} : { openIdApprover: options.openIdApprover })
  })
  cleanups.push(() => engine.stop())
  const widget = new RealtimeWidget({ engine, widget: roomWidget("openid-widget", "!nowhere:localhost"), capabilities: [] })
  await widget.ready()
  /** What the widget's backend does with a token: ask the token's server whose it is. */
  const userinfo = async (token: string) => {
    const res = await fetch(`${hs.baseUrl}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token)}`)
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  return { hs, widget, userinfo }
}

describe("MSC1960 against the embedded homeserver", () => {
  it("allowed by policy: the token validates at userinfo and names the widget's user", async () => {
    const { hs, widget, userinfo } = await setUp({ rules: [approveOpenId] })
    const answer = await widget.call("get_openid")
    expect(answer).toMatchObject({ state: "allowed", token_type: "Bearer", matrix_server_name: hs.serverName, expires_in: 3600 })
    expect(await userinfo(answer.access_token as string)).toEqual({ status: 200, body: { sub: "@alice:localhost" } })
    expect(await userinfo("made-up")).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN" } })
  })

  it("after the prompt: openid_credentials carries a token that validates", async () => {
    const { widget, userinfo } = await setUp({ openIdApprover: async () => true })
    expect(await widget.call("get_openid")).toEqual({ state: "request" })
    const requestId = widget.received.find((m) => m.api === "fromWidget" && m.action === "get_openid")!.requestId
    await waitUntil("openid_credentials", () => widget.toWidget("openid_credentials").length > 0)
    const [credentials] = widget.toWidget("openid_credentials") as Array<WidgetRequest & { data: Record<string, unknown> }>
    expect(credentials!.data).toMatchObject({ state: "allowed", original_request_id: requestId })
    expect(await userinfo(credentials!.data.access_token as string)).toEqual({ status: 200, body: { sub: "@alice:localhost" } })
  })

  it("an expired token is refused by the server's clock", async () => {
    let now = Date.now()
    const { widget, userinfo } = await setUp({ rules: [approveOpenId], now: () => now })
    const answer = await widget.call("get_openid")
    now += (answer.expires_in as number) * 1000
    expect(await userinfo(answer.access_token as string)).toMatchObject({ status: 401, body: { errcode: "M_UNKNOWN_TOKEN" } })
  })

  it("the server's refusal reaches the widget as matrix_api_error", async () => {
    const { hs, widget } = await setUp({ rules: [approveOpenId] })
    hs.injectFault({ path: /\/openid\/request_token$/, method: "POST", times: 1, kind: { status: 403, body: { errcode: "M_FORBIDDEN", error: "No tokens today" } } })
    expect(await widget.request("get_openid")).toMatchObject({
      error: { code: "Homeserver", matrix_api_error: { http_status: 403, response: { errcode: "M_FORBIDDEN", error: "No tokens today" } } }
    })
  })
})
