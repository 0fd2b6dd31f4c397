import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, assert, describe, it, vi } from "vitest"
import { SimulatedClock } from "xstate"
import { isResponse, type RoomEvent, type WidgetDefinition, type WidgetMessage } from "@widgethost/core"
import { createEngine, type Engine, type EngineSession } from "@widgethost/engine"
import { roomWidget } from "../src/engine-fixture.ts"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { DeliveryJournal } from "@widgethost/service"
import { deliveredEvent, DeliveryResume, type DeliveryResumeOptions, type ResumeSource } from "@widgethost/service"
import type { MissedEventsRequest } from "@widgethost/homeserver-client"
import { TRANSPORT_GAP_ACTION } from "@widgethost/websocket"
import { fromEffectPort } from "@widgethost/core/effect"

/*
 * The resume step between a real engine and a recording "transport", over the in-memory
 * homeserver. Every message handed on counts as written to the socket at once (the transport's
 * write hook records it in a real journal). The homeserver side of a catch-up is a faithful
 * reading of the in-memory timeline; the HTTP reader itself is tested in missed-events.test.ts.
 */

const ROOM = "!r:hs"
const widget: WidgetDefinition = { ...roomWidget("w", ROOM), waitForIframeLoad: false, transports: ["m.websockets"] }
const ref = { id: "w", roomId: ROOM }
const MESSAGES = "m.receive.event:m.room.message"

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const setup = (options: Partial<Pick<DeliveryResumeOptions, "maxEvents">> = {}) => {
  const homeserver = makeInMemoryHomeserver({ rooms: [ROOM] })
  const positions = new Map<string, string>()
  homeserver.subscribe((update) => {
    if (update._tag === "RoomEvent") positions.set(update.event.room_id, update.event.event_id)
  })
  // A room has history before any widget (its creation): the port's position starts there.
  homeserver.inject({ type: "m.room.create", room_id: ROOM, sender: "@alice:hs", state_key: "", content: {} })
  // Simulated engine time: a request nobody answered shows up as a timeout when the test says so.
  const clock = new SimulatedClock()
  const engine: Engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: async ({ requested }) => requested, clock })
  cleanups.push(() => engine.stop())
  const dir = mkdtempSync(join(tmpdir(), "widgethost-resume-"))
  const journal = DeliveryJournal.open(join(dir, "deliveries.jsonl"))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  cleanups.push(() => journal.close())

  let hold: Promise<void> | undefined
  let fail: Error | undefined
  const reads: Array<MissedEventsRequest> = []
  const source: ResumeSource = {
    roomPositions: () => new Map(positions),
    readMissed: async (request) => {
      reads.push(request)
      await hold
      if (fail !== undefined) throw fail
      const timeline = homeserver.rooms.get(request.roomId)!.timeline
      const end = timeline.findIndex((e) => e.event_id === request.upTo)
      let start = end
      while (start >= 0 && !request.seen(timeline[start]!.event_id)) start--
      const kept = timeline.slice(start + 1, end + 1).filter(request.keep)
      const over = Math.max(0, kept.length - (request.maxEvents ?? 1000))
      return { events: kept.slice(over), skipped: over, undecryptable: 0 }
    }
  }

  /** A widget session behind the resume step; the widget answers everything, a turn later. */
  const open = (capabilities: ReadonlyArray<string>, versions: ReadonlyArray<string> = ["0.0.2"]) => {
    const sent: Array<WidgetMessage> = []
    const answer = (message: WidgetMessage) => {
      const response = message.action === "capabilities" ? { capabilities } : message.action === "supported_api_versions" ? { supported_versions: versions } : {}
      const reply = { ...message, response }
      if (!gate.consume(reply)) session.receive(reply)
    }
    const gate = new DeliveryResume({
      widget: ref,
      homeRoom: ROOM,
      journal,
      source,
      answer: (message) => session.receive(message),
      send: (message) => {
        sent.push(message)
        const delivered = deliveredEvent(message)
        if (delivered !== undefined) journal.record(ref, delivered.room, delivered.event)
        if (message.api === "toWidget" && !isResponse(message)) setImmediate(() => answer(message))
      },
      ...options
    })
    const session: EngineSession = engine.openSession({ widget, waitForIframeLoad: false, send: gate.sink })
    session.onClose(() => gate.close())
    session.receive({ api: "fromWidget", widgetId: "w", requestId: "hello", action: "content_loaded", data: {} })
    const requests = (action: string) => sent.filter((m) => m.api === "toWidget" && !isResponse(m) && m.action === action)
    return {
      session,
      sent,
      requests,
      /** Bodies (or state keys) of the room events delivered, in order. */
      events: () =>
        requests("send_event").map((m) => {
          const event = m.data as unknown as RoomEvent
          return typeof event.content["body"] === "string" ? event.content["body"] : event.type
        }),
      ready: () => vi.waitFor(() => assert.isNotEmpty(requests("notify_capabilities")))
    }
  }

  const say = (body: string, eventId?: string) =>
    homeserver.inject({ type: "m.room.message", room_id: ROOM, sender: "@bob:hs", content: { msgtype: "m.text", body }, ...(eventId === undefined ? {} : { event_id: eventId }) })

  return {
    homeserver,
    journal,
    clock,
    reads,
    open,
    say,
    holdReads: () => {
      let release!: () => void
      hold = new Promise((resolve) => (release = resolve))
      return () => {
        hold = undefined
        release()
      }
    },
    failReads: (error: Error) => (fail = error)
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

describe("delivery resume", () => {
  it("a first session starts where the port is; the next session gets what came after it, then live events", async () => {
    const { open, say, journal } = setup()
    say("before any session")
    const first = open([MESSAGES])
    await first.ready()
    await settle()
    say("live 1")
    await vi.waitFor(() => assert.deepEqual(first.events(), ["live 1"]))
    first.session.close()
    say("while away 1")
    say("while away 2")

    const second = open([MESSAGES])
    await second.ready()
    await vi.waitFor(() => assert.deepEqual(second.events(), ["while away 1", "while away 2"]))
    say("live 2")
    await vi.waitFor(() => assert.deepEqual(second.events(), ["while away 1", "while away 2", "live 2"]))
    assert.match(second.requests("send_event")[0]!.requestId, /^widgethost-resume-/)
    assert.equal(journal.position(ref, ROOM), second.requests("send_event").at(-1)!.data["event_id"])
  })

  it("live events that arrive while it catches up wait, and follow in order; an event the widget has is not sent again", async () => {
    const { open, say, holdReads, clock } = setup()
    const first = open([MESSAGES])
    await first.ready()
    await settle()
    const seen = say("seen")
    await vi.waitFor(() => assert.deepEqual(first.events(), ["seen"]))
    first.session.close()
    say("missed")
    const release = holdReads()
    const second = open([MESSAGES])
    await second.ready()
    await settle()
    say("during catch-up")
    say("seen, repeated by the port after a crash", seen.event_id)
    await settle()
    assert.deepEqual(second.events(), [], "nothing before the missed ones")
    release()
    await vi.waitFor(() => assert.deepEqual(second.events(), ["missed", "during catch-up"]))
    await settle()
    assert.deepEqual(second.events(), ["missed", "during catch-up"])
    for (let sweep = 0; sweep < 6; sweep++) {
      clock.increment(3_000) // the engine's timeout sweeps, one quarter of the 10 s timeout each
      await settle()
    }
    const { phase, counters } = second.session.info()
    assert.equal(phase, "ready")
    assert.include(counters, { timedOut: 0, unmatched: 0 }, "the engine's request for the repeated event was answered on the widget's behalf")
  })

  it("capabilities still apply: only what the approved capabilities let the widget receive is replayed", async () => {
    const { open, say, homeserver } = setup()
    const first = open([MESSAGES])
    await first.ready()
    await settle()
    first.session.close()
    homeserver.inject({ type: "m.sticker", room_id: ROOM, sender: "@bob:hs", content: { body: "sticker" } })
    say("message")
    homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:hs", state_key: "", content: { topic: "t" } })
    const second = open([MESSAGES])
    await second.ready()
    await vi.waitFor(() => assert.deepEqual(second.events(), ["message"]))
    await settle()
    assert.deepEqual(second.events(), ["message"])
  })

  it("state changes are replayed to widgets without update_state, and left to the fresh state load for those with it", async () => {
    const topic = "m.receive.state_event:m.room.topic"
    const { open, homeserver } = setup()
    const change = (text: string) => homeserver.inject({ type: "m.room.topic", room_id: ROOM, sender: "@bob:hs", state_key: "", content: { topic: text } })
    const plain = open([MESSAGES, topic])
    await plain.ready()
    await settle()
    plain.session.close()
    change("missed by the plain widget")
    const plainAgain = open([MESSAGES, topic])
    await vi.waitFor(() => assert.deepEqual(plainAgain.requests("send_event").map((m) => m.data["content"]), [{ topic: "missed by the plain widget" }]))

    plainAgain.session.close()
    change("newer")
    const updating = open([MESSAGES, topic], ["0.0.2", "org.matrix.msc2762_update_state"])
    await vi.waitFor(() => assert.isNotEmpty(updating.requests("update_state")))
    await settle()
    assert.deepEqual(updating.requests("send_event"), [], "no old state replayed over the current one")
  })

  it("more than maxEvents missed: a gap notice first, then the newest", async () => {
    const { open, say } = setup({ maxEvents: 2 })
    const first = open([MESSAGES])
    await first.ready()
    await settle()
    first.session.close()
    for (let n = 1; n <= 5; n++) say(`m${n}`)
    const second = open([MESSAGES])
    await vi.waitFor(() => assert.deepEqual(second.events(), ["m4", "m5"]))
    const gaps = second.requests(TRANSPORT_GAP_ACTION)
    assert.deepEqual(gaps.map((m) => m.data), [{ dropped: 3, reason: "resume", room_id: ROOM }])
    assert.isBelow(second.sent.indexOf(gaps[0]!), second.sent.indexOf(second.requests("send_event")[0]!))
  })

  it("when the homeserver cannot be read: a gap notice with an unknown count, then live events as usual", async () => {
    const { open, say, failReads } = setup()
    const first = open([MESSAGES])
    await first.ready()
    await settle()
    first.session.close()
    say("lost to the failure")
    failReads(new Error("homeserver down"))
    const second = open([MESSAGES])
    await vi.waitFor(() => assert.deepEqual(second.requests(TRANSPORT_GAP_ACTION).map((m) => m.data), [{ dropped: null, reason: "resume", room_id: ROOM }]))
    say("live")
    await vi.waitFor(() => assert.deepEqual(second.events(), ["live"]))
  })
})
