import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "./index.ts"
import { newUser } from "./testing.ts"

let hs: EmbeddedHomeserver | undefined
const dirs: string[] = []
afterEach(async () => {
  await hs?.close()
  hs = undefined
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

/** Raw bytes over real HTTP: the media API is not JSON. */
const http = async (baseUrl: string, method: string, path: string, options: { token?: string; body?: Buffer; type?: string } = {}) => {
  const headers: Record<string, string> = {}
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.type !== undefined) headers["content-type"] = options.type
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(options.body === undefined ? {} : { body: new Uint8Array(options.body) }) })
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) }
}

const mediaPath = (uri: string) => uri.replace(/^mxc:\/\//, "")

describe("media repository", () => {
  it("uploads bytes as they are and serves them back on the authenticated and legacy paths", async () => {
    hs = await startEmbeddedHomeserver()
    const alice = await newUser(hs)
    const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13])
    const up = await http(hs.baseUrl, "POST", "/_matrix/media/v3/upload?filename=tiny%20file.bin", { token: alice.session!.accessToken, body: bytes, type: "application/x-test" })
    expect(up.status).toBe(200)
    const { content_uri: uri } = JSON.parse(up.bytes.toString()) as { content_uri: string }
    expect(uri).toMatch(/^mxc:\/\/localhost\/[A-Za-z0-9_-]+$/)
    for (const [path, token] of [[`/_matrix/client/v1/media/download/${mediaPath(uri)}`, alice.session!.accessToken], [`/_matrix/media/v3/download/${mediaPath(uri)}`, undefined]] as const) {
      const down = await http(hs.baseUrl, "GET", path, token === undefined ? {} : { token })
      expect(down.status).toBe(200)
      expect(down.bytes.equals(bytes)).toBe(true)
      expect(down.headers.get("content-type")).toBe("application/x-test")
      expect(down.headers.get("content-disposition")).toBe("attachment; filename*=utf-8''tiny%20file.bin")
      expect(down.headers.get("x-content-type-options")).toBe("nosniff")
    }
    // JSON-looking bytes stay bytes: the body is never parsed.
    const json = await http(hs.baseUrl, "POST", "/_matrix/media/v3/upload", { token: alice.session!.accessToken, body: Buffer.from("{not json"), type: "application/json" })
    expect(json.status).toBe(200)
  })

  it("says its upload limit and refuses what is over it", async () => {
    hs = await startEmbeddedHomeserver({ maxUploadBytes: 1000 })
    const alice = await newUser(hs)
    const token = alice.session!.accessToken
    for (const path of ["/_matrix/client/v1/media/config", "/_matrix/media/v3/config"]) {
      const config = await http(hs.baseUrl, "GET", path, { token })
      expect(JSON.parse(config.bytes.toString())).toEqual({ "m.upload.size": 1000 })
    }
    const over = await http(hs.baseUrl, "POST", "/_matrix/media/v3/upload", { token, body: Buffer.alloc(1001) })
    expect([over.status, (JSON.parse(over.bytes.toString()) as { errcode: string }).errcode]).toEqual([413, "M_TOO_LARGE"])
  })

  it("needs a token to upload or to use the authenticated download; unknown media is M_NOT_FOUND", async () => {
    hs = await startEmbeddedHomeserver()
    const alice = await newUser(hs)
    expect((await http(hs.baseUrl, "POST", "/_matrix/media/v3/upload", { body: Buffer.from("x") })).status).toBe(401)
    expect((await http(hs.baseUrl, "GET", "/_matrix/client/v1/media/download/localhost/abc")).status).toBe(401)
    for (const path of ["/_matrix/client/v1/media/download/localhost/nope", "/_matrix/client/v1/media/download/elsewhere.org/nope", "/_matrix/client/v1/media/download/localhost/..%2F..%2Fjournal"]) {
      const res = await http(hs.baseUrl, "GET", path, { token: alice.session!.accessToken })
      expect([path, res.status]).toEqual([path, 404])
    }
  })

  it("keeps uploads across a restart with a data directory", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "widgethost-media-"))
    dirs.push(dataDir)
    hs = await startEmbeddedHomeserver({ dataDir })
    const alice = await newUser(hs)
    const up = await http(hs.baseUrl, "POST", "/_matrix/media/v3/upload", { token: alice.session!.accessToken, body: Buffer.from("kept"), type: "text/plain" })
    const { content_uri: uri } = JSON.parse(up.bytes.toString()) as { content_uri: string }
    await hs.close()
    hs = await startEmbeddedHomeserver({ dataDir })
    const down = await http(hs.baseUrl, "GET", `/_matrix/media/v3/download/${mediaPath(uri)}`)
    expect([down.status, down.bytes.toString(), down.headers.get("content-type")]).toEqual([200, "kept", "text/plain"])
  })
})
