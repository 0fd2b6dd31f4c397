/**
 * Conformance: toWidget requests of the embedding client (`session.request`). Given a ready
 * session and how the widget answers, the client's promise settles exactly once: the widget's
 * response, its error, the 10 s request timeout (on the engine's clock), the session closing, or
 * a refusal that sends nothing (actions only the engine sends, a session not ready, a widget
 * without the version the action needs, a screenshot from a widget not approved for them).
 * `supported_api_versions` is answered from the widget's answer to the engine's own request.
 */
import { SUPPORTED_API_VERSIONS, type WidgetMessage, type WidgetRequest } from "@widgethost/core"
import { WidgetRequestError } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness } from "../src/index.ts"

const MSC2873 = ["0.0.2", "org.matrix.msc2873"]

/** Settles `promise` into a value to compare: `{ resolved }` or `{ rejected: { kind, message } }`, or "pending". */
const outcome = (promise: Promise<unknown>) => {
  let result: unknown = "pending"
  promise.then(
    (resolved) => (result = { resolved }),
    (error: unknown) => (result = { rejected: error instanceof WidgetRequestError ? { kind: error.kind, message: error.message, response: error.response } : String(error) })
  )
  return () => result
}

const sentRequests = (messages: ReadonlyArray<WidgetMessage>, action: string) => Harness.requests(messages).filter((m) => m.action === action) as WidgetRequest[]

const ready = async (options: { capabilities?: ReadonlyArray<string>; versions?: ReadonlyArray<string>; ungated?: ReadonlyArray<string> } = {}) => {
  const h = new Harness({ approver: approveAll, policy: { rules: [], clientCapabilities: ["m.capability.screenshot"] }, ...(options.ungated === undefined ? {} : { ungatedRequests: options.ungated }) })
  await h.ready(options.capabilities ?? [], options.versions ?? MSC2873)
  h.take()
  return h
}

/** What reached the widget, its versions request (asked before a version-gated action) answered with `versions`. */
const takeAnsweringVersions = async (h: Harness, versions: ReadonlyArray<string>): Promise<WidgetMessage[]> => {
  const out = h.take()
  const asked = sentRequests(out, "supported_api_versions")
  if (asked.length === 0) return out
  h.respond(asked[0]!, { supported_versions: versions })
  await flush()
  return [...out, ...h.take()]
}

/** The widget's answer to the request it was sent, or none. */
type Answer = { readonly response: unknown } | "none"

const table: ReadonlyArray<{
  readonly name: string
  readonly given?: { readonly capabilities?: ReadonlyArray<string>; readonly versions?: ReadonlyArray<string>; readonly ungated?: ReadonlyArray<string> }
  readonly send: { readonly action: string; readonly data: Record<string, unknown> }
  /** What reaches the widget (its data), or nothing. */
  readonly sent: Record<string, unknown> | "nothing"
  readonly answer: Answer
  readonly want: unknown
}> = [
  { name: "theme_change (MSC2873): the widget's response resolves it", send: { action: "theme_change", data: { name: "dark", is_dark: true } }, sent: { name: "dark", is_dark: true }, answer: { response: {} }, want: { resolved: {} } },
  { name: "language_change (MSC2873)", send: { action: "language_change", data: { lang: "fr" } }, sent: { lang: "fr" }, answer: { response: {} }, want: { resolved: {} } },
  { name: "visibility (MSC2764)", send: { action: "visibility", data: { visible: false } }, sent: { visible: false }, answer: { response: {} }, want: { resolved: {} } },
  { name: "a client's own action: whatever the widget answers", send: { action: "io.element.device_mute", data: { audio_enabled: false } }, sent: { audio_enabled: false }, answer: { response: { audio_enabled: false, video_enabled: true } }, want: { resolved: { audio_enabled: false, video_enabled: true } } },
  {
    name: "the widget's error answer rejects it, carrying the error",
    send: { action: "io.element.join", data: {} },
    sent: {},
    answer: { response: { error: { message: "no call here" } } },
    want: { rejected: { kind: "widget-error", message: "the widget refused io.element.join: no call here", response: { message: "no call here" } } }
  },
  { name: "screenshot from a widget approved for it", given: { capabilities: ["m.capability.screenshot"] }, send: { action: "screenshot", data: {} }, sent: {}, answer: { response: { screenshot: "blob" } }, want: { resolved: { screenshot: "blob" } } },
  { name: "screenshot from a widget not approved for it: refused, nothing sent", send: { action: "screenshot", data: {} }, sent: "nothing", answer: "none", want: { rejected: { kind: "refused", message: "screenshot was not sent: screenshot needs the widget approved for m.capability.screenshot", response: undefined } } },
  { name: "theme_change to a widget without org.matrix.msc2873: refused, nothing sent", given: { versions: ["0.0.2"] }, send: { action: "theme_change", data: {} }, sent: "nothing", answer: "none", want: { rejected: { kind: "refused", message: "theme_change was not sent: the widget does not support org.matrix.msc2873, which theme_change needs", response: undefined } } },
  { name: "button_clicked to a widget without org.matrix.msc2790: refused", send: { action: "button_clicked", data: { id: "m.close" } }, sent: "nothing", answer: "none", want: { rejected: { kind: "refused", message: "button_clicked was not sent: the widget does not support org.matrix.msc2790, which button_clicked needs", response: undefined } } },
  {
    name: "button_clicked sent ungated (a matrix-widget-api-compatible host): reaches a widget without org.matrix.msc2790",
    given: { ungated: ["widget_config", "button_clicked", "close_modal"] },
    send: { action: "button_clicked", data: { id: "m.close" } },
    sent: { id: "m.close" },
    answer: { response: {} },
    want: { resolved: {} }
  },
  { name: "close_modal ungated: sent whatever the widget announced", given: { ungated: ["close_modal"], versions: ["0.0.2"] }, send: { action: "close_modal", data: { x: 1 } }, sent: { x: 1 }, answer: { response: {} }, want: { resolved: {} } },
  { name: "data that is no object: refused", send: { action: "visibility", data: [true] as unknown as Record<string, unknown> }, sent: "nothing", answer: "none", want: { rejected: { kind: "refused", message: "visibility was not sent: data must be an object", response: undefined } } },
  ...["capabilities", "notify_capabilities", "send_event", "update_state", "send_to_device", "update_turn_servers", "openid_credentials"].map((action) => ({
    name: `${action} is the engine's own: refused, nothing sent`,
    send: { action, data: {} },
    sent: "nothing" as const,
    answer: "none" as const,
    want: { rejected: { kind: "refused", message: `${action} was not sent: ${action} is a toWidget request only the engine sends`, response: undefined } }
  }))
]

describe("session.request", () => {
  it.each(table)("$name", async ({ given, send, sent, answer, want }) => {
    const h = await ready(given)
    const result = outcome(h.session.request(send.action, send.data))
    await flush()
    const out = sentRequests(await takeAnsweringVersions(h, given?.versions ?? MSC2873), send.action)
    if (sent === "nothing") expect(out).toEqual([])
    else {
      expect(out.map((m) => m.data)).toEqual([sent])
      if (answer !== "none") h.respond(out[0]!, answer.response)
    }
    await flush()
    expect(result()).toEqual(want)
  })

  it("a widget that never answers: rejected by the request timeout (10 s, the engine's clock), not before", async () => {
    const h = await ready()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await h.advance(7_000)
    expect(result()).toBe("pending")
    await h.advance(3_100)
    expect(result()).toEqual({ rejected: { kind: "timed-out", message: "the widget did not answer visibility within 10000 ms", response: undefined } })
    // Its late answer is dropped, not matched.
    const late = sentRequests(h.take(), "visibility")[0]!
    h.respond(late, {})
    expect(h.session.info().counters.unmatched).toBe(1)
  })

  it("while the transport is down the timeout does not run: once back, the request has what was left of its 10 s", async () => {
    const h = await ready()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await h.advance(5_000)
    h.session.transportDown()
    await h.advance(60_000) // suspended, as the websocket transport's resume window allows
    expect(result()).toBe("pending")
    expect(h.session.info().counters.timedOut).toBe(0)
    h.session.transportUp()
    await h.advance(2_000)
    expect(result()).toBe("pending")
    // Answered after the resume (the transport delivered it again): matched, one answer.
    const request = sentRequests(h.take(), "visibility")[0]!
    h.respond(request, {})
    await flush()
    expect(result()).toEqual({ resolved: {} })
    expect(h.session.info().counters).toMatchObject({ timedOut: 0, unmatched: 0 })
  })

  it("once the transport is back, an unanswered request times out as usual", async () => {
    const h = await ready()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await h.advance(5_000)
    h.session.transportDown()
    await h.advance(30_000)
    h.session.transportUp()
    await h.advance(2_000)
    expect(result()).toBe("pending")
    await h.advance(3_100)
    expect(result()).toMatchObject({ rejected: { kind: "timed-out" } })
  })

  it("closing the session rejects what is waiting", async () => {
    const h = await ready()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await flush()
    h.session.close("user left")
    h.take()
    await flush()
    expect(result()).toEqual({ rejected: { kind: "closed", message: "visibility will not be answered: the session closed (user left)", response: undefined } })
  })

  it("a request to a closed session is rejected at once", async () => {
    const h = await ready()
    h.session.close()
    h.take()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await flush()
    expect(result()).toMatchObject({ rejected: { kind: "closed" } })
  })

  it("a request in the same turn as the close: rejected, never left hanging", async () => {
    const h = await ready()
    h.session.close("gone")
    const result = outcome(h.session.request("visibility", { visible: true }))
    h.take()
    await flush()
    expect(result()).toMatchObject({ rejected: { kind: "closed" } })
  })

  it("before the session is ready: refused, and nothing reaches the widget", async () => {
    const h = new Harness({ approver: approveAll })
    const result = outcome(h.session.request("visibility", { visible: true }))
    await flush()
    expect(h.take()).toEqual([])
    expect(result()).toEqual({ rejected: { kind: "refused", message: "visibility was not sent: the session is loading: toWidget requests are sent once it is ready", response: undefined } })
  })

  it("a new document drops what was sent to the old one", async () => {
    const h = await ready()
    const result = outcome(h.session.request("visibility", { visible: true }))
    await flush()
    h.session.frameLoaded()
    h.take()
    await flush()
    expect(result()).toMatchObject({ rejected: { kind: "dropped", message: stringMentioning("new document") } })
  })

  it("a version-gated request to a widget whose versions are unknown asks them first, then sends", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    h.ackAll([])
    await flush()
    h.take()
    const result = outcome(h.session.request("theme_change", { name: "dark" }))
    await flush()
    const asked = h.take()
    expect(Harness.requests(asked).map((m) => m.action)).toEqual(["supported_api_versions"])
    h.respond(Harness.requests(asked)[0]!, { supported_versions: MSC2873 })
    await flush()
    const theme = sentRequests(h.take(), "theme_change")
    expect(theme.map((m) => m.data)).toEqual([{ name: "dark" }])
    h.respond(theme[0]!, {})
    await flush()
    expect(result()).toEqual({ resolved: {} })
  })

  it("versions already known (asked for update_state): the gated request goes at once", async () => {
    const h = await ready({ capabilities: ["m.receive.state_event:m.room.topic"], versions: [...MSC2873, "org.matrix.msc2762_update_state"] })
    expect(h.session.info().approved).toEqual(["m.receive.state_event:m.room.topic"])
    void h.session.request("theme_change", { name: "light" })
    await flush()
    expect(Harness.requests(h.take()).map((m) => m.action)).toEqual(["theme_change"])
  })

  it("a widget that never says its versions: gated requests are refused once the versions request times out", async () => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    h.ackAll([])
    await flush()
    const result = outcome(h.session.request("language_change", { lang: "de" }))
    await h.advance(10_100)
    expect(result()).toMatchObject({ rejected: { kind: "refused", message: stringMentioning("org.matrix.msc2873") } })
    expect(sentRequests(h.take(), "language_change")).toEqual([])
  })

  it("supported_api_versions asked before anything needed them: the widget is asked once, for every caller", async () => {
    const h = await ready({ capabilities: [], versions: [] })
    const first = outcome(h.session.request("supported_api_versions"))
    const second = outcome(h.session.request("supported_api_versions"))
    await flush()
    const asked = sentRequests(h.take(), "supported_api_versions")
    expect(asked).toHaveLength(1)
    h.respond(asked[0]!, { supported_versions: ["0.0.2", "org.matrix.msc2873"] })
    await flush()
    expect([first(), second()]).toEqual([{ resolved: { supported_versions: ["0.0.2", "org.matrix.msc2873"] } }, { resolved: { supported_versions: ["0.0.2", "org.matrix.msc2873"] } }])
    const third = outcome(h.session.request("supported_api_versions"))
    await flush()
    expect(sentRequests(h.take(), "supported_api_versions")).toEqual([])
    expect(third()).toEqual({ resolved: { supported_versions: ["0.0.2", "org.matrix.msc2873"] } })
  })

  it("the engine's own versions list is unchanged by the client's requests", async () => {
    const h = await ready()
    expect(h.responseTo(h.request("supported_api_versions"))).toEqual({ supported_versions: SUPPORTED_API_VERSIONS })
  })
})

function stringMentioning(text: string): unknown {
  return expect.stringContaining(text) as unknown
}
