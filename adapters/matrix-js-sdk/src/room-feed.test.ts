import type { RoomEvent } from "@widgethost/core"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { RoomFeed, type UndecryptableEvent } from "./room-feed.ts"
import type { SdkEvent } from "./sdk-event.ts"

/** A stand-in for the SDK's MatrixEvent whose decryption the test moves along by hand. */
class FakeEvent implements SdkEvent {
  status = null
  decrypting = false
  failed = false
  clear = false
  redacted = false
  constructor(
    readonly id: string,
    readonly roomId: string,
    readonly encrypted: boolean
  ) {}
  getId = () => this.id
  getRoomId = () => this.roomId
  isEncrypted = () => this.encrypted
  isBeingDecrypted = () => this.decrypting
  isDecryptionFailure = () => this.failed
  getClearContent = () => (this.clear ? { body: this.id } : null)
  isRedacted = () => this.redacted
  shouldAttemptDecryption = () => this.encrypted && !this.redacted && !this.decrypting && !this.clear && !this.failed
  get decryptionFailureReason() {
    return this.failed ? ("MEGOLM_UNKNOWN_INBOUND_SESSION_ID" as SdkEvent["decryptionFailureReason"]) : null
  }
  getEffectiveEvent = () =>
    ({
      type: this.encrypted && !this.clear ? "m.room.encrypted" : "m.room.message",
      event_id: this.id,
      room_id: this.roomId,
      sender: "@bob:example.org",
      origin_server_ts: 1,
      content: this.encrypted && !this.clear ? { ciphertext: "…" } : { body: this.id },
      unsigned: {}
    }) as ReturnType<SdkEvent["getEffectiveEvent"]>
  /** The SDK finished decrypting: with the key, or without. */
  finish(ok: boolean) {
    this.decrypting = false
    this.clear = ok
    this.failed = !ok
  }
}

const A = "!a:example.org"
const B = "!b:example.org"

const setup = (options: ConstructorParameters<typeof RoomFeed>[2] = {}, canDecrypt = true) => {
  const delivered: Array<RoomEvent> = []
  const reports: Array<UndecryptableEvent> = []
  const started: Array<string> = []
  const feed = new RoomFeed(
    (event) => delivered.push(event),
    (event) => {
      if (!canDecrypt) return false
      started.push(event.getId()!)
      ;(event as FakeEvent).decrypting = true
      return true
    },
    { onUndecryptable: (report) => reports.push(report), ...options }
  )
  const ids = () => delivered.map((e) => e.event_id)
  return { feed, delivered, reports, started, ids }
}

beforeEach(() => vi.useFakeTimers())
afterEach(() => vi.useRealTimers())

describe("RoomFeed", () => {
  it("clear events go on at once, in order, each once", () => {
    const { feed, ids } = setup()
    const one = new FakeEvent("$1", A, false)
    feed.push(one)
    feed.push(new FakeEvent("$2", A, false))
    feed.push(one) // a second timeline set emits it again
    feed.push(new FakeEvent("$2", A, false))
    expect(ids()).toEqual(["$1", "$2"])
  })

  it("an event being decrypted holds back its room's later events, not other rooms'; then both go, decrypted", () => {
    const { feed, delivered, started, ids } = setup()
    const secret = new FakeEvent("$secret", A, true)
    feed.push(secret)
    feed.push(new FakeEvent("$after", A, false))
    feed.push(new FakeEvent("$other", B, false))
    expect(started).toEqual(["$secret"])
    expect(ids()).toEqual(["$other"])
    secret.finish(true)
    feed.decrypted(secret)
    expect(ids()).toEqual(["$other", "$secret", "$after"])
    expect(delivered[1]).toMatchObject({ type: "m.room.message", content: { body: "$secret" } })
    expect(delivered.some((e) => e.type === "m.room.encrypted")).toBe(false)
  })

  it("an undecryptable event holds its room for maxHoldMs, then the room goes on; its key coming later delivers it late, once", () => {
    const { feed, reports, ids } = setup({ maxHoldMs: 1_000 })
    const secret = new FakeEvent("$secret", A, true)
    feed.push(secret)
    secret.finish(false)
    feed.decrypted(secret)
    feed.push(new FakeEvent("$after", A, false))
    vi.advanceTimersByTime(999)
    expect(ids()).toEqual([])
    vi.advanceTimersByTime(1)
    expect(ids()).toEqual(["$after"])
    expect(reports).toEqual([{ roomId: A, eventId: "$secret", reason: "held-too-long", code: "MEGOLM_UNKNOWN_INBOUND_SESSION_ID" }])
    secret.finish(true) // the SDK retried when the key arrived
    feed.decrypted(secret)
    feed.decrypted(secret)
    expect(ids()).toEqual(["$after", "$secret"])
  })

  it("a key arriving within the hold keeps the room in order", () => {
    const { feed, reports, ids } = setup({ maxHoldMs: 1_000 })
    const secret = new FakeEvent("$secret", A, true)
    feed.push(secret)
    secret.finish(false)
    feed.decrypted(secret)
    feed.push(new FakeEvent("$after", A, false))
    vi.advanceTimersByTime(500)
    secret.finish(true)
    feed.decrypted(secret)
    expect(ids()).toEqual(["$secret", "$after"])
    vi.advanceTimersByTime(5_000)
    expect([ids(), reports]).toEqual([["$secret", "$after"], []])
  })

  it("maxHeldBehind bounds how many events an undecryptable one holds back", () => {
    const { feed, ids, reports } = setup({ maxHeldBehind: 2 })
    const secret = new FakeEvent("$secret", A, true)
    feed.push(secret)
    secret.finish(false)
    feed.decrypted(secret)
    feed.push(new FakeEvent("$1", A, false))
    feed.push(new FakeEvent("$2", A, false))
    expect(ids()).toEqual([])
    feed.push(new FakeEvent("$3", A, false))
    expect(ids()).toEqual(["$1", "$2", "$3"])
    expect(reports.map((r) => r.reason)).toEqual(["held-too-long"])
  })

  it("the late set is bounded: the oldest is given up (evicted) and never delivered", () => {
    const { feed, ids, reports } = setup({ maxHoldMs: 0, maxLate: 1 })
    const first = new FakeEvent("$first", A, true)
    const second = new FakeEvent("$second", A, true)
    for (const event of [first, second]) {
      feed.push(event)
      event.finish(false)
      feed.decrypted(event)
    }
    expect(reports.map((r) => [r.eventId, r.reason])).toEqual([
      ["$first", "held-too-long"],
      ["$second", "held-too-long"],
      ["$first", "evicted"]
    ])
    first.finish(true)
    feed.decrypted(first)
    second.finish(true)
    feed.decrypted(second)
    expect(ids()).toEqual(["$second"])
  })

  it("an encrypted event redacted before decryption is reported and skipped", () => {
    const { feed, ids, reports } = setup()
    const gone = new FakeEvent("$gone", A, true)
    gone.redacted = true
    feed.push(gone)
    feed.push(new FakeEvent("$next", A, false))
    expect(ids()).toEqual(["$next"])
    expect(reports.map((r) => r.reason)).toEqual(["redacted"])
  })

  it("without crypto an encrypted event is reported and skipped, never delivered as ciphertext", () => {
    const { feed, ids, reports } = setup({}, false)
    feed.push(new FakeEvent("$secret", A, true))
    feed.push(new FakeEvent("$next", A, false))
    expect(ids()).toEqual(["$next"])
    expect(reports.map((r) => r.reason)).toEqual(["no-crypto"])
  })

  it("close stops the hold timers and hands nothing on", () => {
    const { feed, ids } = setup({ maxHoldMs: 1_000 })
    const secret = new FakeEvent("$secret", A, true)
    feed.push(secret)
    secret.finish(false)
    feed.decrypted(secret)
    feed.push(new FakeEvent("$after", A, false))
    expect(feed.waiting).toBe(2)
    feed.close()
    vi.advanceTimersByTime(5_000)
    expect([ids(), feed.waiting]).toEqual([[], 0])
  })
})
