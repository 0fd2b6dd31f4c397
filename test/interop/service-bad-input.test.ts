/**
 * The service's command line against bad input: every case fails with one clear line and exit
 * code 2, nothing half-started. (Hosting widgets: service-hosting.test.ts; accounts and
 * credentials: service-accounts.test.ts.)
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { useServiceFixture } from "../src/service-fixture.ts"
import { freePort } from "../src/service-process.ts"

const { start, tempDir, writeConfig } = useServiceFixture()

describe("bad input: one clear line, exit code 2, nothing half-started", () => {
  const failsWith = async (args: string[], pattern: RegExp) => {
    const run = start(args)
    const code = await run.exited
    const { stdout, stderr } = run.output()
    expect(code).toBe(2)
    expect(stdout).toBe("")
    expect(stderr.trim().split("\n")[0]).toMatch(pattern)
    return { stderr }
  }
  /** As `failsWith`, and the line is all there is on stderr: no stack trace, no log chatter. */
  const failsWithOneLine = async (args: string[], pattern: RegExp) => {
    const { stderr } = await failsWith(args, pattern)
    expect(stderr.trimEnd().split("\n"), stderr).toHaveLength(1)
  }

  it("an unknown flag", () => failsWith(["serve", "--frobnicate"], /unknown option --frobnicate/))
  it("an unknown command", () => failsWith(["serverless"], /unknown command serverless/))
  it("a missing configuration file", () => failsWith(["serve", "--config", "/nonexistent/widgethost.json"], /cannot read configuration .*ENOENT/))
  it("malformed configuration JSON", () => {
    const file = join(tempDir(), "bad.json")
    writeFileSync(file, "{ nope")
    return failsWith(["serve", "--config", file], /not valid JSON/)
  })
  it("a wrong-typed field names its path", () => {
    const file = join(tempDir(), "bad.json")
    writeFileSync(file, JSON.stringify({ listen: { port: "eighty" } }))
    return failsWith(["serve", "--config", file], /listen\.port: expected a port number/)
  })
  it("an unreachable homeserver", async () => {
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), homeserver: { url: `http://127.0.0.1:${await freePort()}`, accessToken: "t", deviceId: "D" } }))
    return failsWith(["serve", "--config", file], /cannot reach the homeserver/)
  }, 60_000)
  it("wrong credentials", async () => {
    // A real homeserver (the embedded one from a first service run) refusing a bad password.
    const dataDir = tempDir()
    const s = start(["serve", "--data-dir", dataDir])
    const ready = await s.ready
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), homeserver: { url: ready.ready.homeserver, user: "widgethost", password: "wrong" } }))
    await failsWith(["serve", "--config", file], /cannot reach the homeserver.*(M_FORBIDDEN|password|Forbidden)/i)
  }, 60_000)
  it("a port in use", async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as { port: number }).port
    const file = join(tempDir(), "c.json")
    writeFileSync(file, JSON.stringify({ dataDir: join(tempDir(), "d"), listen: { port } }))
    try {
      await failsWith(["serve", "--config", file], /cannot listen for widgets on 127\.0\.0\.1:\d+: EADDRINUSE/)
    } finally {
      blocker.close()
    }
  }, 60_000)
  it("an admin token under 16 characters names admin.token, before anything starts", async () => {
    const dataDir = join(tempDir(), "never-created")
    const file = writeConfig({ dataDir, admin: { token: "too-short" } })
    await failsWithOneLine(["serve", "--config", file], /^widgethost: admin\.token: expected at least 16 characters, got 9$/)
    expect(existsSync(dataDir), "no data directory, no homeserver: nothing started").toBe(false)
  })
  it("a declared widget without websockets names the widget", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), widgets: [{ id: "postmessage-only", type: "m.custom", url: "https://widget.example/" }] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: widgets: "postmessage-only" does not offer websockets/)
  })
  it("a configured room that does not exist", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["!missing:localhost"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: room !missing:localhost: cannot join it \(404 M_NOT_FOUND/)
  }, 60_000)
  it("a configured alias that does not exist", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["#nowhere:localhost"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: room #nowhere:localhost: cannot resolve the alias \(404 M_NOT_FOUND/)
  }, 60_000)
  it("a configured room that is neither an id nor an alias", () => {
    const file = writeConfig({ dataDir: join(tempDir(), "d"), rooms: ["demo"] })
    return failsWithOneLine(["serve", "--config", file], /^widgethost: rooms\[0\]: expected a room id \(!id:server\) or alias \(#alias:server\)/)
  })
  it("an unwritable data directory", () => {
    const parent = tempDir()
    const locked = join(parent, "locked")
    mkdirSync(locked)
    chmodSync(locked, 0o500)
    // root ignores permission bits: use a path under a regular file instead, which nobody can create.
    const file = join(parent, "file")
    writeFileSync(file, "")
    return failsWith(["serve", "--data-dir", join(file, "data")], /data directory .* is not writable/)
  })
})
