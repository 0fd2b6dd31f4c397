/**
 * The message log the admin API reads: per-session capacity, previews, forgetting.
 */
import { assert, describe, it } from "vitest"
import { MessageLog } from "./message-log.ts"

describe("MessageLog", () => {
  it("keeps the last `capacity` entries per session, oldest first", () => {
    let now = 0
    const log = new MessageLog({ capacity: 3, now: () => ++now })
    for (let i = 0; i < 5; i++) log.record("a", i % 2 === 0 ? "in" : "out", { i })
    log.record("b", "out", { i: 99 })
    assert.deepEqual(log.get("a"), [
      { at: 3, direction: "in", message: { i: 2 } },
      { at: 4, direction: "out", message: { i: 3 } },
      { at: 5, direction: "in", message: { i: 4 } }
    ])
    assert.deepEqual(log.get("b"), [{ at: 6, direction: "out", message: { i: 99 } }])
    assert.deepEqual(log.get("c"), [])
  })

  it("keeps a preview of a large message and a marker for an unserialisable one", () => {
    const log = new MessageLog({ maxEntryChars: 20, now: () => 0 })
    log.record("a", "in", { body: "x".repeat(100) })
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    log.record("a", "in", cyclic)
    log.record("a", "in", "short")
    const [big, odd, small] = log.get("a").map((e) => e.message)
    assert.deepEqual(big, { "io.widgethost.truncated": true, chars: 111, preview: '{"body":"xxxxxxxxxxx' })
    assert.deepEqual(odd, { "io.widgethost.unserialisable": true })
    assert.equal(small, "short")
  })

  it("forgets a session, drops the oldest log past maxSessions, and announces records", () => {
    const log = new MessageLog({ maxSessions: 2 })
    const seen: string[] = []
    const stop = log.onRecord((sessionId) => seen.push(sessionId))
    log.record("a", "in", 1)
    log.record("b", "in", 1)
    log.record("c", "in", 1)
    assert.deepEqual(log.sessions(), ["b", "c"])
    log.forget("b")
    assert.deepEqual(log.get("b"), [])
    stop()
    log.record("d", "in", 1)
    assert.deepEqual(seen, ["a", "b", "c"])
  })
})
