/**
 * `widgethost users add NAME` against a real embedded homeserver that asks for a registration
 * token, as the service runs it: the account is created through the token stage, joins the demo
 * room, and a taken name or a service that is not running is one clear sentence.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { addUser, UsersError } from "./users-cli.ts"

const TOKEN = "registration-token-for-the-test-0123456789"

describe("widgethost users add", () => {
  let homeserver: EmbeddedHomeserver
  let dataDir: string
  let demoRoom: string

  beforeAll(async () => {
    homeserver = await startEmbeddedHomeserver({ registrationToken: TOKEN })
    const host = await homeserver.ensureUser("widgethost", "host-password-1")
    const created = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers: { authorization: `Bearer ${host.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ preset: "public_chat" })
    })
    demoRoom = String(((await created.json()) as { room_id: string }).room_id)
    dataDir = mkdtempSync(join(tmpdir(), "widgethost-users-"))
    writeFileSync(join(dataDir, "service.json"), JSON.stringify({ homeserverPort: Number(new URL(homeserver.baseUrl).port), registrationToken: TOKEN, demoRoom }))
  })
  afterAll(async () => {
    await homeserver?.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  it("creates the account through the registration-token stage and joins it to the demo room", async () => {
    const bob = await addUser({ dataDir, username: "bob" })
    expect(bob).toMatchObject({ user_id: "@bob:localhost", homeserver: homeserver.baseUrl, joined: demoRoom })
    expect(bob.password.length).toBeGreaterThanOrEqual(20)
    const rooms = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/joined_rooms`, { headers: { authorization: `Bearer ${bob.access_token}` } })
    expect(((await rooms.json()) as { joined_rooms: Array<string> }).joined_rooms).toEqual([demoRoom])
    const login = await fetch(`${homeserver.baseUrl}/_matrix/client/v3/login`, {
      method: "POST",
      body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user: "bob" }, password: bob.password })
    })
    expect(login.status).toBe(200)
  })

  it("a taken name is refused in a sentence that says so", async () => {
    await expect(addUser({ dataDir, username: "carol", password: "carol-password-1" })).resolves.toMatchObject({ user_id: "@carol:localhost", password: "carol-password-1" })
    await expect(addUser({ dataDir, username: "carol" })).rejects.toThrow(new UsersError("cannot create carol: the name carol is taken"))
  })

  it("without a running service (or its state) it says what to do", async () => {
    const empty = mkdtempSync(join(tmpdir(), "widgethost-users-none-"))
    try {
      await expect(addUser({ dataDir: empty, username: "dave" })).rejects.toThrow(/service\.json .*start the service with this data directory first/)
      writeFileSync(join(empty, "service.json"), JSON.stringify({ homeserverPort: 9, registrationToken: TOKEN }))
      await expect(addUser({ dataDir: empty, username: "dave" })).rejects.toThrow("the embedded homeserver at http://127.0.0.1:9 does not answer: is the service running with this data directory? (npm start)")
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })
})
