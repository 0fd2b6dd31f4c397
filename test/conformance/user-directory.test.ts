/**
 * Conformance: MSC3973 `user_directory_search`, stable and unstable names. Given what was
 * approved, a search gets one answer: the homeserver's `{ limited, results }`, or the error.
 */
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const BOB = { user_id: "@bob:localhost", display_name: "Bobby Tables" }
const CAROL = { user_id: "@carol:localhost", display_name: "Carol" }

const table: ReadonlyArray<{ readonly name: string; readonly approved: string; readonly send: string; readonly data: Record<string, unknown>; readonly want: unknown; readonly asked: unknown }> = [
  { name: "stable names", approved: "m.user_directory_search", send: "user_directory_search", data: { search_term: "tables" }, want: { limited: false, results: [BOB] }, asked: { searchTerm: "tables" } },
  { name: "unstable names", approved: "org.matrix.msc3973.user_directory_search", send: "org.matrix.msc3973.user_directory_search", data: { search_term: "car", limit: 5 }, want: { limited: false, results: [CAROL] }, asked: { searchTerm: "car", limit: 5 } },
  { name: "limit passed on", approved: "m.user_directory_search", send: "user_directory_search", data: { search_term: "localhost", limit: 1 }, want: { limited: true, results: [BOB] }, asked: { searchTerm: "localhost", limit: 1 } },
  { name: "not approved", approved: "m.turn_servers", send: "user_directory_search", data: { search_term: "b" }, want: { error: { code: "NotAllowed", message: stringContaining("m.user_directory_search") } }, asked: undefined },
  { name: "no search_term", approved: "m.user_directory_search", send: "user_directory_search", data: {}, want: { error: { code: "Malformed", message: stringContaining("search_term") } }, asked: undefined },
  { name: "a bad limit", approved: "m.user_directory_search", send: "user_directory_search", data: { search_term: "b", limit: -1 }, want: { error: { code: "Malformed", message: stringContaining("limit") } }, asked: undefined }
]

describe("MSC3973 user_directory_search", () => {
  it.each(table)("$name", async ({ approved, send, data, want, asked }) => {
    const homeserver = makeInMemoryHomeserver()
    homeserver.directory = [BOB, CAROL]
    const h = new Harness({ approver: approveAll, homeserver })
    await h.ready([approved])
    h.take()
    const id = h.request(send, data)
    await flush()
    const answers = h.take().filter((m) => m.requestId === id)
    expect(answers).toHaveLength(1)
    expect((answers[0] as { response: unknown }).response).toMatchObject(want as object)
    expect(homeserver.calls.filter((c) => c.method === "userDirectorySearch").map((c) => c.args)).toEqual(asked === undefined ? [] : [{ _tag: "UserDirectorySearch", ...(asked as object) }])
  })
})
