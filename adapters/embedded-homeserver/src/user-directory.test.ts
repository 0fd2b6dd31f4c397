import { afterEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "./index.ts"
import { type Client, newUser, V3 } from "./testing.ts"

let hs: EmbeddedHomeserver | undefined
afterEach(async () => {
  await hs?.close()
  hs = undefined
})

interface SearchResult {
  readonly results: ReadonlyArray<{ readonly user_id: string; readonly display_name?: string }>
  readonly limited: boolean
}

/**
 * Alice shares a private room with Bob; Carol is in a public room; Dave shares nothing with
 * anyone. Display names: Bob "Bobby Tables", Carol "Carol", Dave "Dave".
 */
const world = async () => {
  hs = await startEmbeddedHomeserver()
  const [alice, bob, carol, dave] = [await newUser(hs, "alice"), await newUser(hs, "bob"), await newUser(hs, "carol"), await newUser(hs, "dave")] as [Client, Client, Client, Client]
  for (const [user, name] of [[bob, "Bobby Tables"], [carol, "Carol"], [dave, "Dave"]] as const) await user.ok("PUT", `${V3}/profile/${encodeURIComponent(user.userId)}/displayname`, { displayname: name })
  const secret = await alice.createRoom({ preset: "private_chat", invite: [bob.userId] })
  await bob.join(secret)
  await carol.createRoom({ preset: "public_chat" })
  await dave.createRoom({ preset: "private_chat" })
  const search = (body: unknown) => alice.request<SearchResult>("POST", `${V3}/user_directory/search`, { body })
  return { alice, bob, carol, dave, search }
}

describe("user directory search", () => {
  it("finds room-mates and members of public rooms by id or display name, never strangers", async () => {
    const { bob, carol, search } = await world()
    const cases: ReadonlyArray<readonly [term: string, want: ReadonlyArray<string>]> = [
      ["tables", [bob.userId]],
      ["BOB", [bob.userId]],
      ["carol", [carol.userId]],
      ["dave", []],
      ["zzz", []]
    ]
    for (const [term, want] of cases) {
      const res = await search({ search_term: term })
      expect([term, res.status, res.body.results.map((r) => r.user_id), res.body.limited]).toEqual([term, 200, want, false])
    }
    const found = await search({ search_term: "tables" })
    expect(found.body.results).toEqual([{ user_id: bob.userId, display_name: "Bobby Tables" }])
  })

  it("honours the limit and says when it cut", async () => {
    const { search } = await world()
    const res = await search({ search_term: ":", limit: 1 })
    expect(res.body.results).toHaveLength(1)
    expect(res.body.limited).toBe(true)
  })

  it("refuses a request without a search term, or with a bad limit", async () => {
    const { search } = await world()
    expect((await search({})).status).toBe(400)
    expect((await search({ search_term: "a", limit: -1 })).status).toBe(400)
    expect((await search({ search_term: "a", limit: 1.5 })).status).toBe(400)
  })
})
