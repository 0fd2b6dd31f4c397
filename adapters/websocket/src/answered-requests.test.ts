/**
 * Property: the widget's requests across links that drop, with `AnsweredRequests` deciding on
 * every inbound request the way the transport's I/O does. A model of the wire: the widget sends
 * requests and, on each resume, sends again every one it has no answer for (same id, as the
 * widget-client does); the session runs what reaches it and answers in any order, the answers
 * queue while the link is down and are written once it is up (before anything the widget sends
 * on the new link, as the transport flushes on connect); a drop loses whatever is on the wire.
 * Want, for any schedule: the session runs each request at most once, the widget hears at most
 * one answer per request, and once the link stays up every request has exactly one answer
 * (the session's, or the transport's error when the answer was let go past the byte budget).
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { AnsweredRequests } from "./answered-requests.ts"

type Op =
  | { readonly _tag: "Send" }
  | { readonly _tag: "Answer"; readonly pick: number }
  | { readonly _tag: "Deliver"; readonly count: number }
  | { readonly _tag: "Drop" }
  | { readonly _tag: "Resume" }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ _tag: "Send" as const }),
  fc.nat(10).map((pick) => ({ _tag: "Answer" as const, pick })),
  fc.integer({ min: 1, max: 4 }).map((count) => ({ _tag: "Deliver" as const, count })),
  fc.constant({ _tag: "Drop" as const }),
  fc.constant({ _tag: "Resume" as const })
)

/** A message in flight on one link: toward the host (a request) or the widget (an answer). */
type Frame = { readonly to: "host"; readonly id: string } | { readonly to: "widget"; readonly id: string; readonly data: string }

class World {
  readonly ledger: AnsweredRequests
  link: object | undefined = {}
  wire: Frame[] = []
  /** Answers waiting in the transport's queue while no link is up. */
  queue: Array<{ readonly id: string; readonly data: string }> = []
  readonly runs = new Map<string, number>()
  readonly running: string[] = []
  readonly heard = new Map<string, string[]>()
  readonly pending = new Set<string>()
  private next = 0

  constructor(bytes: number) {
    this.ledger = new AnsweredRequests({ requests: 1_000, bytes })
  }

  step(o: Op): void {
    switch (o._tag) {
      case "Send": {
        if (this.link === undefined) return
        const id = `r${this.next++}`
        this.pending.add(id)
        this.wire.push({ to: "host", id })
        return
      }
      case "Answer": {
        if (this.running.length === 0) return
        const [id] = this.running.splice(o.pick % this.running.length, 1)
        this.hostSends(id!, `answer to ${id}`)
        return
      }
      case "Deliver":
        for (let i = 0; i < o.count && this.wire.length > 0; i++) this.arrive(this.wire.shift()!)
        return
      case "Drop":
        this.link = undefined
        this.wire = []
        return
      case "Resume": {
        if (this.link !== undefined) return
        this.link = {}
        // The transport flushes its queue on connect, then the widget sends its pending requests again.
        for (const { id, data } of this.queue.splice(0)) this.write(id, data)
        for (const id of this.pending) this.wire.push({ to: "host", id })
        return
      }
    }
  }

  /** The session (or the transport) answers `id`: noted, then written or queued. */
  hostSends(id: string, data: string): void {
    this.ledger.answered(id, data)
    if (this.link === undefined) this.queue.push({ id, data })
    else this.write(id, data)
  }

  private write(id: string, data: string): void {
    this.ledger.written(id, this.link!)
    this.wire.push({ to: "widget", id, data })
  }

  private arrive(frame: Frame): void {
    if (frame.to === "widget") {
      this.heard.set(frame.id, [...(this.heard.get(frame.id) ?? []), frame.data])
      this.pending.delete(frame.id)
      return
    }
    const repeat = this.ledger.repeat(frame.id, this.link!)
    if (repeat._tag === "New") {
      this.runs.set(frame.id, (this.runs.get(frame.id) ?? 0) + 1)
      this.running.push(frame.id)
    } else if (repeat._tag === "AnswerAgain") this.write(frame.id, repeat.data)
    else if (repeat._tag === "AnswerLost") this.write(frame.id, `error: ${repeat.message}`)
  }

  /** The link comes back and stays up; the session answers all it runs; everything is delivered. */
  settle(): void {
    for (let round = 0; round < 10; round++) {
      this.step({ _tag: "Resume" })
      while (this.running.length > 0) this.step({ _tag: "Answer", pick: 0 })
      while (this.wire.length > 0) this.arrive(this.wire.shift()!)
    }
  }
}

describe("AnsweredRequests: the widget's requests across dropped links", () => {
  it.each([
    ["every answer kept", 1 << 20],
    ["a byte budget of about two answers", 30]
  ])("never run twice, never answered twice, always answered once the link stays up (%s)", (_name, bytes) => {
    let repeats = 0
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const world = new World(bytes)
        for (const o of ops) {
          world.step(o)
          for (const answers of world.heard.values()) expect(answers.length).toBeLessThanOrEqual(1)
        }
        world.settle()
        for (const [id, n] of world.runs) expect(n, `${id} ran twice`).toBe(1)
        for (let i = 0; world.heard.has(`r${i}`) || world.pending.has(`r${i}`); i++) {
          const answers = world.heard.get(`r${i}`) ?? []
          expect(answers, `r${i}`).toHaveLength(1)
          // The session's own answer, unless the request never reached it... which cannot be: once up, every request arrives.
          if (bytes > 1_000) expect(answers[0]).toBe(`answer to r${i}`)
        }
        expect(world.pending.size).toBe(0)
        repeats += ops.filter((o) => o._tag === "Resume").length
      }),
      { numRuns: 500 }
    )
    expect(repeats).toBeGreaterThan(100)
  })

  it("a repeat: in flight, dropped; answered on this link, dropped; answered on a link that ended, that answer again; let go, an error", () => {
    const ledger = new AnsweredRequests({ requests: 2, bytes: 10 })
    const first = {}
    const second = {}
    expect(ledger.repeat("a", first)).toEqual({ _tag: "New" })
    expect(ledger.repeat("a", first)).toEqual({ _tag: "Drop", why: "in-flight" })
    ledger.answered("a", "answer-a")
    expect(ledger.repeat("a", second)).toEqual({ _tag: "Drop", why: "answer-on-this-link" }) // queued: goes out on whatever link is next
    ledger.written("a", first)
    expect(ledger.repeat("a", first)).toEqual({ _tag: "Drop", why: "answer-on-this-link" })
    expect(ledger.repeat("a", second)).toEqual({ _tag: "AnswerAgain", data: "answer-a" })
    // Past the byte budget the oldest answer's text goes; a repeat after a drop gets an error, not a second run.
    expect(ledger.repeat("b", second)).toEqual({ _tag: "New" })
    ledger.answered("b", "answer-b")
    expect(ledger.repeat("a", {})).toMatchObject({ _tag: "AnswerLost" })
    // Past the id limit the oldest is forgotten: new to the ledger (the session refuses it while in flight).
    expect(ledger.repeat("c", second)).toEqual({ _tag: "New" })
    expect(ledger.size).toBe(2)
    expect(ledger.repeat("a", second)).toEqual({ _tag: "New" })
  })

  it("memory stays bounded over many small answers (the id limit forgets them before the byte budget does)", () => {
    const ledger = new AnsweredRequests({ requests: 8, bytes: 1 << 20 })
    const link = {}
    for (let i = 0; i < 10_000; i++) {
      ledger.repeat(`r${i}`, link)
      ledger.answered(`r${i}`, "{}")
      ledger.written(`r${i}`, link)
    }
    expect(ledger.size).toBe(8)
    expect((ledger as unknown as { kept: string[] }).kept.length).toBeLessThanOrEqual(2 * 8 + 1)
    expect(ledger.repeat("r9999", {})).toEqual({ _tag: "AnswerAgain", data: "{}" })
  })
})
