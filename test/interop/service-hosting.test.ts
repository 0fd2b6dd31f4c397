/**
 * The service end to end through the real command, hosting widgets: `widgethost serve` on the
 * embedded homeserver, a websocket widget connecting to its rendered URL, approval through the
 * admin API, a message from another account reaching the widget, restart and resume, rooms named
 * by alias, and an admin API closed to requests without its token. (Accounts and credentials:
 * service-accounts.test.ts; bad input: service-bad-input.test.ts.)
 */
import { describe, expect, it } from "vitest"
import { stringContaining } from "../src/matchers.ts"
import { admin, connectWidget, matrix, useServiceFixture } from "../src/service-fixture.ts"

const { start, tempDir, writeConfig } = useServiceFixture()

describe("widgethost serve", () => {
  it("hosts the demo chat widget: approve through the admin API, receive another account's message, restart and resume", async () => {
    const dataDir = tempDir()
    const first = start(["serve", "--data-dir", dataDir])
    const ready = await first.ready
    expect(ready.ready.user_id).toMatch(/^@widgethost:/)
    expect(ready.ready.rooms).toHaveLength(1)
    const [widget] = ready.ready.widgets
    expect(widget).toMatchObject({ id: "chat", room_id: ready.ready.rooms[0], transport: "m.websockets" })
    expect(widget!.url).toContain("ws=ws%3A%2F%2F127.0.0.1")

    const w = await connectWidget(widget!.url, ["m.receive.event:m.room.message"])
    // The capability prompt waits in the admin API until approved.
    let pending: Array<{ id: string; requested: string[] }> = []
    for (let i = 0; i < 50 && pending.length === 0; i++) {
      pending = ((await admin(ready, "/api/approvals")).body as { approvals: typeof pending }).approvals
      if (pending.length === 0) await new Promise((r) => setTimeout(r, 100))
    }
    expect(pending[0]!.requested).toEqual(["m.receive.event:m.room.message"])
    expect((await admin(ready, `/api/approvals/${pending[0]!.id}`, { method: "POST", body: JSON.stringify({ approve: "all" }) })).status).toBe(200)
    const notify = await w.waitFor((m) => m.action === "notify_capabilities")
    expect(notify.data).toEqual({ requested: ["m.receive.event:m.room.message"], approved: ["m.receive.event:m.room.message"] })

    // Another account, registered over plain client-server HTTP with the ready line's token, joins and speaks.
    expect(ready.ready.registration_token).toMatch(/^[A-Za-z0-9._~-]{16,64}$/)
    const bob = await matrix(ready.ready.homeserver, "POST", "/register", {
      username: "bob",
      password: "bob-secret-1",
      auth: { type: "m.login.registration_token", token: ready.ready.registration_token }
    })
    const token = String(bob.access_token)
    await matrix(ready.ready.homeserver, "POST", `/join/${encodeURIComponent(ready.ready.rooms[0]!)}`, {}, token)
    await matrix(ready.ready.homeserver, "PUT", `/rooms/${encodeURIComponent(ready.ready.rooms[0]!)}/send/m.room.message/t1`, { msgtype: "m.text", body: "hello widget" }, token)
    const delivered = await w.waitFor((m) => m.action === "send_event" && m.api === "toWidget")
    expect(delivered.data).toMatchObject({ type: "m.room.message", sender: String(bob.user_id), content: { body: "hello widget" } })

    const { sessions } = (await admin(ready, "/api/sessions")).body as { sessions: Array<{ state: string; approved: string[] }> }
    expect(sessions[0]).toMatchObject({ state: "ready", approved: ["m.receive.event:m.room.message"] })

    // SIGTERM: widgets are closed with a proper code, the process exits 0.
    const closed = new Promise<number>((resolve) => w.socket.once("close", (code) => resolve(code)))
    first.child.kill("SIGTERM")
    const firstExit = await first.exited
    if (firstExit !== 0) console.error(first.child.signalCode, first.output().stderr)
    expect(firstExit).toBe(0)
    expect(await closed).toBe(1001)

    // A second start resumes: same account, same device, same room.
    const second = start(["serve", "--data-dir", dataDir])
    const again = await second.ready
    expect(again.ready.user_id).toBe(ready.ready.user_id)
    expect(again.ready.device_id).toBe(ready.ready.device_id)
    expect(again.ready.rooms).toEqual(ready.ready.rooms)
    expect(again.ready.registration_token).toBe(ready.ready.registration_token)
    second.child.kill("SIGTERM")
    const secondExit = await second.exited
    if (secondExit !== 0) console.error(second.child.signalCode, second.output().stderr)
    expect(secondExit).toBe(0)
  }, 90_000)

  it("rooms by alias: resolved through the directory, joined when the account is not in them; a widget in an unjoined room is a warning", async () => {
    const dataDir = tempDir()
    const first = start(["serve", "--data-dir", dataDir])
    const ready = await first.ready
    const hs = ready.ready.homeserver
    // Someone else's public room with a widget of its own, known to the service only by its alias.
    const owner = (await admin(ready, "/api/users", { method: "POST", body: JSON.stringify({ username: "owner" }) })).body as { access_token: string }
    const created = await matrix(
      hs,
      "POST",
      "/createRoom",
      {
        preset: "public_chat",
        room_alias_name: "side",
        initial_state: [{ type: "m.widget", state_key: "side-widget", content: { type: "m.custom", url: "https://side.example/#ws=$matrix_websocket_uri", transports: ["m.websockets"] } }]
      },
      owner.access_token
    )
    const sideRoom = String(created.room_id)
    first.child.kill("SIGTERM")
    expect(await first.exited).toBe(0)

    const file = writeConfig({
      rooms: ["#side:localhost"],
      widgets: [{ id: "stray", roomId: "!nowhere:localhost", type: "m.custom", url: "https://stray.example/", transports: ["m.websockets"] }]
    })
    const second = start(["serve", "--config", file, "--data-dir", dataDir])
    const again = await second.ready
    expect(again.ready.rooms).toEqual([sideRoom])
    expect(again.ready.widgets).toContainEqual({ id: "side-widget", room_id: sideRoom, transport: "m.websockets", url: stringContaining("https://side.example/#ws=ws%3A%2F%2F127.0.0.1") })
    expect(again.ready.widgets.map((w) => w.id)).toContain("stray")
    const members = await matrix(hs, "GET", `/rooms/${encodeURIComponent(sideRoom)}/joined_members`, undefined, owner.access_token)
    expect(Object.keys(members.joined as object)).toContain(again.ready.user_id)
    // Logs are released after the ready line: wait for the warning.
    for (let i = 0; i < 100 && !second.output().stderr.includes("stray"); i++) await new Promise((r) => setTimeout(r, 100))
    const warnings = second.output().stderr.split("\n").filter((line) => line.includes("!nowhere:localhost") && / warn /.test(line))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/ warn .*widget stray names room !nowhere:localhost, which this account has not joined/)
    expect(second.child.exitCode).toBeNull()
  }, 90_000)

  it("unauthorised admin requests get 401", async () => {
    const s = start(["serve", "--data-dir", tempDir()])
    const ready = await s.ready
    const response = await fetch(`${new URL(ready.ready.admin_url).origin}/api/sessions`)
    expect(response.status).toBe(401)
  }, 60_000)
})
