/**
 * The shell around the timeline machine: that it carries out the machine's effects through the
 * decrypter, the clock and the callbacks, settles its promises when the work is done, and keeps
 * going when a callback or the decrypter throws. With a fake decrypter whose answers the test
 * releases; the rules themselves are tested on the machine (timeline-machine*.test.ts), and with
 * real crypto in crypto.test.ts.
 */
import { describe, expect, it } from "vitest"
import { ManualClock } from "@widgethost/testing"
import type { RoomEvent } from "@widgethost/core"
import type { DecryptOutcome, RawEvent, UndecryptableReport } from "./crypto.ts"
import { DecryptingTimeline, type RoomDecrypter } from "./decrypting-timeline.ts"

const ROOM = "!r:x"
type KeyListener = (keys: ReadonlyArray<{ readonly roomId: string; readonly sessionId: string }>) => void

/** Clear events are clear; `m.room.encrypted` ones decrypt once their session is in `keys`. */
class FakeDecrypter implements RoomDecrypter {
  readonly keys = new Set<string>()
  readonly asked: Array<string> = []
  listeners = new Set<KeyListener>()
  /** When set, the next decryption is answered by this instead. */
  next: (() => Promise<DecryptOutcome>) | undefined

  decryptRoomEvent = (roomId: string, raw: RawEvent): Promise<DecryptOutcome> => {
    const id = String(raw["event_id"])
    this.asked.push(id)
    const special = this.next
    this.next = undefined
    if (special !== undefined) return special()
    const event: RoomEvent = { event_id: id, room_id: roomId, type: "m.room.message", sender: "@a:x", origin_server_ts: 0, content: { body: id } }
    if (raw["type"] !== "m.room.encrypted") return Promise.resolve({ _tag: "Clear", event })
    const session = String((raw["content"] as Record<string, unknown>)["session_id"])
    return Promise.resolve(this.keys.has(session) ? { _tag: "Decrypted", event } : { _tag: "Pending", sessionId: session, reason: "missing key" })
  }

  onRoomKeys = (listener: KeyListener) => {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  giveKey(session: string) {
    this.keys.add(session)
    for (const l of this.listeners) l([{ roomId: ROOM, sessionId: session }])
  }
}

const clear = (id: string): RawEvent => ({ event_id: id, type: "m.room.message", content: {} })
const sealed = (id: string, session = "s1"): RawEvent => ({ event_id: id, type: "m.room.encrypted", content: { session_id: session } })

const setup = (deliver?: (event: RoomEvent) => void) => {
  const decrypter = new FakeDecrypter()
  const clock = new ManualClock(1_000_000)
  const seen: Array<string> = []
  const reports: Array<UndecryptableReport> = []
  const timeline = new DecryptingTimeline(
    decrypter,
    (event, late) => {
      seen.push(late ? `${event.event_id} (late)` : event.event_id)
      deliver?.(event)
    },
    { clock, maxHoldMs: 5_000, onUndecryptable: (r) => reports.push(r) }
  )
  return { decrypter, clock, seen, reports, timeline }
}

describe("DecryptingTimeline (the shell)", () => {
  it("holds on its clock's timer, gives up when it fires, delivers late when the key comes, and counts it all", async () => {
    const { decrypter, clock, seen, reports, timeline } = setup()
    await timeline.push(ROOM, [sealed("$e1"), clear("$c2")])
    expect([seen, timeline.waiting, clock.liveTimers]).toEqual([[], 2, 1])
    clock.advance(5_000)
    await timeline.idle()
    expect(seen).toEqual(["$c2"])
    expect(reports.map((r) => [r.eventId, r.kind])).toEqual([["$e1", "held-too-long"]])
    expect(timeline.state()).toEqual({ rooms: {}, late: [{ roomId: ROOM, raw: sealed("$e1") }] })
    decrypter.giveKey("s1")
    await timeline.idle()
    expect(seen).toEqual(["$c2", "$e1 (late)"])
    expect(timeline.stats).toEqual({ delivered: 2, decrypted: 1, lateDelivered: 1, undecryptable: 1 })
    expect(clock.liveTimers).toBe(0)
  })

  it("close cancels the timer and stops listening for keys", async () => {
    const { decrypter, clock, timeline } = setup()
    await timeline.push(ROOM, [sealed("$e1")])
    expect([clock.liveTimers, decrypter.listeners.size]).toEqual([1, 1])
    timeline.close()
    expect([clock.liveTimers, decrypter.listeners.size]).toEqual([0, 0])
  })

  it("a push resolves only once what it brought is dealt with, in order, with decryptions one at a time", async () => {
    const { decrypter, seen, timeline } = setup()
    let release: (outcome: DecryptOutcome) => void = () => undefined
    decrypter.next = () => new Promise((resolve) => (release = resolve))
    let done = false
    const first = timeline.push(ROOM, [clear("$c1"), clear("$c2")]).then(() => (done = true))
    const second = timeline.push(ROOM, [clear("$c3")])
    await Promise.resolve()
    expect([done, decrypter.asked]).toEqual([false, ["$c1"]])
    release({ _tag: "Clear", event: { event_id: "$c1", room_id: ROOM, type: "m.room.message", sender: "@a:x", origin_server_ts: 0, content: {} } })
    await Promise.all([first, second])
    expect([done, seen, decrypter.asked]).toEqual([true, ["$c1", "$c2", "$c3"], ["$c1", "$c2", "$c3"]])
  })

  it("a key that arrives while its event is being decrypted is not missed", async () => {
    const { decrypter, seen, timeline } = setup()
    let release: (outcome: DecryptOutcome) => void = () => undefined
    decrypter.next = () => new Promise((resolve) => (release = resolve))
    const pushed = timeline.push(ROOM, [sealed("$e1")])
    decrypter.giveKey("s1") // the answer on its way was computed before the key
    release({ _tag: "Pending", sessionId: "s1", reason: "missing key" })
    await pushed
    expect([seen, decrypter.asked]).toEqual([["$e1"], ["$e1", "$e1"]])
  })

  it("a decrypter that throws fails the push; the event is tried again on the room's next push", async () => {
    const { decrypter, seen, timeline } = setup()
    decrypter.next = () => Promise.reject(new Error("store locked"))
    await expect(timeline.push(ROOM, [clear("$c1")])).rejects.toThrow("store locked")
    expect(timeline.waiting).toBe(1)
    await timeline.push(ROOM, [clear("$c2")])
    expect(seen).toEqual(["$c1", "$c2"])
  })

  it("a deliver callback that throws fails that push, and the timeline goes on", async () => {
    const { seen, timeline } = setup((event) => {
      if (event.event_id === "$c1") throw new Error("listener broke")
    })
    await expect(timeline.push(ROOM, [clear("$c1"), clear("$c2")])).rejects.toThrow("listener broke")
    await timeline.push(ROOM, [clear("$c3")])
    expect(seen).toEqual(["$c1", "$c2", "$c3"])
    expect(timeline.stats.delivered).toBe(3)
  })

  it("restore re-adopts saved events and an idle timeline resolves at once", async () => {
    const { decrypter, seen, timeline } = setup()
    await timeline.idle()
    decrypter.keys.add("s1")
    await timeline.restore({ rooms: { [ROOM]: [{ raw: sealed("$e1") }, { raw: clear("$c2") }] }, late: [] })
    expect(seen).toEqual(["$e1", "$c2"])
    expect(timeline.stats).toMatchObject({ delivered: 2, decrypted: 1 })
  })
})
