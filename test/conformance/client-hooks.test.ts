/**
 * Conformance: the fromWidget actions the embedding client serves through its hooks (MSC2764
 * `set_always_on_screen` and `m.sticker`, MSC2931 `navigate`, MSC2790 `open_modal`,
 * `set_button_enabled`, `close_modal`). Given the hooks installed and what was approved, a request
 * gets exactly one answer, and the hook is called exactly when the capability and shape allow.
 */
import { SUPPORTED_API_VERSIONS, type WidgetMessage } from "@widgethost/core"
import type { ClientHooks, HookContext } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, ROOM } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

type HookName = keyof ClientHooks
/** How a hook answers: the default value, a value, a rejection, a synchronous throw, or never. */
type Behaviour = { readonly resolve: unknown } | { readonly reject: unknown } | { readonly throw: unknown } | "never"

/** Every hook, recording its arguments and answering as told (`setAlwaysOnScreen`: true by default). */
const recordingHooks = (behaviours: Partial<Record<HookName, Behaviour>> = {}, only?: ReadonlyArray<HookName>) => {
  const calls: Array<{ readonly hook: HookName; readonly args: ReadonlyArray<unknown>; readonly context: HookContext }> = []
  const make = (hook: HookName) =>
    (...all: unknown[]): Promise<never> => {
      const context = all[all.length - 1] as HookContext
      calls.push({ hook, args: all.slice(0, -1), context })
      const behaviour = behaviours[hook] ?? { resolve: hook === "setAlwaysOnScreen" ? true : undefined }
      if (behaviour === "never") return new Promise<never>(() => {})
      if ("throw" in behaviour) throw behaviour.throw
      // Some cases reject with what is no Error on purpose: embedders do.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      if ("reject" in behaviour) return Promise.reject(behaviour.reject)
      return Promise.resolve(behaviour.resolve as never)
    }
  const names: ReadonlyArray<HookName> = only ?? ["navigate", "setAlwaysOnScreen", "sendSticker", "openModal", "setButtonEnabled", "closeModal"]
  const hooks = Object.fromEntries(names.map((name) => [name, make(name)])) as ClientHooks
  return { hooks, calls }
}

const NAVIGATE = "org.matrix.msc2931.navigate"
const PERMALINK = "https://matrix.to/#/!room:example.org/$event?via=example.org"
const STICKER = { name: "Smiling Face", description: "A circular emoticon", content: { url: "mxc://example.org/abc1234", info: { w: 512, h: 512, mimetype: "image/png" } } }
const MODAL = {
  type: "m.custom",
  url: "https://example.org/modal_widget.html?user_id=$matrix_user_id",
  name: "What is your name?",
  data: { "custom-key": "This is a custom key" },
  waitForIframeLoad: true,
  buttons: [
    { id: "com.example.save", label: "Submit", kind: "m.primary", disabled: true },
    { id: "m.close", label: "Cancel", kind: "m.link" }
  ]
}

const table: ReadonlyArray<{
  readonly name: string
  readonly given: { readonly approved: ReadonlyArray<string>; readonly behaviours?: Partial<Record<HookName, Behaviour>>; readonly only?: ReadonlyArray<HookName> }
  readonly send: { readonly action: string; readonly data: Record<string, unknown> }
  readonly want: unknown
  /** The hook calls made, as [hook, ...arguments]. */
  readonly called: ReadonlyArray<readonly [HookName, ...unknown[]]>
}> = [
  // MSC2931 navigate
  { name: "navigate (unstable names): acknowledged once the hook resolves", given: { approved: [NAVIGATE] }, send: { action: NAVIGATE, data: { uri: PERMALINK } }, want: {}, called: [["navigate", PERMALINK]] },
  { name: "navigate (stable names)", given: { approved: ["m.navigate"] }, send: { action: "navigate", data: { uri: PERMALINK } }, want: {}, called: [["navigate", PERMALINK]] },
  { name: "navigate: the capability's two spellings are one", given: { approved: [NAVIGATE] }, send: { action: "navigate", data: { uri: "matrix:r/room:example.org" } }, want: {}, called: [["navigate", "matrix:r/room:example.org"]] },
  { name: "navigate not approved: refused, the hook not called", given: { approved: ["m.sticker"] }, send: { action: NAVIGATE, data: { uri: PERMALINK } }, want: { error: { code: "NotAllowed", message: stringContaining("m.navigate") } }, called: [] },
  { name: "navigate to a javascript: URI: malformed, the hook not called", given: { approved: [NAVIGATE] }, send: { action: NAVIGATE, data: { uri: "javascript:alert(1)" } }, want: { error: { code: "Malformed", message: stringContaining("matrix.to") } }, called: [] },
  { name: "navigate without uri: malformed", given: { approved: [NAVIGATE] }, send: { action: NAVIGATE, data: {} }, want: { error: { code: "Malformed" } }, called: [] },
  { name: "navigate without the hook: unknown action", given: { approved: [NAVIGATE], only: ["sendSticker"] }, send: { action: NAVIGATE, data: { uri: PERMALINK } }, want: { error: { code: "UnknownAction", message: `Unknown or unsupported action: ${NAVIGATE}` } }, called: [] },
  { name: "navigate refused by the hook (rejection): its message reaches the widget", given: { approved: [NAVIGATE], behaviours: { navigate: { reject: new Error("User profiles are not supported") } } }, send: { action: NAVIGATE, data: { uri: "https://matrix.to/#/@bob:example.org" } }, want: { error: { code: "ClientRefused", message: "User profiles are not supported" } }, called: [["navigate", "https://matrix.to/#/@bob:example.org"]] },
  { name: "navigate refused by the hook (synchronous throw): one error answer", given: { approved: [NAVIGATE], behaviours: { navigate: { throw: new Error("boom") } } }, send: { action: NAVIGATE, data: { uri: PERMALINK } }, want: { error: { code: "ClientRefused", message: "boom" } }, called: [["navigate", PERMALINK]] },
  { name: "a hook rejecting with no Error: a plain refusal", given: { approved: [NAVIGATE], behaviours: { navigate: { reject: 42 } } }, send: { action: NAVIGATE, data: { uri: PERMALINK } }, want: { error: { code: "ClientRefused", message: `The client refused ${NAVIGATE}` } }, called: [["navigate", PERMALINK]] },
  // MSC2764 set_always_on_screen
  { name: "set_always_on_screen honoured: success true", given: { approved: ["m.always_on_screen"] }, send: { action: "set_always_on_screen", data: { value: true } }, want: { success: true }, called: [["setAlwaysOnScreen", true]] },
  { name: "set_always_on_screen not honoured (another widget holds the screen): success false", given: { approved: ["m.always_on_screen"], behaviours: { setAlwaysOnScreen: { resolve: false } } }, send: { action: "set_always_on_screen", data: { value: true } }, want: { success: false }, called: [["setAlwaysOnScreen", true]] },
  { name: "set_always_on_screen with a non-boolean value: malformed", given: { approved: ["m.always_on_screen"] }, send: { action: "set_always_on_screen", data: { value: "yes" } }, want: { error: { code: "Malformed" } }, called: [] },
  { name: "set_always_on_screen: a hook answering no boolean is an error, not a success", given: { approved: ["m.always_on_screen"], behaviours: { setAlwaysOnScreen: { resolve: "ok" } } }, send: { action: "set_always_on_screen", data: { value: false } }, want: { error: { code: "ClientRefused" } }, called: [["setAlwaysOnScreen", false]] },
  { name: "set_always_on_screen not approved", given: { approved: [] }, send: { action: "set_always_on_screen", data: { value: true } }, want: { error: { code: "NotAllowed", message: stringContaining("m.always_on_screen") } }, called: [] },
  // MSC2764 m.sticker
  { name: "m.sticker: the sticker reaches the hook, acknowledged", given: { approved: ["m.sticker"] }, send: { action: "m.sticker", data: { ...STICKER, extra: "ignored" } }, want: {}, called: [["sendSticker", STICKER]] },
  { name: "m.sticker without description", given: { approved: ["m.sticker"] }, send: { action: "m.sticker", data: { name: "x", content: STICKER.content } }, want: {}, called: [["sendSticker", { name: "x", content: STICKER.content }]] },
  { name: "m.sticker with an http url: malformed", given: { approved: ["m.sticker"] }, send: { action: "m.sticker", data: { ...STICKER, content: { ...STICKER.content, url: "https://example.org/a.png" } } }, want: { error: { code: "Malformed", message: stringContaining("mxc://") } }, called: [] },
  { name: "m.sticker without info: malformed", given: { approved: ["m.sticker"] }, send: { action: "m.sticker", data: { name: "x", content: { url: "mxc://a/b" } } }, want: { error: { code: "Malformed" } }, called: [] },
  { name: "m.sticker without name: malformed", given: { approved: ["m.sticker"] }, send: { action: "m.sticker", data: { content: STICKER.content } }, want: { error: { code: "Malformed" } }, called: [] },
  { name: "m.sticker not approved", given: { approved: ["m.always_on_screen"] }, send: { action: "m.sticker", data: STICKER }, want: { error: { code: "NotAllowed", message: stringContaining("m.sticker") } }, called: [] },
  // MSC2790 modals
  {
    name: "open_modal: the definition reaches the hook with only MSC2790's keys, unfit buttons left out",
    given: { approved: ["org.matrix.msc2790.modals"] },
    send: { action: "open_modal", data: { ...MODAL, creatorUserId: "@evil:x", buttons: [...MODAL.buttons, { id: "no-label", kind: "m.primary" }, "nonsense", { id: "b", label: "B", kind: "m.danger", disabled: "yes" }] } },
    want: {},
    called: [["openModal", MODAL]]
  },
  { name: "open_modal (stable capability), defaults filled in", given: { approved: ["m.modals"] }, send: { action: "open_modal", data: { type: "m.custom", url: "https://example.org/m" } }, want: {}, called: [["openModal", { type: "m.custom", url: "https://example.org/m", data: {}, waitForIframeLoad: true, buttons: [] }]] },
  { name: "open_modal with a javascript: URL: malformed", given: { approved: ["m.modals"] }, send: { action: "open_modal", data: { ...MODAL, url: "javascript:alert(1)" } }, want: { error: { code: "Malformed", message: stringContaining("url") } }, called: [] },
  { name: "open_modal without m.modals", given: { approved: [] }, send: { action: "open_modal", data: MODAL }, want: { error: { code: "NotAllowed", message: stringContaining("m.modals") } }, called: [] },
  { name: "set_button_enabled: to the hook (no capability: the modal widget's own buttons)", given: { approved: [] }, send: { action: "set_button_enabled", data: { button: "com.example.save", enabled: false } }, want: {}, called: [["setButtonEnabled", "com.example.save", false]] },
  { name: "set_button_enabled disabling m.close: refused (the user can always escape)", given: { approved: [] }, send: { action: "set_button_enabled", data: { button: "m.close", enabled: false } }, want: { error: { code: "NotAllowed", message: stringContaining("m.close") } }, called: [] },
  { name: "set_button_enabled refused by the hook (not a modal, no such button)", given: { approved: [], behaviours: { setButtonEnabled: { reject: new Error("Not a modal widget") } } }, send: { action: "set_button_enabled", data: { button: "x", enabled: true } }, want: { error: { code: "ClientRefused", message: "Not a modal widget" } }, called: [["setButtonEnabled", "x", true]] },
  { name: "set_button_enabled with enabled missing: malformed", given: { approved: [] }, send: { action: "set_button_enabled", data: { button: "x" } }, want: { error: { code: "Malformed" } }, called: [] },
  { name: "close_modal: the data reaches the hook as it is", given: { approved: [] }, send: { action: "close_modal", data: { answer: 42 } }, want: {}, called: [["closeModal", { answer: 42 }]] }
]

const respondTo = (messages: ReadonlyArray<WidgetMessage>, id: string) => messages.filter((m) => m.api === "fromWidget" && m.requestId === id)

describe("client hooks", () => {
  it.each(table)("$name", async ({ given, send, want, called }) => {
    const { hooks, calls } = recordingHooks(given.behaviours, given.only)
    const h = new Harness({ approver: approveAll, hooks })
    await h.ready(given.approved)
    h.take()
    const id = h.request(send.action, send.data)
    await flush()
    const out = respondTo(h.take(), id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject(want as object)
    expect(calls.map((c) => [c.hook, ...c.args])).toStrictEqual(called)
  })

  it("the hook's context names the session, the widget, its room and origin, and what it holds", async () => {
    const { hooks, calls } = recordingHooks()
    const h = new Harness({ approver: approveAll, hooks, origin: "https://widget.example", widget: { name: "Call" } })
    await h.ready([NAVIGATE, "m.sticker"])
    h.request(NAVIGATE, { uri: PERMALINK })
    await flush()
    const context = calls[0]!.context
    expect({ ...context, signal: undefined }).toMatchObject({ sessionId: h.session.sessionId, widgetId: "w1", origin: "https://widget.example", roomId: ROOM, action: NAVIGATE, approved: [NAVIGATE, "m.sticker"] })
    expect(context.widget).toMatchObject({ id: "w1", name: "Call", url: "https://widget.example/index.html", roomId: ROOM })
    expect(context.signal.aborted).toBe(false)
  })

  it("a hook that never settles: the widget gets the timeout error once, by the request timeout; the hook's signal aborts", async () => {
    const { hooks, calls } = recordingHooks({ navigate: "never" })
    const reports: unknown[] = []
    const h = new Harness({ approver: approveAll, hooks, onReport: (_s, _w, report) => reports.push(report) })
    await h.ready([NAVIGATE])
    h.take()
    const id = h.request(NAVIGATE, { uri: PERMALINK })
    await flush()
    await h.advance(7_000)
    expect(respondTo(h.take(), id)).toEqual([])
    expect(calls[0]!.context.signal.aborted).toBe(false)
    await h.advance(3_100)
    const out = respondTo(h.take(), id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject({ error: { code: "ClientTimedOut", message: `The client did not answer ${NAVIGATE} within 10000 ms` } })
    expect(calls[0]!.context.signal.aborted).toBe(true)
    expect(reports).toContainEqual({ _tag: "ClientCallTimedOut", action: NAVIGATE, requestId: id })
    await h.advance(20_000)
    expect(respondTo(h.take(), id)).toEqual([])
  })

  it("a hook that answers after the timeout: still one answer (the timeout's)", async () => {
    let resolve: (() => void) | undefined
    const h = new Harness({ approver: approveAll, hooks: { navigate: () => new Promise<void>((r) => (resolve = r)) } })
    await h.ready([NAVIGATE])
    h.take()
    const id = h.request(NAVIGATE, { uri: PERMALINK })
    await h.advance(10_100)
    resolve!()
    await flush()
    const out = respondTo(h.take(), id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toMatchObject({ error: { code: "ClientTimedOut" } })
  })

  it("closing the session aborts the hook's signal; its late answer goes nowhere", async () => {
    let resolve: (() => void) | undefined
    let signal: AbortSignal | undefined
    const h = new Harness({ approver: approveAll, hooks: { navigate: (_uri, context) => ((signal = context.signal), new Promise<void>((r) => (resolve = r))) } })
    await h.ready([NAVIGATE])
    h.take()
    h.request(NAVIGATE, { uri: PERMALINK })
    await flush()
    h.session.close()
    h.take()
    expect(signal?.aborted).toBe(true)
    resolve!()
    await flush()
    expect(h.take()).toEqual([])
  })

  it("a new document in the frame aborts the old document's hook calls; their answers never reach the new one", async () => {
    let resolve: (() => void) | undefined
    let signal: AbortSignal | undefined
    const h = new Harness({ approver: approveAll, hooks: { navigate: (_uri, context) => ((signal = context.signal), new Promise<void>((r) => (resolve = r))) } })
    await h.ready([NAVIGATE])
    h.take()
    const id = h.request(NAVIGATE, { uri: PERMALINK })
    await flush()
    h.session.frameLoaded() // the reload
    h.take()
    expect(signal?.aborted).toBe(true)
    resolve!()
    await flush()
    expect(respondTo(h.take(), id)).toEqual([])
  })

  it("close_modal: a second one is refused, while the first is served and after", async () => {
    let resolve: (() => void) | undefined
    const h = new Harness({ approver: approveAll, hooks: { closeModal: () => new Promise<void>((r) => (resolve = r)) } })
    await h.ready([])
    h.take()
    const first = h.request("close_modal", { answer: 1 })
    const meanwhile = h.request("close_modal", { answer: 2 })
    await flush()
    expect(h.responseTo(meanwhile)).toMatchObject({ error: { code: "NotAllowed", message: stringContaining("closing") } })
    resolve!()
    await flush()
    expect(h.responseTo(first)).toEqual({})
    expect(h.responseTo(h.request("close_modal", { answer: 3 }))).toMatchObject({ error: { code: "NotAllowed", message: stringContaining("closed") } })
  })

  it("close_modal refused by the client may be tried again", async () => {
    let calls = 0
    const h = new Harness({ approver: approveAll, hooks: { closeModal: () => (calls++ === 0 ? Promise.reject(new Error("not yet")) : Promise.resolve()) } })
    await h.ready([])
    const first = h.request("close_modal", {})
    await flush()
    expect(h.responseTo(first)).toMatchObject({ error: { code: "ClientRefused", message: "not yet" } })
    const second = h.request("close_modal", {})
    await flush()
    expect(h.responseTo(second)).toEqual({})
  })

  it("before the session is ready: refused, never silent, the hook not called", async () => {
    const { hooks, calls } = recordingHooks()
    const h = new Harness({ approver: approveAll, hooks })
    expect(h.responseTo(h.request("set_button_enabled", { button: "a", enabled: true }))).toMatchObject({ error: { code: "WrongPhase" } })
    expect(calls).toEqual([])
  })

  it("hook calls in flight are bounded by limits.maxPendingCalls: past it, an error at once", async () => {
    const { hooks } = recordingHooks({ navigate: "never" })
    const h = new Harness({ approver: approveAll, hooks, limits: { maxPendingCalls: 2 } })
    await h.ready([NAVIGATE])
    h.take()
    const ids = [0, 1, 2].map(() => h.request(NAVIGATE, { uri: PERMALINK }))
    await flush()
    expect(h.responseTo(ids[2]!)).toMatchObject({ error: { code: "TooManyPending" } })
    expect(h.responseTo(ids[0]!)).toBeUndefined()
  })
})

describe("a capability is approved only if a hook serves it", () => {
  it("without hooks, client-side capabilities are denied and never prompted", async () => {
    const asked: string[] = []
    const h = new Harness({ approver: async ({ requested }) => (asked.push(...requested), requested) })
    const seen = await h.ready(["m.always_on_screen", "m.sticker", NAVIGATE, "org.matrix.msc2790.modals", "m.send.event:m.room.message"])
    expect(asked).toEqual(["m.send.event:m.room.message"])
    expect(Harness.requests(seen).find((m) => m.action === "notify_capabilities")?.data).toMatchObject({ approved: ["m.send.event:m.room.message"] })
    expect(h.session.info().denied).toEqual(["m.always_on_screen", "m.sticker", NAVIGATE, "org.matrix.msc2790.modals"])
  })

  it("with the hook, the capability is prompted like any other", async () => {
    const h = new Harness({ approver: approveAll, hooks: { sendSticker: async () => {} } })
    await h.ready(["m.sticker", NAVIGATE])
    expect(h.session.info().approved).toEqual(["m.sticker"])
  })
})

describe("supported_api_versions lists what the hooks serve", () => {
  const versions = async (hooks: ClientHooks) => {
    const h = new Harness({ approver: approveAll, hooks })
    return (h.responseTo(h.request("supported_api_versions")) as { supported_versions: ReadonlyArray<string> }).supported_versions
  }

  it("no hooks: the engine's own list", async () => {
    expect(await versions({})).toEqual(SUPPORTED_API_VERSIONS)
  })

  it("navigate adds org.matrix.msc2931", async () => {
    expect(await versions({ navigate: async () => {} })).toEqual([...SUPPORTED_API_VERSIONS, "org.matrix.msc2931"])
  })

  it("org.matrix.msc2790 needs all three modal hooks", async () => {
    expect(await versions({ openModal: async () => {}, closeModal: async () => {} })).not.toContain("org.matrix.msc2790")
    expect(await versions({ openModal: async () => {}, closeModal: async () => {}, setButtonEnabled: async () => {} })).toContain("org.matrix.msc2790")
  })
})
