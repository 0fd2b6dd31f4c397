/**
 * The widget-side client against our real engine over the real websocket transport (in-memory
 * homeserver behind it), matrix-widget-api's own `WidgetApi` running unchanged over a websocket
 * through the window shim, and the client's own rules with a scripted host: one answer per host
 * request, errors and timeouts rejected, and the postMessage transport's origin and source checks.
 */
import { createEngine, type Engine } from "@widgethost/engine"
import { type InMemoryHomeserver, approveAll, makeInMemoryHomeserver } from "@widgethost/testing"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import type { WidgetDefinition, WidgetMessage } from "@widgethost/core"
import { WidgetApi } from "matrix-widget-api"
import { WebSocket } from "ws"
import { afterEach, assert, describe, it } from "vitest"
import { WidgetApiError, WidgetClient } from "./widget-client.ts"
import { postMessageTransport, type WebSocketConstructor, websocketTransport, type WidgetTransport } from "./widget-transport.ts"
import { installWidgetWindow } from "./widget-window.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const ROOM = "!room:localhost"
const widget: WidgetDefinition = { id: "kit", kind: "room", roomId: ROOM, type: "m.custom", url: "https://widget.example/", data: {}, waitForIframeLoad: false, transports: ["m.websockets"] }

let homeserver: InMemoryHomeserver
let engine: Engine
let transport: WebsocketTransport
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Our engine behind our websocket transport; resolves with the widget's URI. */
const host = async (): Promise<string> => {
  homeserver = makeInMemoryHomeserver({ rooms: [ROOM] })
  engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: approveAll })
  transport = await startWebsocketTransport()
  cleanups.push(() => transport.close(), () => engine.stop())
  return transport.register(widget.id, (send) => engine.openSession({ widget, send, waitForIframeLoad: false })).uri
}

const until = async (what: string, cond: () => boolean) => {
  const deadline = Date.now() + 5000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe("WidgetClient over the websocket transport, hosted by our engine", () => {
  it("negotiates, sends an event, hears one, reads history, and gets the host's errors as WidgetApiError", async () => {
    const uri = await host()
    const client = new WidgetClient({ transport: await websocketTransport(uri, { WebSocket: WebSocket as unknown as WebSocketConstructor }), widgetId: widget.id, capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] })
    cleanups.push(() => client.close())
    await client.contentLoaded()
    const approval = await client.ready
    assert.sameMembers([...approval.approved], ["m.send.event:m.room.message", "m.receive.event:m.room.message"])

    const sent = await client.sendEvent("m.room.message", { msgtype: "m.text", body: "from the kit" })
    assert.match(sent.event_id ?? "", /^\$/)
    assert.equal(homeserver.rooms.get(ROOM)?.timeline.at(-1)?.content["body"], "from the kit")

    const heard: Array<unknown> = []
    client.on("send_event", (data) => void heard.push(data["content"]))
    homeserver.inject({ room_id: ROOM, type: "m.room.message", sender: "@bob:localhost", content: { msgtype: "m.text", body: "from bob" } })
    await until("bob's message", () => heard.length === 1)
    assert.deepEqual(heard, [{ msgtype: "m.text", body: "from bob" }])

    const { events } = await client.readEvents("m.room.message", { limit: 10 })
    assert.deepEqual(events.map((e) => (e["content"] as { body: string }).body).sort(), ["from bob", "from the kit"])

    const refused = await client.sendEvent("m.room.topic", { topic: "x" }, { stateKey: "" }).catch((error: unknown) => error)
    assert.instanceOf(refused, WidgetApiError)
    assert.equal((refused).action, "send_event")
  })

  it("matrix-widget-api's WidgetApi runs unchanged over the websocket through the window shim", async () => {
    const uri = await host()
    const socket = await websocketTransport(uri, { WebSocket: WebSocket as unknown as WebSocketConstructor })
    const uninstall = installWidgetWindow(socket)
    cleanups.push(() => socket.close(), uninstall)
    const api = new WidgetApi(widget.id)
    api.requestCapabilityToSendEvent("m.room.message")
    const ready = new Promise<void>((resolve) => api.once("ready", () => resolve()))
    api.start()
    await api.sendContentLoaded()
    await ready
    assert.isTrue(api.hasCapability("org.matrix.msc2762.send.event:m.room.message") || api.hasCapability("m.send.event:m.room.message"))
    const answer = await api.sendRoomEvent("m.room.message", { msgtype: "m.text", body: "from WidgetApi" })
    assert.match(answer.event_id ?? "", /^\$/)
    assert.equal(homeserver.rooms.get(ROOM)?.timeline.at(-1)?.content["body"], "from WidgetApi")
  })
})

/** A host that is a script: it records what the widget sends and says what the test tells it to. */
const scriptedHost = () => {
  const fromWidget: Array<WidgetMessage> = []
  let listener: (message: unknown) => void = () => undefined
  let onClose: (reason: string, resumable?: boolean) => void = () => undefined
  const transport: WidgetTransport = {
    send: (message) => void fromWidget.push(structuredClone(message)),
    onMessage: (l) => ((listener = l), () => (listener = () => undefined)),
    onClose: (l) => ((onClose = l), () => (onClose = () => undefined)),
    close: () => undefined
  }
  return { transport, fromWidget, say: (message: unknown) => listener(message), drop: (reason: string, resumable?: boolean) => onClose(reason, resumable) }
}
const toWidget = (requestId: string, action: string, data: object = {}) => ({ api: "toWidget", widgetId: "w", requestId, action, data })

describe("WidgetClient with a scripted host", () => {
  it("answers each host request exactly once: capabilities, versions, notifications, listeners, and an error for what nobody handles", async () => {
    const { transport, fromWidget, say } = scriptedHost()
    const client = new WidgetClient({ transport, widgetId: "w", capabilities: ["m.always_on_screen"], supportedVersions: ["0.0.2"] })
    client.on("io.example.ping", (data) => ({ pong: data["n"] }))
    client.on("io.example.fails", () => {
      throw new Error("no can do")
    })
    say(toWidget("1", "capabilities"))
    say(toWidget("2", "supported_api_versions"))
    say(toWidget("3", "notify_capabilities", { requested: ["m.always_on_screen"], approved: [] }))
    say(toWidget("4", "io.example.ping", { n: 7 }))
    say(toWidget("5", "io.example.fails"))
    say(toWidget("6", "io.example.unknown"))
    say(toWidget("7", "send_event", { type: "m.room.message" }))
    say({ api: "toWidget", requestId: "8" }) // no action: not a request
    say("junk")
    await until("seven answers", () => fromWidget.length >= 7)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const answers = Object.fromEntries(fromWidget.map((m) => [m.requestId, (m as { response?: unknown }).response]))
    assert.deepEqual(answers, {
      "1": { capabilities: ["m.always_on_screen"] },
      "2": { supported_versions: ["0.0.2"] },
      "3": {},
      "4": { pong: 7 },
      "5": { error: { message: "no can do" } },
      "6": { error: { message: "the widget does not handle io.example.unknown" } },
      "7": {}
    })
    assert.deepEqual(await client.ready, { requested: ["m.always_on_screen"], approved: [] })
  })

  it("matches answers by request id; rejects errors, times out, and fails what is pending when the transport closes", async () => {
    const { transport, fromWidget, say, drop } = scriptedHost()
    const client = new WidgetClient({ transport, widgetId: "w", capabilities: [], timeoutMs: 50 })
    const first = client.request("io.example.a")
    const second = client.request("io.example.b")
    const [a, b] = fromWidget as [WidgetMessage, WidgetMessage]
    say({ ...b, response: { ok: "b" } })
    say({ ...a, response: { error: { message: "nope", errcode: "M_X" } } })
    assert.deepEqual(await second, { ok: "b" })
    const error = (await first.catch((e: unknown) => e)) as WidgetApiError
    assert.equal(error.message, "io.example.a: nope")
    assert.equal(error.body["errcode"], "M_X")
    assert.match(String(await client.request("io.example.silent").catch((e: unknown) => e)), /no answer within 50 ms/)
    const pending = client.request("io.example.c")
    drop("socket closed (1006)")
    assert.match(String(await pending.catch((e: unknown) => e)), /the transport closed \(socket closed \(1006\)\)/)
    assert.match(String(await client.request("io.example.d").catch((e: unknown) => e)), /the transport is closed/)
  })
})

describe("WidgetClient: requests the host delivers again (dedupe by request id)", () => {
  const answersTo = (fromWidget: ReadonlyArray<WidgetMessage>, requestId: string) => fromWidget.filter((m) => m.requestId === requestId).map((m) => (m as { response?: unknown }).response)

  it("a request seen before is not handled again: it gets the first answer again", async () => {
    const { transport, fromWidget, say } = scriptedHost()
    const client = new WidgetClient({ transport, widgetId: "w", capabilities: [] })
    const heard: Array<unknown> = []
    client.on("send_event", (data) => void heard.push(data["n"]))
    client.on("io.example.ping", (data) => ({ pong: data["n"] }))
    say(toWidget("e1", "send_event", { n: 1 }))
    say(toWidget("p1", "io.example.ping", { n: 7 }))
    await until("two answers", () => fromWidget.length >= 2)
    say(toWidget("e1", "send_event", { n: 1 }))
    say(toWidget("p1", "io.example.ping", { n: 7 }))
    await until("the answers again", () => fromWidget.length >= 4)
    assert.deepEqual(heard, [1], "the listener ran once")
    assert.deepEqual(answersTo(fromWidget, "e1"), [{}, {}])
    assert.deepEqual(answersTo(fromWidget, "p1"), [{ pong: 7 }, { pong: 7 }], "the same answer, not a second computation")
  })

  it("a copy that arrives while the first is still being handled gets no answer of its own: one answer for the id", async () => {
    const { transport, fromWidget, say } = scriptedHost()
    const client = new WidgetClient({ transport, widgetId: "w", capabilities: [] })
    let release: () => void = () => undefined
    let runs = 0
    client.on("io.example.slow", () => {
      runs++
      return new Promise((resolve) => (release = () => resolve({ done: true })))
    })
    say(toWidget("s1", "io.example.slow"))
    say(toWidget("s1", "io.example.slow"))
    release()
    await until("an answer", () => fromWidget.length >= 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(runs, 1)
    assert.deepEqual(answersTo(fromWidget, "s1"), [{ done: true }])
  })

  it("resume: the answer lost with the old link is given on the new one when the host delivers the request again", async () => {
    const old = scriptedHost()
    const client = new WidgetClient({ transport: old.transport, widgetId: "w", capabilities: ["m.always_on_screen"] })
    let heard = 0
    client.on("send_event", () => void heard++)
    old.say(toWidget("n1", "notify_capabilities", { requested: ["m.always_on_screen"], approved: ["m.always_on_screen"] }))
    old.say(toWidget("e1", "send_event", { n: 1 }))
    await until("answered on the old link", () => old.fromWidget.length >= 2)
    old.drop("socket closed (1006)")
    const fresh = scriptedHost()
    client.resume(fresh.transport)
    fresh.say(toWidget("e1", "send_event", { n: 1 })) // redelivered: its answer may not have reached the host
    fresh.say(toWidget("e2", "send_event", { n: 2 }))
    await until("answers on the new link", () => fresh.fromWidget.length >= 2)
    assert.deepEqual(fresh.fromWidget.map((m) => m.requestId), ["e1", "e2"])
    assert.equal(heard, 2, "e1 was handled once, on the old link")
    assert.deepEqual(await client.ready, { requested: ["m.always_on_screen"], approved: ["m.always_on_screen"] }, "no new exchange")
    const after = client.request("io.example.after").catch(() => "rejected")
    assert.deepInclude(fresh.fromWidget.at(-1), { api: "fromWidget", action: "io.example.after" }, "new requests go over the new link")
    client.close()
    assert.equal(await after, "rejected")
  })

  it("an answer finished while the link was down is given when the request comes again", async () => {
    const old = scriptedHost()
    const client = new WidgetClient({ transport: old.transport, widgetId: "w", capabilities: [] })
    let release: () => void = () => undefined
    client.on("io.example.slow", () => new Promise((resolve) => (release = () => resolve({ done: 1 }))))
    old.say(toWidget("s1", "io.example.slow"))
    old.drop("socket closed (1006)")
    release()
    await new Promise((resolve) => setTimeout(resolve, 10))
    assert.equal(old.fromWidget.length, 0, "nothing sent on a dropped link")
    const fresh = scriptedHost()
    client.resume(fresh.transport)
    fresh.say(toWidget("s1", "io.example.slow"))
    await until("the answer", () => fresh.fromWidget.length >= 1)
    assert.deepEqual(answersTo(fresh.fromWidget, "s1"), [{ done: 1 }])
  })

  it("remembers the newest `rememberedAnswers` answers; a client the widget closed cannot resume", async () => {
    const { transport, fromWidget, say } = scriptedHost()
    const client = new WidgetClient({ transport, widgetId: "w", capabilities: [], rememberedAnswers: 2 })
    let heard = 0
    client.on("send_event", () => void heard++)
    for (const id of ["a", "b", "c"]) say(toWidget(id, "send_event"))
    await until("three answers", () => fromWidget.length >= 3)
    say(toWidget("c", "send_event")) // remembered: answered again, not handled
    say(toWidget("a", "send_event")) // forgotten: handled as new
    await until("two more answers", () => fromWidget.length >= 5)
    assert.equal(heard, 4)
    client.close()
    assert.throws(() => client.resume(scriptedHost().transport), /the widget closed this client/)
  })
})

describe("WidgetClient: its own requests across a dropped link", () => {
  it("a resumable drop leaves what is pending waiting; resume sends each again, same id and data, oldest first", async () => {
    const old = scriptedHost()
    const client = new WidgetClient({ transport: old.transport, widgetId: "w", capabilities: [] })
    const first = client.request("io.example.a", { n: 1 })
    const second = client.request("io.example.b", { n: 2 })
    old.drop("socket closed (1006)", true)
    assert.match(String(await client.request("io.example.while-down").catch((e: unknown) => e)), /the transport is closed/)
    const fresh = scriptedHost()
    client.resume(fresh.transport)
    assert.deepEqual(fresh.fromWidget, old.fromWidget, "the very same requests")
    assert.deepEqual(fresh.fromWidget.map((m) => m.requestId), ["widget-1", "widget-2"])
    fresh.say({ ...fresh.fromWidget[1], response: { ok: 2 } })
    fresh.say({ ...fresh.fromWidget[0], response: { ok: 1 } })
    assert.deepEqual([await first, await second], [{ ok: 1 }, { ok: 2 }])
    // Answered: a later resume sends nothing again.
    fresh.drop("socket closed (1006)", true)
    const third = scriptedHost()
    client.resume(third.transport)
    assert.deepEqual(third.fromWidget, [])
  })

  it("a final close rejects what is pending; so does close() after a resumable drop; the timeout runs on while away", async () => {
    const one = scriptedHost()
    const a = new WidgetClient({ transport: one.transport, widgetId: "w", capabilities: [] })
    const pendingA = a.request("io.example.a")
    one.drop("socket closed (4410)", false)
    assert.match(String(await pendingA.catch((e: unknown) => e)), /the transport closed/)
    const two = scriptedHost()
    const b = new WidgetClient({ transport: two.transport, widgetId: "w", capabilities: [] })
    const pendingB = b.request("io.example.b")
    two.drop("socket closed (1006)", true)
    b.close()
    assert.match(String(await pendingB.catch((e: unknown) => e)), /the transport closed \(closed by the widget\)/)
    const three = scriptedHost()
    const c = new WidgetClient({ transport: three.transport, widgetId: "w", capabilities: [], timeoutMs: 30 })
    const pendingC = c.request("io.example.c")
    three.drop("socket closed (1006)", true)
    assert.match(String(await pendingC.catch((e: unknown) => e)), /no answer within 30 ms/)
  })

  it("websocketTransport: a dropped socket (1006) is resumable, the host unregistering the widget (4410) is not", async () => {
    const uri = await host()
    const sockets: Array<WebSocket> = []
    class KeptSocket extends WebSocket {
      constructor(url: string) {
        super(url)
        sockets.push(this)
      }
    }
    const ends: Array<[string, boolean | undefined]> = []
    const dropped = await websocketTransport(uri, { WebSocket: KeptSocket as unknown as WebSocketConstructor })
    dropped.onClose((reason, resumable) => void ends.push([reason, resumable]))
    sockets[0]!.terminate()
    await until("the drop", () => ends.length === 1)
    const registration = transport.register("other", (send) => engine.openSession({ widget: { ...widget, id: "other" }, send, waitForIframeLoad: false }))
    const unregistered = await websocketTransport(registration.uri, { WebSocket: WebSocket as unknown as WebSocketConstructor })
    unregistered.onClose((reason, resumable) => void ends.push([reason, resumable]))
    unregistered.send({ api: "fromWidget", widgetId: "other", requestId: "1", action: "content_loaded", data: {} })
    await until("a session", () => transport.stats().sessionsOpened === 2)
    registration.unregister()
    await until("the close", () => ends.length === 2)
    assert.deepEqual(ends.map(([, resumable]) => resumable), [true, false])
    assert.match(ends[1]![0], /4410/)
  })
})

describe("postMessageTransport", () => {
  it("sends to the host's origin only, and hears only the host window from the host's origin", () => {
    const posted: Array<[unknown, string]> = []
    const hostWindow = { postMessage: (message: unknown, origin: string) => void posted.push([message, origin]) }
    const self = new EventTarget()
    const transport = postMessageTransport({ hostOrigin: "https://host.example", host: hostWindow, self: self })
    // Node's MessageEvent takes only MessagePorts as source: an Event with a window's fields instead.
    const message = (data: string, origin: string, source: unknown) => Object.assign(new Event("message"), { data, origin, source })
    const heard: Array<unknown> = []
    const stop = transport.onMessage((message) => heard.push(message))
    transport.send({ api: "fromWidget", widgetId: "w", requestId: "1", action: "content_loaded", data: {} })
    assert.deepEqual(posted.map(([, origin]) => origin), ["https://host.example"])
    self.dispatchEvent(message("right", "https://host.example", hostWindow))
    self.dispatchEvent(message("wrong origin", "https://evil.example", hostWindow))
    self.dispatchEvent(message("wrong source", "https://host.example", null))
    stop()
    self.dispatchEvent(message("after stop", "https://host.example", hostWindow))
    assert.deepEqual(heard, ["right"])
  })
})
