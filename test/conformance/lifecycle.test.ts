/**
 * Lifecycle events for the embedding client: phase changes in the chart's order, the approved set
 * as it changes, the close with its reason (last), and failures of the client's callbacks. Given
 * a session's script, want the events its listeners (and the engine-wide `onLifecycle`) hear.
 */
import { createEngine, type LifecycleEvent } from "@widgethost/engine"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver, simulatedClock, widgetDefinition } from "../src/index.ts"
import { SimulatedClock } from "xstate"
import { fromEffectPort } from "@widgethost/core/effect"

const CAP = "m.send.event:m.room.message"
const MORE = "m.receive.event:m.room.message"

/** A harness whose session's every lifecycle event is recorded. */
const listening = () => {
  const h = new Harness({ approver: approveAll })
  const events: LifecycleEvent[] = []
  for (const type of ["phase", "capabilities", "closed", "error"] as const) h.session.on(type, (event) => events.push(event))
  return { h, events }
}

describe("lifecycle events", () => {
  it("startup: loading → negotiating → ready, and the grant", async () => {
    const { h, events } = listening()
    await h.ready([CAP])
    expect(events).toEqual([
      { type: "phase", phase: "negotiating", previous: "loading" },
      { type: "phase", phase: "ready", previous: "negotiating" },
      { type: "capabilities", requested: [CAP], approved: [CAP], denied: [] }
    ])
  })

  it("MSC2974 re-exchange: ready → renegotiating → ready, and the grown set; a denial is in denied", async () => {
    const { h, events } = listening()
    await h.ready([CAP])
    events.length = 0
    h.request("org.matrix.msc2974.request_capabilities", { capabilities: [MORE, "org.example.unknown"] })
    await flush()
    h.ackAll()
    await flush()
    expect(events).toEqual([
      { type: "phase", phase: "renegotiating", previous: "ready" },
      { type: "phase", phase: "ready", previous: "renegotiating" },
      { type: "capabilities", requested: [CAP, MORE, "org.example.unknown"], approved: [CAP, MORE], denied: ["org.example.unknown"] }
    ])
  })

  it("nothing is heard while nothing changes", async () => {
    const { h, events } = listening()
    await h.ready([CAP])
    events.length = 0
    for (let i = 0; i < 5; i++) h.request("send_event", { type: "m.room.message", content: { body: "hi" } })
    h.request("supported_api_versions")
    await flush()
    h.take()
    expect(events).toEqual([])
  })

  it("a new document: back to loading, the approved set empty", async () => {
    const { h, events } = listening()
    await h.ready([CAP])
    events.length = 0
    h.session.frameLoaded()
    h.take()
    expect(events).toEqual([
      { type: "phase", phase: "negotiating", previous: "ready" },
      { type: "capabilities", requested: [], approved: [], denied: [] }
    ])
  })

  it("the close, with its reason, last; nothing after it", async () => {
    const { h, events } = listening()
    await h.ready([CAP])
    events.length = 0
    h.session.close("user left the room")
    h.take()
    h.session.close("again")
    h.take()
    expect(events).toEqual([
      { type: "phase", phase: "closed", previous: "ready" },
      { type: "closed", reason: "user left the room" }
    ])
  })

  it("a callback of the client failing is an error event (and onError is still told)", async () => {
    const faults: string[] = []
    const h = new Harness({ approver: approveAll, onError: (_e, where) => faults.push(where.fault) })
    // A second session on the same engine whose sink throws.
    const broken = h.engine.openSession({ widget: widgetDefinition({ id: "w2" }), send: () => { throw new Error("sink down") } })
    const events: LifecycleEvent[] = []
    broken.on("error", (event) => events.push(event))
    broken.frameLoaded()
    h.engine.flush()
    expect(events).toMatchObject([{ type: "error", fault: "send", error: new Error("sink down") }])
    expect(faults).toEqual(["send"])
  })

  it("a listener that throws is reported to onError, once, and does not stop the others", async () => {
    const faults: string[] = []
    const h = new Harness({ approver: approveAll, onError: (_e, where) => faults.push(where.fault) })
    const heard: string[] = []
    h.session.on("phase", () => {
      throw new Error("listener bug")
    })
    h.session.on("phase", ({ phase }) => heard.push(phase))
    h.session.frameLoaded()
    h.take()
    expect(heard).toEqual(["negotiating"])
    expect(faults).toEqual(["listener"])
  })

  it("unsubscribing stops the events", async () => {
    const h = new Harness({ approver: approveAll })
    const heard: string[] = []
    const stop = h.session.on("phase", ({ phase }) => heard.push(phase))
    h.session.frameLoaded()
    h.take()
    stop()
    h.ackAll([])
    await flush()
    expect(heard).toEqual(["negotiating"])
  })

  it("the engine-wide onLifecycle hears every session, without subscribing to each", async () => {
    const heard: Array<[string, string]> = []
    const clock = new SimulatedClock()
    const engine = createEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver()), clock: simulatedClock(clock), onLifecycle: (sessionId, _widgetId, event) => heard.push([sessionId, event.type === "phase" ? event.phase : event.type]) })
    const a = engine.openSession({ widget: widgetDefinition({ id: "a" }), send: () => {} })
    const b = engine.openSession({ widget: widgetDefinition({ id: "b" }), send: () => {} })
    a.frameLoaded()
    b.frameLoaded()
    engine.flush()
    b.close("done")
    engine.flush()
    expect(heard).toEqual([
      [a.sessionId, "negotiating"],
      [b.sessionId, "negotiating"],
      [b.sessionId, "closed"],
      [b.sessionId, "closed"]
    ])
  })

  it("a listener may use the session: a toWidget request as soon as it is ready, answered", async () => {
    const h = new Harness({ approver: approveAll })
    const sent: Array<Promise<unknown>> = []
    h.session.on("phase", ({ phase }) => {
      if (phase === "ready") sent.push(h.session.request("visibility", { visible: true }))
    })
    const seen = await h.ready([]) // answers every toWidget request with {}
    expect(sent).toHaveLength(1)
    expect(Harness.requests(seen).map((m) => m.action)).toContain("visibility")
    await expect(sent[0]).resolves.toEqual({})
  })
})
