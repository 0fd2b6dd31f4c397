/**
 * Conformance: fromWidget actions the engine does not know, served by the embedding client's
 * custom actions (`io.element.join`, `im.vector.hangup`, ...). Given the handlers installed, a
 * request gets exactly one answer: the handler's object, `{}`, its refusal, the request timeout,
 * or the unknown-action error when nothing serves it. Engine actions cannot be overridden.
 */
import { SUPPORTED_API_VERSIONS } from "@widgethost/core"
import { type ClientHooks, createEngine, type CustomAction, type EngineOptions, type HookContext } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const seen: Array<{ readonly data: unknown; readonly context: HookContext }> = []
const recording = (answer: (data: Readonly<Record<string, unknown>>) => Promise<Readonly<Record<string, unknown>> | void>): CustomAction => (data, context) => {
  seen.push({ data, context })
  return answer(data)
}

/** Element Call's actions, answered as a client would. */
const customActions: Readonly<Record<string, CustomAction>> = {
  "io.element.join": recording(async (data) => ({ joined: true, audio: data.audioInput ?? null })),
  "io.element.device_mute": recording(async (data) => ({ audio_enabled: data.audio_enabled === true, video_enabled: false })),
  "io.element.close": recording(async () => undefined),
  "im.vector.hangup": recording(() => Promise.reject(new Error("No call to hang up"))),
  "org.example.sync_throw": () => {
    throw new Error("thrown at once")
  },
  "org.example.not_an_object": recording(async () => 42 as unknown as Record<string, unknown>),
  "org.example.rejects_nothing": recording(() => Promise.reject(new Error(""))),
  "org.example.never": () => new Promise(() => {})
}

const table: ReadonlyArray<{ readonly name: string; readonly send: { readonly action: string; readonly data: Record<string, unknown> }; readonly want: unknown }> = [
  { name: "io.element.join: the handler's object is the response", send: { action: "io.element.join", data: { audioInput: "mic" } }, want: { joined: true, audio: "mic" } },
  { name: "io.element.device_mute", send: { action: "io.element.device_mute", data: { audio_enabled: true } }, want: { audio_enabled: true, video_enabled: false } },
  { name: "io.element.close: nothing resolved is an empty acknowledgement", send: { action: "io.element.close", data: {} }, want: {} },
  { name: "im.vector.hangup refused: the handler's message", send: { action: "im.vector.hangup", data: {} }, want: { error: { code: "ClientRefused", message: "No call to hang up" } } },
  { name: "a handler that throws synchronously: one error answer", send: { action: "org.example.sync_throw", data: {} }, want: { error: { code: "ClientRefused", message: "thrown at once" } } },
  { name: "a handler answering no object: an error, not a malformed response", send: { action: "org.example.not_an_object", data: {} }, want: { error: { code: "ClientRefused", message: "The client's org.example.not_an_object handler answered no object" } } },
  { name: "a refusal without words: a plain refusal naming the action", send: { action: "org.example.rejects_nothing", data: {} }, want: { error: { code: "ClientRefused", message: "The client refused org.example.rejects_nothing" } } },
  { name: "an action nothing serves: the unknown-action error", send: { action: "io.element.unknown", data: {} }, want: { error: { code: "UnknownAction", message: "Unknown or unsupported action: io.element.unknown" } } },
  { name: "a name on Object.prototype is no handler", send: { action: "constructor", data: {} }, want: { error: { code: "UnknownAction", message: "Unknown or unsupported action: constructor" } } },
  { name: "__proto__ is no handler", send: { action: "__proto__", data: {} }, want: { error: { code: "UnknownAction", message: "Unknown or unsupported action: __proto__" } } }
]

describe("custom actions", () => {
  it.each(table)("$name", async ({ send, want }) => {
    const h = new Harness({ approver: approveAll, customActions })
    await h.ready([])
    h.take()
    const id = h.request(send.action, send.data)
    await flush()
    const out = h.take().filter((m) => m.api === "fromWidget" && m.requestId === id)
    expect(out).toHaveLength(1)
    expect((out[0] as { response: unknown }).response).toEqual(want)
  })

  it("the handler gets the data and a context naming the action, the session and what the widget holds", async () => {
    seen.length = 0
    const h = new Harness({ approver: approveAll, customActions, origin: "https://call.example" })
    await h.ready(["m.send.event:m.room.message"])
    h.request("io.element.join", { audioInput: null })
    await flush()
    expect(seen).toHaveLength(1)
    expect(seen[0]!.data).toEqual({ audioInput: null })
    expect({ ...seen[0]!.context, signal: undefined }).toMatchObject({ action: "io.element.join", sessionId: h.session.sessionId, widgetId: "w1", origin: "https://call.example", approved: ["m.send.event:m.room.message"] })
  })

  it("before the session is ready: refused, never silent, the handler not called", async () => {
    seen.length = 0
    const h = new Harness({ approver: approveAll, customActions })
    expect(h.responseTo(h.request("io.element.join", {}))).toMatchObject({ error: { code: "WrongPhase" } })
    expect(seen).toEqual([])
  })

  it("a handler that never settles: one timeout answer", async () => {
    const h = new Harness({ approver: approveAll, customActions })
    await h.ready([])
    h.take()
    const id = h.request("org.example.never", {})
    await h.advance(10_100)
    expect(h.responseTo(id)).toMatchObject({ error: { code: "ClientTimedOut" } })
    await h.advance(10_000)
    expect(h.take().filter((m) => m.api === "fromWidget" && m.requestId === id)).toHaveLength(1)
  })
})

describe("what the engine refuses at creation", () => {
  const homeserver = makeInMemoryHomeserver()
  const create = (options: Omit<EngineOptions, "homeserver" | "subscribe">) => () => createEngine({ homeserver: fromEffectPort(homeserver), subscribe: false, ...options })
  const handler: CustomAction = async () => ({})

  it.each([
    { name: "an engine action as a custom action", options: { customActions: { send_event: handler } }, want: "customActions: send_event is served by the engine and cannot be overridden" },
    { name: "supported_api_versions as a custom action", options: { customActions: { supported_api_versions: handler } }, want: "supported_api_versions is served by the engine" },
    { name: "an unstable engine action", options: { customActions: { "org.matrix.msc2974.request_capabilities": handler } }, want: "org.matrix.msc2974.request_capabilities is served by the engine" },
    { name: "a hook's action as a custom action", options: { customActions: { "org.matrix.msc2931.navigate": handler } }, want: "customActions: org.matrix.msc2931.navigate is served through hooks.navigate, not a custom action" },
    { name: "an empty action name", options: { customActions: { "": handler } }, want: "an action name must not be empty" },
    { name: "a custom action that is no function", options: { customActions: { "io.element.join": 42 as unknown as CustomAction } }, want: 'customActions["io.element.join"] must be a function' },
    { name: "a hook the engine does not know", options: { hooks: { navgate: async () => {} } as unknown as ClientHooks }, want: "hooks.navgate is not a hook this engine knows" },
    { name: "a hook that is no function", options: { hooks: { navigate: "yes" } as unknown as ClientHooks }, want: "hooks.navigate must be a function" },
    { name: "a hook's version without the hook", options: { apiVersions: ["org.matrix.msc2931"] }, want: "versions: org.matrix.msc2931 promises what hooks.navigate would serve" },
    { name: "MSC2790's version with one modal hook", options: { apiVersions: ["org.matrix.msc2790"], hooks: { openModal: async () => {} } }, want: "hooks.setButtonEnabled, hooks.closeModal" },
    { name: "a known version whose actions no custom action serves", options: { apiVersions: ["org.matrix.msc3817"] }, want: "versions: org.matrix.msc3817 promises org.matrix.msc3817.create_room, which no custom action serves" },
    { name: "an MSC4039 media action, which the engine serves", options: { customActions: { "org.matrix.msc4039.upload_file": handler } }, want: "org.matrix.msc4039.upload_file is served by the engine" },
    { name: "a client-side capability declared opaque", options: { policy: { rules: [], clientCapabilities: ["m.always_on_screen"] } }, want: "policy.clientCapabilities: m.always_on_screen is not opaque: its hook serves it" },
    { name: "an ungated request that no version gates", options: { ungatedRequests: ["visibility"] }, want: 'ungatedRequests: "visibility" is not a version-gated toWidget request' },
    { name: "an engine capability declared opaque", options: { policy: { rules: [], clientCapabilities: ["m.turn_servers"] } }, want: "m.turn_servers is not opaque: the engine serves it" }
  ])("$name", ({ options, want }) => {
    expect(create(options)).toThrow(want)
  })

  it("every problem is named at once", () => {
    expect(create({ customActions: { send_event: handler, read_events: handler } })).toThrow(/send_event[\s\S]*read_events/)
  })
})

describe("versions the client adds", () => {
  const versions = (options: Pick<EngineOptions, "apiVersions" | "customActions">) => {
    const h = new Harness({ approver: approveAll, ...options })
    return (h.responseTo(h.request("supported_api_versions")) as { supported_versions: ReadonlyArray<string> }).supported_versions
  }

  it("its own versions are advertised after the engine's, once", () => {
    expect(versions({ apiVersions: ["org.matrix.msc2873", "io.element.call", "0.0.2"] })).toEqual([...SUPPORTED_API_VERSIONS, "org.matrix.msc2873", "io.element.call"])
  })

  it("a known version is accepted once a custom action serves it", () => {
    expect(versions({ apiVersions: ["org.matrix.msc3817"], customActions: { create_room: async () => ({ room_id: "!new:localhost" }) } })).toContain("org.matrix.msc3817")
  })
})
