import { assert, describe, it } from "vitest"
import type { ApprovalRequest } from "@widgethost/engine"
import { flush, Harness, widgetDefinition } from "@widgethost/testing"
import { type ApprovalChange, ApprovalQueue, parseDecision } from "./approvals.ts"

const STICKER = "m.sticker"
const SEND = "org.matrix.msc2762.send.event:m.room.message"
const REACT = "org.matrix.msc2762.send.event:m.reaction"
const READ = "org.matrix.msc2762.receive.event:m.room.message"

const request = (requested: ReadonlyArray<string>, controller = new AbortController()): ApprovalRequest & { controller: AbortController } => ({
  sessionId: "w1#0",
  widgetId: "w1",
  widget: widgetDefinition(),
  origin: undefined,
  requested,
  capabilities: requested.map((capability) => ({ requested: capability, canonical: capability, meaning: "" })),
  alreadyApproved: [],
  signal: controller.signal,
  controller
})

const counterIds = () => {
  let n = 0
  return () => `a${n++}`
}

describe("ApprovalQueue", () => {
  it("queues a prompt with its details until it is decided", async () => {
    const queue = new ApprovalQueue({ now: () => 42, newId: counterIds() })
    const widget = widgetDefinition({ name: "Sticker picker", url: "https://stickers.example/#ws=$matrix_websocket_uri" })
    const answer = queue.approver({ ...request([STICKER, SEND]), widget, origin: "https://stickers.example", alreadyApproved: [READ] })
    assert.deepEqual(queue.pending(), [{ id: "a0", sessionId: "w1#0", widgetId: "w1", widgetName: "Sticker picker", widgetUrl: "https://stickers.example/#ws=$matrix_websocket_uri", origin: "https://stickers.example", requested: [STICKER, SEND], meanings: ["send stickers to the room you are viewing", "send “m.room.message” events"], alreadyApproved: [READ], createdAt: 42 }])
    const outcome = queue.decide("a0", { approve: "all" })
    assert.equal(outcome._tag, "Decided")
    assert.deepEqual(await answer, [STICKER, SEND])
    assert.equal(queue.size, 0)
  })

  it("a prompt without a known origin (a native client) says null; a widget without a name has none", async () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    void queue.approver({ ...request([SEND]), widget: widgetDefinition({ url: "https://w.example/" }) })
    const [pending] = queue.pending()
    assert.equal(pending?.origin, null)
    assert.equal(pending?.widgetUrl, "https://w.example/")
    assert.notProperty(pending, "widgetName")
    queue.decide("a0", { deny: "all" })
  })

  it("approves a subset: the rest is denied", async () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    const answer = queue.approver(request([STICKER, SEND, READ]))
    const outcome = queue.decide("a0", { approve: [SEND] })
    assert.deepEqual(outcome._tag === "Decided" ? [outcome.approved, outcome.denied] : outcome, [[SEND], [STICKER, READ]])
    assert.deepEqual(await answer, [SEND])
  })

  it("deny wins over approve, and deny all approves nothing", async () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    const first = queue.approver(request([STICKER, SEND]))
    const second = queue.approver(request([STICKER]))
    queue.decide("a0", { approve: "all", deny: [STICKER] })
    queue.decide("a1", { deny: "all" })
    assert.deepEqual(await first, [SEND])
    assert.deepEqual(await second, [])
  })

  it("refuses a capability the prompt did not ask for, and an unknown id, deciding nothing", () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    void queue.approver(request([STICKER]))
    assert.deepEqual(queue.decide("a0", { approve: [SEND] }), { _tag: "Invalid", issue: `"${SEND}" was not requested by this prompt` })
    assert.deepEqual(queue.decide("nope", { approve: "all" }), { _tag: "NotFound", id: "nope" })
    assert.equal(queue.size, 1)
    assert.equal(queue.decide("a0", { approve: "all" })._tag, "Decided")
    assert.equal(queue.decide("a0", { approve: "all" })._tag, "NotFound", "a prompt is decided once")
  })

  it("withdraws a prompt when its signal aborts, answering nothing", async () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    const changes: ApprovalChange["kind"][] = []
    queue.onChange((change) => changes.push(change.kind))
    const r = request([STICKER])
    const answer = queue.approver(r)
    r.controller.abort()
    assert.deepEqual(await answer, [])
    assert.equal(queue.size, 0)
    assert.deepEqual(changes, ["added", "withdrawn"])
    assert.equal(queue.decide("a0", { approve: "all" })._tag, "NotFound")
  })

  it("never queues a request whose signal has already aborted", async () => {
    const queue = new ApprovalQueue()
    const controller = new AbortController()
    controller.abort()
    assert.deepEqual(await queue.approver(request([STICKER], controller)), [])
    assert.equal(queue.size, 0)
  })

  it("announces arrivals and decisions; a throwing listener does not stop the others", () => {
    const queue = new ApprovalQueue({ newId: counterIds() })
    const seen: string[] = []
    queue.onChange(() => {
      throw new Error("console gone")
    })
    const stop = queue.onChange((change) => seen.push(`${change.kind}:${change.approval.id}${change.kind === "decided" ? `:${change.approved.join()}` : ""}`))
    void queue.approver(request([STICKER]))
    queue.decide("a0", { approve: [STICKER] })
    stop()
    void queue.approver(request([STICKER]))
    assert.deepEqual(seen, ["added:a0", `decided:a0:${STICKER}`])
  })

  it("autoDecide answers before queueing; undefined queues", async () => {
    const queue = new ApprovalQueue({ newId: counterIds(), autoDecide: (approval) => (approval.requested.includes(STICKER) ? { approve: [STICKER] } : undefined) })
    assert.deepEqual(await queue.approver(request([STICKER, SEND])), [STICKER])
    assert.equal(queue.size, 0)
    void queue.approver(request([SEND]))
    assert.equal(queue.size, 1)
  })

  it("denies at once beyond maxPending", async () => {
    const queue = new ApprovalQueue({ maxPending: 1 })
    void queue.approver(request([STICKER]))
    assert.deepEqual(await queue.approver(request([SEND])), [])
    assert.equal(queue.size, 1)
    assert.equal(queue.refused, 1)
  })

  it("makes unguessable, distinct ids by default", () => {
    const queue = new ApprovalQueue()
    for (let i = 0; i < 50; i++) void queue.approver(request([STICKER]))
    const ids = queue.pending().map((approval) => approval.id)
    assert.equal(new Set(ids).size, 50)
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{12}$/)
  })
})

describe("parseDecision", () => {
  it.each([
    { name: "approve list", body: { approve: [STICKER] }, ok: true },
    { name: "approve all, deny list", body: { approve: "all", deny: [STICKER] }, ok: true },
    { name: "deny only", body: { deny: "all" }, ok: true },
    { name: "empty object", body: {}, ok: false },
    { name: "not an object", body: [STICKER], ok: false },
    { name: "null", body: null, ok: false },
    { name: "approve a string", body: { approve: STICKER }, ok: false },
    { name: "approve numbers", body: { approve: [1] }, ok: false },
    { name: "deny true", body: { deny: true }, ok: false }
  ])("$name", ({ body, ok }) => assert.equal(parseDecision(body).ok, ok))
})

describe("ApprovalQueue as the engine's approver", () => {
  const notified = (harness: Harness) =>
    Harness.requests(harness.received)
      .filter((m) => m.action === "notify_capabilities")
      .map((m) => m.data)

  it("a decision reaches the widget as notify_capabilities", async () => {
    const queue = new ApprovalQueue()
    const harness = new Harness({ approver: queue.approver })
    await harness.ready([REACT, SEND])
    const [prompt] = queue.pending()
    assert.deepEqual(prompt?.requested, [REACT, SEND])
    assert.equal(prompt?.sessionId, harness.session.sessionId)
    assert.equal(harness.phase, "negotiating")
    queue.decide(prompt?.id ?? "", { approve: [SEND] })
    await flush()
    assert.deepEqual(notified(harness), [{ requested: [REACT, SEND], approved: [SEND] }])
    assert.equal(harness.phase, "ready")
    assert.deepEqual(harness.session.info().denied, [REACT])
  })

  it("the engine's approval timeout withdraws the prompt and denies", async () => {
    const queue = new ApprovalQueue()
    const harness = new Harness({ approver: queue.approver, limits: { approvalTimeoutMs: 1000 } })
    const changes: ApprovalChange["kind"][] = []
    queue.onChange((change) => changes.push(change.kind))
    await harness.ready([REACT])
    assert.equal(queue.size, 1)
    await harness.advance(1000)
    assert.equal(queue.size, 0)
    assert.deepEqual(changes, ["added", "withdrawn"])
    assert.deepEqual(notified(harness), [{ requested: [REACT], approved: [] }])
  })

  it("closing the session withdraws its prompt", async () => {
    const queue = new ApprovalQueue()
    const harness = new Harness({ approver: queue.approver })
    await harness.ready([REACT])
    assert.equal(queue.size, 1)
    harness.session.close("bye")
    await flush()
    assert.equal(queue.size, 0)
  })
})
