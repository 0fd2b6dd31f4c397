import { spawn } from "node:child_process"
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterEach, assert, beforeEach, describe, it } from "vitest"
import type { EmbeddedHomeserver } from "./index.ts"
import { startEmbeddedHomeserver } from "./index.ts"
import { Journal } from "./journal.ts"
import type { ClientEvent, SyncResponse } from "./testing.ts"
import { Client, room, V3 } from "./testing.ts"

let dir: string
let hs: EmbeddedHomeserver | undefined
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "widgethost-hs-"))
})
afterEach(async () => {
  await hs?.close()
  hs = undefined
  await rm(dir, { recursive: true, force: true })
})

const restart = async () => {
  await hs?.close()
  hs = await startEmbeddedHomeserver({ dataDir: dir })
  return hs
}

const messageBodies = (events: ReadonlyArray<ClientEvent>) => events.filter((e) => e.type === "m.room.message").map((e) => e.content.body)

describe("Journal", () => {
  it("round-trips records and cuts a torn last line", async () => {
    const first = await Journal.open(dir, "localhost")
    assert.deepEqual(first.records, [])
    await first.journal.append([{ t: "token.revoked", tokenKey: "a" }])
    await first.journal.append([{ t: "token.revoked", tokenKey: "b" }])
    await first.journal.close()
    const path = join(dir, "journal.jsonl")
    await appendFile(path, '{"t":"token.revoked","tok')
    const second = await Journal.open(dir, "localhost")
    assert.deepEqual(second.records, [
      { t: "token.revoked", tokenKey: "a" },
      { t: "token.revoked", tokenKey: "b" }
    ])
    // The torn tail is gone from the file, so the next append starts on a fresh line.
    await second.journal.append([{ t: "token.revoked", tokenKey: "c" }])
    await second.journal.close()
    const third = await Journal.open(dir, "localhost")
    assert.lengthOf(third.records, 3)
    await third.journal.close()
  })

  it("allows one writer per directory", async () => {
    const first = await Journal.open(dir, "localhost")
    await expectRejects(Journal.open(dir, "localhost"), /already open/)
    await expectRejects(startEmbeddedHomeserver({ dataDir: dir }), /already open/)
    await first.journal.close()
    const second = await Journal.open(dir, "localhost")
    await second.journal.close()
  })

  it("refuses a corrupt line in the middle, and a journal of another server name", async () => {
    const j = await Journal.open(dir, "localhost")
    await j.journal.append([{ t: "token.revoked", tokenKey: "a" }])
    await j.journal.close()
    await expectRejects(Journal.open(dir, "other.example"), /server name/)
    const path = join(dir, "journal.jsonl")
    const text = await readFile(path, "utf8")
    await writeFile(path, `${text}garbage\n{"t":"token.revoked","tokenKey":"b"}\n`)
    await expectRejects(Journal.open(dir, "localhost"), /not JSON/)
  })
})

const expectRejects = async (p: Promise<unknown>, pattern: RegExp) => {
  try {
    await p
  } catch (e) {
    assert.match(String(e), pattern)
    return
  }
  assert.fail("expected a rejection")
}

describe("persistence across restarts", () => {
  it("keeps users, passwords, tokens, devices, rooms, events, state and account data", async () => {
    let s = await restart()
    const alice = new Client(s.baseUrl, await s.ensureUser("alice", "pw-a"))
    const bob = new Client(s.baseUrl, await s.ensureUser("bob", "pw-b"))
    const roomId = await alice.createRoom({ preset: "public_chat", room_alias_name: "kept", name: "Kept" })
    await bob.join(roomId)
    const eventId = await alice.send(roomId, "before restart", "txn-keep")
    await alice.ok("PUT", `${V3}/user/${encodeURIComponent(alice.userId)}/account_data/org.example`, { a: 1 })

    s = await restart()
    const alice2 = new Client(s.baseUrl, alice.session)
    assert.deepEqual((await alice2.get(`${V3}/account/whoami`)).body, { user_id: alice.userId, device_id: alice.session!.deviceId, is_guest: false })
    const relogin = await new Client(s.baseUrl).post(`${V3}/login`, { type: "m.login.password", user: "bob", password: "pw-b" })
    assert.equal(relogin.status, 200)
    assert.equal((await alice2.get<{ room_id: string }>(`${V3}/directory/room/${encodeURIComponent("#kept:localhost")}`)).body.room_id, roomId)
    assert.equal((await alice2.get<{ name: string }>(`${room(roomId)}/state/m.room.name`)).body.name, "Kept")
    const messages = await alice2.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=b&limit=50`)
    assert.deepEqual(messageBodies(messages.body.chunk), ["before restart"])
    // Transaction ids survive too: the retry of a pre-restart send is recognised.
    assert.equal(await alice2.send(roomId, "before restart", "txn-keep"), eventId)
    assert.deepEqual((await alice2.get(`${V3}/user/${encodeURIComponent(alice.userId)}/account_data/org.example`)).body, { a: 1 })
    // New ids keep coming after the replayed ones; a second restart replays the new ones too.
    await alice2.send(roomId, "after restart")
    s = await restart()
    const again = await new Client(s.baseUrl, alice.session).get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=f&limit=50`)
    assert.deepEqual(messageBodies(again.body.chunk), ["before restart", "after restart"])
  })

  it("keeps since-tokens valid: a sync from before the restart gets exactly the events after it", async () => {
    let s = await restart()
    const alice = new Client(s.baseUrl, await s.ensureUser("alice", "pw"))
    const roomId = await alice.createRoom()
    await alice.send(roomId, "seen")
    const token = (await alice.sync()).next_batch
    await alice.send(roomId, "unseen 1")
    s = await restart()
    const alice2 = new Client(s.baseUrl, alice.session)
    await alice2.send(roomId, "unseen 2")
    const sync: SyncResponse = await alice2.sync({ since: token })
    assert.deepEqual(messageBodies(sync.rooms.join[roomId]!.timeline.events), ["unseen 1", "unseen 2"])
    const next = await alice2.sync({ since: sync.next_batch, timeout: "0" })
    assert.deepEqual(next.rooms.join, {})
  })

  it("never hands out a token for positions that a failed request reserved but did not use", async () => {
    let s = await restart()
    const alice = new Client(s.baseUrl, await s.ensureUser("alice", "pw"))
    const roomId = await alice.createRoom()
    // Fails after reserving positions for its first events (the last one is too large).
    const failed = await alice.post(`${V3}/createRoom`, { topic: "x".repeat(70_000) })
    assert.equal(failed.status, 413)
    await alice.ok("POST", `${V3}/user/${encodeURIComponent(alice.userId)}/openid/request_token`, {}) // a commit without positions
    const token = (await alice.sync()).next_batch
    s = await restart()
    const alice2 = new Client(s.baseUrl, alice.session)
    await alice2.send(roomId, "after restart")
    const sync = await alice2.sync({ since: token })
    assert.deepEqual(messageBodies(sync.rooms.join[roomId]?.timeline.events ?? []), ["after restart"])
  })

  it("loads everything before a journal line torn by a crash", async () => {
    let s = await restart()
    const alice = new Client(s.baseUrl, await s.ensureUser("alice", "pw"))
    const roomId = await alice.createRoom()
    for (let i = 0; i < 5; i++) await alice.send(roomId, `m${i}`)
    await s.close()
    hs = undefined
    // Simulate a crash in the middle of writing the last record.
    const path = join(dir, "journal.jsonl")
    const size = (await stat(path)).size
    const text = await readFile(path, "utf8")
    const lastLineLength = text.length - text.slice(0, -1).lastIndexOf("\n") - 1
    await truncate(path, size - Math.floor(lastLineLength / 2))
    s = await restart()
    const messages = await new Client(s.baseUrl, alice.session).get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=f&limit=50`)
    assert.deepEqual(messageBodies(messages.body.chunk), ["m0", "m1", "m2", "m3"])
    await new Client(s.baseUrl, alice.session).send(roomId, "m5")
    s = await restart()
    const after = await new Client(s.baseUrl, alice.session).get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=f&limit=50`)
    assert.deepEqual(messageBodies(after.body.chunk), ["m0", "m1", "m2", "m3", "m5"])
  })

  it("loses nothing acknowledged when the process is killed with SIGKILL", async () => {
    const index = fileURLToPath(new URL("./index.ts", import.meta.url))
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        "const m = await import(process.argv[1]); const hs = await m.startEmbeddedHomeserver({ dataDir: process.argv[2], registrationToken: 'crash-test' }); console.log(hs.baseUrl)",
        index,
        dir
      ],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    try {
      const baseUrl = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => resolve(d.toString().trim()))
        child.on("exit", (code) => reject(new Error(`child exited ${code}`)))
      })
      const anon = new Client(baseUrl)
      const reg = await anon.post<{ user_id: string; access_token: string; device_id: string }>(`${V3}/register`, {
        username: "crash",
        password: "pw",
        auth: { type: "m.login.registration_token", token: "crash-test" }
      })
      const alice = new Client(baseUrl, { userId: reg.body.user_id, accessToken: reg.body.access_token, deviceId: reg.body.device_id })
      const roomId = await alice.createRoom()
      const acknowledged: Array<string> = []
      // Fire sends concurrently (group commits), kill mid-stream, then check every acknowledged one.
      const sends = Array.from({ length: 200 }, (_, i) =>
        alice.put<{ event_id: string }>(`${room(roomId)}/send/m.room.message/k${i}`, { body: `k${i}` }).then(
          (r) => {
            if (r.status === 200) acknowledged.push(r.body.event_id)
          },
          () => {}
        )
      )
      while (acknowledged.length < 10) await new Promise((r) => setTimeout(r, 2))
      const exited = new Promise((r) => child.once("exit", r))
      child.kill("SIGKILL")
      await Promise.all([...sends, exited])

      const s = await restart()
      const after = new Client(s.baseUrl, alice.session)
      assert.equal((await after.get(`${V3}/account/whoami`)).status, 200)
      const messages = await after.get<{ chunk: Array<ClientEvent> }>(`${room(roomId)}/messages?dir=f&limit=1000`)
      const stored = new Set(messages.body.chunk.map((e) => e.event_id))
      assert.isAtLeast(acknowledged.length, 10)
      for (const id of acknowledged) assert.isTrue(stored.has(id), `acknowledged ${id} lost`)
    } finally {
      child.kill("SIGKILL")
    }
  })
})
