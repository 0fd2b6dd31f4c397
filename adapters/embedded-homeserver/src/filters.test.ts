import { assert, describe, it } from "vitest"
import { MatrixError } from "./errors.ts"
import { resolveSyncFilter } from "./filters.ts"

const query = (filter: string) => new URLSearchParams({ filter })
const status = (f: () => unknown): number => {
  try {
    f()
  } catch (e) {
    if (e instanceof MatrixError) return e.status
    throw e
  }
  return 200
}

describe("sync filters", () => {
  it("an inline filter read again (from the cache) reads the same; another text reads as itself", () => {
    const text = JSON.stringify({ room: { timeline: { limit: 3, types: ["m.room.message"] } } })
    const first = resolveSyncFilter(query(text), new Map())
    assert.deepEqual(resolveSyncFilter(query(text), new Map()), first)
    assert.equal(first.timeline.limit, 3)
    assert.equal(resolveSyncFilter(query(JSON.stringify({ room: { timeline: { limit: 4 } } })), new Map()).timeline.limit, 4)
  })

  it("a bad inline filter is refused every time, not only the first", () => {
    const bad = JSON.stringify({ room: { timeline: { limit: -1 } } })
    assert.equal(status(() => resolveSyncFilter(query(bad), new Map())), 400)
    assert.equal(status(() => resolveSyncFilter(query(bad), new Map())), 400)
  })

  it("stored filters are read by id, each as its own", () => {
    const stored = new Map([
      ["0", { room: { timeline: { limit: 1 } } }],
      ["1", { room: { timeline: { limit: 2 } } }]
    ])
    assert.equal(resolveSyncFilter(query("0"), stored).timeline.limit, 1)
    assert.equal(resolveSyncFilter(query("1"), stored).timeline.limit, 2)
    assert.equal(resolveSyncFilter(query("0"), stored).timeline.limit, 1)
    assert.equal(status(() => resolveSyncFilter(query("2"), stored)), 400)
  })

  it("more inline filters than the cache holds still read correctly", () => {
    for (let i = 0; i < 300; i++) assert.equal(resolveSyncFilter(query(JSON.stringify({ room: { timeline: { limit: i } } })), new Map()).timeline.limit, i)
    assert.equal(resolveSyncFilter(query(JSON.stringify({ room: { timeline: { limit: 0 } } })), new Map()).timeline.limit, 0)
  })
})
