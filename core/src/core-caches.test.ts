import { describe, expect, it } from "vitest"
import { CORE_CACHE_LIMITS, createCoreCaches, shareList } from "./core-caches.ts"
import { weigh } from "./session/negotiation.ts"
import { compilePermissions } from "./permissions.ts"
import { classify } from "./policy.ts"
import { RoutingIndex } from "./routing-index.ts"
import { step, stepInPlace } from "./session/reduce.ts"
import { defaultLimits, initialState, type SessionConfig } from "./session/state.ts"
import { emptyInFlight, emptyPendingCalls, emptyPendingToWidget } from "./session/step.ts"

const config: SessionConfig = { widgetId: "w", kind: "room", homeRoom: "!r:x", waitForIframeLoad: false, policy: { rules: [] }, limits: defaultLimits }
const RECEIVE = "org.matrix.msc2762.receive.event:m.room.message"

describe("core caches: owned by whoever passes them in", () => {
  it("compiled permissions are shared within one caches object, and never across two", () => {
    const a = createCoreCaches()
    const b = createCoreCaches()
    const first = compilePermissions([RECEIVE, "m.timeline:*"], a)
    expect(compilePermissions(["m.timeline:*", RECEIVE], a)).toBe(first)
    expect(compilePermissions([RECEIVE, "m.timeline:*"], b)).not.toBe(first)
    expect(a.permissions.size).toBe(1)
    expect(b.permissions.size).toBe(1)
  })

  it("without caches, the same answer is computed afresh and nothing is kept", () => {
    const one = compilePermissions([RECEIVE])
    const two = compilePermissions([RECEIVE])
    expect(two).not.toBe(one)
    expect(two.mayReceive({ type: "m.room.message" })).toBe(true)
    expect(one.mayReceive({ type: "m.room.message" })).toBe(true)
  })

  it("each string-keyed cache stays within its limit, dropping the oldest first", () => {
    const caches = createCoreCaches()
    const oldest = compilePermissions(["m.timeline:!0:x"], caches)
    for (let i = 1; i <= CORE_CACHE_LIMITS.permissions; i++) compilePermissions([`m.timeline:!${i}:x`], caches)
    expect(caches.permissions.size).toBe(CORE_CACHE_LIMITS.permissions)
    expect(compilePermissions(["m.timeline:!0:x"], caches)).not.toBe(oldest)
  })

  it("policy globs are compiled into the caches given, with the same verdicts as without", () => {
    const caches = createCoreCaches()
    const policy = { rules: [{ widgetId: "call-*", capability: "*.receive.event:*", decision: "approve" as const }] }
    expect(classify(policy, { id: "call-1" }, RECEIVE, undefined, caches)._tag).toBe("Approve")
    expect(classify(policy, { id: "call-1" }, RECEIVE)._tag).toBe("Approve")
    expect(classify(policy, { id: "other" }, RECEIVE, undefined, caches)._tag).toBe("Ask")
    expect([...caches.globs.keys()].sort()).toEqual(["*.receive.event:*", "call-*"])
  })

  it("the routing index shares bucket keys through its caches", () => {
    const caches = createCoreCaches()
    const index = new RoutingIndex<string>(caches)
    const permissions = compilePermissions([RECEIVE], caches)
    index.set("a", permissions, "!r:x")
    index.set("b", permissions, "!r:x")
    expect(caches.bucketKeys.get(permissions)).toEqual(["mm.room.message"])
    expect(index.match({ type: "m.room.message", room_id: "!r:x" })).toEqual(["a", "b"])
  })
})

describe("a fresh session's shared empties are constants", () => {
  it("cannot be written", () => {
    const fresh = initialState(config)
    expect(() => (emptyPendingToWidget as Map<string, never>).set("x", undefined as never)).toThrow(TypeError)
    expect(() => (emptyPendingCalls as Map<number, never>).set(1, undefined as never)).toThrow(TypeError)
    expect(() => (emptyInFlight as Set<string>).add("x")).toThrow(TypeError)
    expect(() => (fresh.gathers as Map<number, never>).set(1, undefined as never)).toThrow(TypeError)
    expect(() => ((fresh.counters as { sent: number }).sent = 1)).toThrow(TypeError)
  })

  it("a step in place copies them before writing, and leaves every other fresh state empty", () => {
    const caches = createCoreCaches()
    const step = stepInPlace(initialState(config), "ready", caches, [], (s) => {
      s.sendRequest("notify_capabilities", {}, "notify")
      s.count("errors")
    })
    const { state } = step.done()
    expect(state.pendingToWidget.size).toBe(1)
    expect(state.counters.errors).toBe(1)
    const other = initialState(config)
    expect(other.pendingToWidget.size).toBe(0)
    expect(other.counters.errors).toBe(0)
    // The pending entry is the caches' shared one, frozen.
    const entry = [...state.pendingToWidget.values()][0]!
    expect(caches.freshPending.get("notify_capabilities")?.get("notify")).toBe(entry)
    expect(Object.isFrozen(entry)).toBe(true)
  })

  it("a collection a step empties goes back to the shared empty, and the next step that needs one reuses it", () => {
    const caches = createCoreCaches()
    const sent = stepInPlace(initialState(config), "ready", caches, [], (s) => void s.sendRequest("notify_capabilities", {}, "notify")).done()
    const map = sent.state.pendingToWidget
    const [requestId] = [...map.keys()]
    const settled = stepInPlace(sent.state, "ready", caches, [], (s) => s.settle(requestId!)).done()
    expect(settled.state.pendingToWidget).toBe(emptyPendingToWidget)
    expect(caches.spareMaps).toEqual([map])
    // Another session's step takes it: it arrives empty, and the spares are left with none.
    const other = stepInPlace(initialState(config), "ready", caches, [], (s) => void s.sendRequest("notify_capabilities", {}, "notify")).done()
    expect(other.state.pendingToWidget).toBe(map)
    expect(other.state.pendingToWidget.size).toBe(1)
    expect(caches.spareMaps).toEqual([])
    // A step on a copy (not in place) never hands over the state it was given.
    const copied = step(other.state, "ready", caches, (s) => s.settle([...map.keys()][0]!)).done()
    expect(copied.state.pendingToWidget).toBe(emptyPendingToWidget)
    expect(other.state.pendingToWidget.size).toBe(1)
    expect(caches.spareMaps).toHaveLength(1)
    expect(caches.spareMaps[0]).not.toBe(map)
  })
})

describe("shared capability lists", () => {
  const caps = ["m.send.event:m.room.message", RECEIVE]

  it("one frozen copy per contents and order, within one caches object only", () => {
    const caches = createCoreCaches()
    const first = shareList(caches, [...caps])
    expect(Object.isFrozen(first)).toBe(true)
    expect(shareList(caches, [...caps])).toBe(first)
    expect(shareList(caches, [...caps].reverse())).not.toBe(first)
    expect(shareList(createCoreCaches(), [...caps])).not.toBe(first)
    // Lists whose joined form would collide are told apart.
    expect(shareList(caches, ["a,b"])).not.toBe(shareList(caches, ["a", "b"]))
  })

  it("stays within its limit, and keeps a very long list as it is", () => {
    const caches = createCoreCaches()
    for (let i = 0; i <= CORE_CACHE_LIMITS.lists; i++) shareList(caches, [`c${i}`])
    expect(caches.lists.size).toBe(CORE_CACHE_LIMITS.lists)
    const long = Array.from({ length: 2_000 }, (_, i) => `org.example.capability.${i}`)
    expect(shareList(caches, long)).toBe(long)
    expect(Object.isFrozen(long)).toBe(false)
  })

  it("sessions approved alike share their requested and approved lists", () => {
    const caches = createCoreCaches()
    const policy = {
      rules: [
        { capability: "m.send.event:*", decision: "approve" as const },
        { capability: RECEIVE, decision: "deny" as const }
      ]
    }
    const negotiated = () =>
      stepInPlace(initialState({ ...config, policy }), "negotiating", caches, [], (s) => {
        s.sendRequest("capabilities", {}, "capabilities")
        weigh(s, caps)
      }).done().state
    const one = negotiated()
    const two = negotiated()
    expect([one.requested, one.approved, one.denied]).toEqual([caps, [caps[0]], [RECEIVE]])
    expect(two.requested).toBe(one.requested)
    expect(two.approved).toBe(one.approved)
    expect(two.denied).toBe(one.denied)
    for (const list of [one.requested, one.approved, one.denied]) expect(Object.isFrozen(list)).toBe(true)
  })
})
