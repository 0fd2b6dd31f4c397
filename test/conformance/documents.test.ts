/**
 * Conformance: a session's grants belong to the document that negotiated them. When the widget's
 * frame loads a new document (a reload, or the widget navigating itself), the old document's
 * session ends and the new one negotiates from nothing; matrix-widget-api's ClientWidgetApi
 * renegotiates on every load too. The policy may re-approve at once; nothing carries over.
 */
import type { WidgetMessage } from "@widgethost/core"
import type { ApprovalRequest } from "@widgethost/engine"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver, ROOM } from "../src/index.ts"
import { objectContaining } from "../src/matchers.ts"

const SEND = "m.send.event:m.room.message"
const RECEIVE = "m.receive.event:m.room.message"
const actions = (messages: ReadonlyArray<WidgetMessage>) => Harness.requests(messages).map((m) => m.action)
const text = (body: string) => ({ type: "m.room.message", content: { msgtype: "m.text", body } })

/** What a new document's widget says first, per start signal, and what the host must then ask. */
const reloads: ReadonlyArray<{
  readonly name: string
  readonly waitForIframeLoad: boolean
  /** The signals of the new document, in the order they reach the host. */
  readonly signals: ReadonlyArray<"load" | "content_loaded">
  /** The host's requests to the widget after those signals. */
  readonly want: ReadonlyArray<string>
}> = [
  { name: "waitForIframeLoad true: the new document's load", waitForIframeLoad: true, signals: ["load"], want: ["capabilities"] },
  { name: "waitForIframeLoad false: load, then content_loaded", waitForIframeLoad: false, signals: ["load", "content_loaded"], want: ["capabilities"] },
  { name: "waitForIframeLoad false: content_loaded overtakes the load", waitForIframeLoad: false, signals: ["content_loaded", "load"], want: ["capabilities"] },
  { name: "waitForIframeLoad false: load alone ends the old document and waits", waitForIframeLoad: false, signals: ["load"], want: [] },
  { name: "websocket (no frame): a second content_loaded is the new document speaking first", waitForIframeLoad: false, signals: ["content_loaded"], want: ["capabilities"] }
]

/** A session of the first document, ready with `SEND` and `RECEIVE`, however it started. */
const readyFirstDocument = async (waitForIframeLoad: boolean, options: ConstructorParameters<typeof Harness>[0] = {}) => {
  const h = new Harness({ approver: approveAll, ...options, widget: { waitForIframeLoad } })
  if (!waitForIframeLoad) h.request("content_loaded")
  await h.ready([SEND, RECEIVE])
  expect(h.phase).toBe("ready")
  h.take()
  return h
}

const signal = (h: Harness, what: "load" | "content_loaded") => (what === "load" ? h.session.frameLoaded() : h.request("content_loaded"))

describe("a new document renegotiates from nothing", () => {
  it.each(reloads)("$name", async ({ waitForIframeLoad, signals, want }) => {
    const h = await readyFirstDocument(waitForIframeLoad)
    for (const s of signals) signal(h, s)
    const out = h.take()
    expect(actions(out)).toEqual(want)
    expect(h.session.info()).toMatchObject({ approved: [], requested: [], counters: objectContaining({ documents: 1 }) })
    // Nothing granted to the old document serves the new one.
    const id = h.request("send_event", text("from the new document"))
    await flush()
    expect(h.responseTo(id)).toMatchObject({ error: { code: "WrongPhase" } })
    h.homeserver.inject({ ...text("live"), room_id: ROOM, sender: "@bob:localhost" })
    await flush()
    expect(h.take().filter((m) => m.action === "send_event" && m.api === "toWidget")).toEqual([])
    expect(h.homeserver.calls.filter((c) => c.method === "sendEvent")).toHaveLength(0)
  })

  it("the new document is served once approved again, with only what it asked for", async () => {
    const h = await readyFirstDocument(true)
    h.session.frameLoaded()
    h.ackAll([SEND])
    await flush()
    const notify = Harness.requests(h.take()).find((m) => m.action === "notify_capabilities")
    expect(notify?.data).toEqual({ requested: [SEND], approved: [SEND] })
    expect(h.phase).toBe("ready")
    const id = h.request("send_event", text("now allowed"))
    await flush()
    expect(h.responseTo(id)).toMatchObject({ room_id: ROOM })
    // It asked for sending only: receiving, granted to the old document, is gone.
    h.homeserver.inject({ ...text("live"), room_id: ROOM, sender: "@bob:localhost" })
    await flush()
    expect(h.take().filter((m) => m.action === "send_event" && m.api === "toWidget")).toEqual([])
  })

  it("the policy may re-approve at once: no prompt, same result", async () => {
    const prompts: ApprovalRequest[] = []
    const h = await readyFirstDocument(true, {
      policy: { rules: [{ capability: "m.send.event:*", decision: "approve" }] },
      approver: async (request) => (prompts.push(request), request.requested)
    })
    const promptsBefore = prompts.length
    h.session.frameLoaded()
    h.ackAll([SEND])
    await flush()
    expect(prompts).toHaveLength(promptsBefore)
    expect(h.session.info().approved).toEqual([SEND])
  })

  it("the first load of a document that already spoke is not a new document", async () => {
    // waitForIframeLoad false: content_loaded may reach the host before the frame's load event.
    const h = new Harness({ approver: approveAll, widget: { waitForIframeLoad: false } })
    h.request("content_loaded")
    h.ackAll([SEND])
    await flush()
    h.session.frameLoaded()
    await flush()
    expect(h.phase).toBe("ready")
    expect(h.session.info().counters.documents).toBe(0)
  })

  it("a prompt open for the old document is withdrawn, and its late answer approves nothing", async () => {
    let answer: ((approved: ReadonlyArray<string>) => void) | undefined
    const prompts: ApprovalRequest[] = []
    const h = new Harness({
      approver: (request) => {
        prompts.push(request)
        return new Promise((resolve) => (answer = resolve))
      }
    })
    h.session.frameLoaded()
    h.ackAll([SEND])
    await flush()
    expect(prompts).toHaveLength(1)
    const { signal: firstSignal } = prompts[0]!
    h.session.frameLoaded()
    await flush()
    expect(firstSignal.aborted).toBe(true)
    answer!([SEND])
    await flush()
    expect(h.session.info().approved).toEqual([])
    expect(h.phase).toBe("negotiating")
  })

  it("a call still in flight for the old document never answers the new one", async () => {
    const memory = makeInMemoryHomeserver()
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const homeserver = { ...memory, sendEvent: (request: Parameters<typeof memory.sendEvent>[0]) => Effect.flatMap(Effect.promise(() => gate), () => memory.sendEvent(request)) }
    const h = await readyFirstDocument(true, { homeserver })
    const old = h.request("send_event", text("sent by the old document"))
    await flush()
    h.session.frameLoaded()
    h.take()
    release()
    await flush()
    expect(h.take().filter((m) => m.requestId === old)).toEqual([])
    // The send itself completed at the homeserver: nothing is lost, only the stale answer.
    expect(memory.calls.filter((c) => c.method === "sendEvent")).toHaveLength(1)
  })

  it("capabilities the user denied stay denied: a widget cannot re-prompt by reloading", async () => {
    const prompts: ApprovalRequest[] = []
    const h = new Harness({ approver: async (request) => (prompts.push(request), []) })
    await h.ready([SEND])
    expect(prompts).toHaveLength(1)
    h.session.frameLoaded()
    h.ackAll([SEND])
    await flush()
    expect(prompts).toHaveLength(1)
    expect(h.session.info()).toMatchObject({ approved: [], denied: [SEND], phase: "ready" })
  })

  it("the old document's TURN watch ends with it", async () => {
    const h = await readyFirstDocument(true)
    h.session.frameLoaded()
    h.ackAll(["m.turn_servers"])
    await flush()
    const watch = h.request("watch_turn_servers")
    await flush()
    expect(h.responseTo(watch)).toEqual({})
    expect(h.engine.turnPoller.watching).toBe(1)
    h.session.frameLoaded()
    await flush()
    expect(h.engine.turnPoller.watching).toBe(0)
  })

  it("the embedder hears of it", async () => {
    const reports: string[] = []
    const h = await readyFirstDocument(true, { onReport: (_session, _widget, report) => reports.push(report._tag) })
    h.session.frameLoaded()
    await flush()
    expect(reports).toContain("DocumentReplaced")
    expect(h.responseTo(h.request("supported_api_versions"))).toEqual({ supported_versions: expect.any(Array) as unknown })
    expect(h.take().some((m) => (m as { response?: { error?: unknown } }).response?.error !== undefined)).toBe(false)
  })
})
