/**
 * Interop: matrix-widget-api's own widget side (`WidgetApi.requestOpenIDConnectToken`) against
 * our engine, through our postMessage transport between fake windows that clone and dispatch as
 * a browser does. It reads `allowed` and `blocked` at once, and after `request` it waits for the
 * `openid_credentials` whose `original_request_id` is its request and acknowledges it: the
 * engine must be left with nothing unanswered.
 */
import { type PolicyRule, type WidgetDefinition } from "@widgethost/core"
import { createEngine, type OpenIdApprover } from "@widgethost/engine"
import { WidgetApi } from "matrix-widget-api"
import { afterEach, describe, expect, it } from "vitest"
import { attachPostMessageTransport } from "@widgethost/post-message"
import { asGlobalWindow, FakeFrame, FakeWindow } from "../bench/fake-window.ts"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { approveAll } from "@widgethost/testing"
import { waitUntil } from "../src/engine-fixture.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const HOST_ORIGIN = "https://client.example.org"
const WIDGET_ORIGIN = "https://widget.example.org"
const WIDGET: WidgetDefinition = {
  id: "openid-widget",
  kind: "room",
  roomId: "!room:localhost",
  type: "m.custom",
  url: `${WIDGET_ORIGIN}/index.html`,
  data: {},
  waitForIframeLoad: true,
  transports: ["m.postmessage"]
}

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup()
})

/** A ready widget whose page runs matrix-widget-api's `WidgetApi`. */
const setUp = async (options: { readonly rules?: ReadonlyArray<PolicyRule>; readonly openIdApprover?: OpenIdApprover }) => {
  const engine = createEngine({
    homeserver: fromEffectPort(makeInMemoryHomeserver()),
    approver: approveAll,
    policy: { rules: options.rules ?? [] },
    ...(options.openIdApprover === undefined ? {} : { openIdApprover: options.openIdApprover })
  })
  const host = new FakeWindow(HOST_ORIGIN)
  /** Everything the widget posted to the host page (every listener on a window hears every message). */
  const fromWidget: Array<Record<string, unknown>> = []
  host.addEventListener("message", (event: MessageEvent) => void fromWidget.push(event.data as Record<string, unknown>))
  const page = new FakeWindow(WIDGET_ORIGIN, host)
  const parent = page.parentProxy()
  const frame = new FakeFrame(page)
  const api = asGlobalWindow(page, parent, () => new WidgetApi(WIDGET.id, HOST_ORIGIN))
  const ready = new Promise<void>((resolve) => api.once("ready", () => resolve()))
  const transport = attachPostMessageTransport({
    iframe: frame as unknown as HTMLIFrameElement,
    widgetUrl: WIDGET.url,
    window: host as unknown as Window,
    open: (send) => engine.openSession({ widget: WIDGET, send, origin: WIDGET_ORIGIN })
  })
  cleanups.push(() => {
    transport.detach()
    asGlobalWindow(page, parent, () => api.transport.stop())
    engine.stop()
  })
  asGlobalWindow(page, parent, () => api.start())
  frame.load()
  await ready
  return { api, engine, fromWidget }
}

describe("matrix-widget-api's WidgetApi asks for an OpenID token", () => {
  it("allowed by policy: resolves with the token", async () => {
    const { api } = await setUp({ rules: [{ capability: "m.openid", decision: "approve" }] })
    await expect(api.requestOpenIDConnectToken()).resolves.toMatchObject({ state: "allowed", access_token: expect.stringMatching(/^openid/) as unknown, token_type: "Bearer", matrix_server_name: "localhost", expires_in: 3600 })
  })

  it("blocked: rejects as the user declining", async () => {
    const { api } = await setUp({})
    await expect(api.requestOpenIDConnectToken()).rejects.toThrow("User declined")
  })

  it("after the prompt: resolves from openid_credentials and acknowledges it", async () => {
    let asked = 0
    const { api, engine, fromWidget } = await setUp({ openIdApprover: () => (asked++, new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 20))) })
    const [first, second] = await Promise.all([api.requestOpenIDConnectToken(), api.requestOpenIDConnectToken()])
    expect(asked).toBe(1)
    expect(first).toMatchObject({ state: "allowed", token_type: "Bearer" })
    expect(second).toMatchObject({ state: "allowed", token_type: "Bearer" })
    // Both openid_credentials were acknowledged, and each acknowledgement matched what we sent.
    const acks = () => fromWidget.filter((m) => m.api === "toWidget" && m.action === "openid_credentials" && "response" in m)
    await waitUntil("the widget's acknowledgements", () => acks().length === 2, 5_000)
    expect(acks().map((m) => m.response)).toEqual([{}, {}])
    expect(engine.sessions()[0]!.counters).toMatchObject({ unmatched: 0, timedOut: 0 })
  })

  it("refused after the prompt: rejects as the user declining", async () => {
    const { api } = await setUp({ openIdApprover: async () => false })
    await expect(api.requestOpenIDConnectToken()).rejects.toThrow("User declined")
  })
})
