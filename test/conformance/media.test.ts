/**
 * Conformance: MSC4039 `get_media_config`, `upload_file`, `download_file`, stable and unstable
 * names. Given what was approved, the transport (files as Blobs and ArrayBuffers over
 * postMessage, base64 over websockets) and the homeserver's media repository, a request gets
 * exactly one answer, and the homeserver is asked only what the row says: nothing for a refused
 * request, only the config for a file larger than `m.upload.size`.
 */
import { HomeserverError, SUPPORTED_API_VERSIONS, type TransportName } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness, makeInMemoryHomeserver } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const UP = "org.matrix.msc4039.upload_file"
const DOWN = "org.matrix.msc4039.download_file"
const bytes = (...values: ReadonlyArray<number>) => new Uint8Array(values)
/** "hello" in bytes and in base64. */
const HELLO = bytes(104, 101, 108, 108, 111)
const HELLO_B64 = "aGVsbG8="
const STORED = { "media-a": { data: HELLO, contentType: "text/plain" } }
const serverError = (status: number, errcode: string, error: string, url: string) => new HomeserverError({ message: error, http: { status, headers: {}, url, body: { errcode, error } } })

interface Given {
  readonly approved: ReadonlyArray<string>
  readonly transport?: TransportName
  readonly config?: Readonly<Record<string, unknown>>
  readonly media?: Readonly<Record<string, { readonly data: Uint8Array; readonly contentType?: string }>>
  /** A port method that fails once, and how. */
  readonly fail?: { readonly method: string; readonly error: HomeserverError }
}

interface Case {
  readonly name: string
  readonly given: Given
  readonly send: { readonly action: string; readonly data: Record<string, unknown> }
  /** The response (a Blob shown as `{ blob: { type, bytes } }`). */
  readonly want: unknown
  /** The port methods called, in order. */
  readonly calls: ReadonlyArray<string>
  /** What the media repository holds afterwards, when the row uploads. */
  readonly stored?: { readonly data: Uint8Array; readonly contentType?: string }
}

const send = (action: string, data: Record<string, unknown> = {}) => ({ action, data })
const refused = (code: string, text: string) => ({ error: { code, message: stringContaining(text) } })

const cases: ReadonlyArray<Case> = [
  // get_media_config: the server's body, behind m.upload_file (as matrix-widget-api checks it)
  { name: "config (unstable names): the server's body verbatim", given: { approved: [UP], config: { "m.upload.size": 50, "org.example": true } }, send: send("org.matrix.msc4039.get_media_config"), want: { "m.upload.size": 50, "org.example": true }, calls: ["mediaConfig"] },
  { name: "config (stable names)", given: { approved: ["m.upload_file"], config: { "m.upload.size": 50 } }, send: send("get_media_config"), want: { "m.upload.size": 50 }, calls: ["mediaConfig"] },
  { name: "config with only download approved: refused, nothing asked", given: { approved: [DOWN] }, send: send("get_media_config"), want: refused("NotAllowed", "m.upload_file"), calls: [] },
  {
    name: "config: the server's error as matrix_api_error",
    given: { approved: [UP], fail: { method: "mediaConfig", error: serverError(404, "M_UNRECOGNIZED", "Unrecognized request", "/_matrix/client/v1/media/config") } },
    send: send("get_media_config"),
    want: { error: { code: "Homeserver", matrix_api_error: { http_status: 404, response: { errcode: "M_UNRECOGNIZED" } } } },
    calls: ["mediaConfig"]
  },

  // upload_file over postMessage: what structured clone carries
  { name: "upload an ArrayBuffer: its mxc URI, the bytes stored unchanged", given: { approved: [UP] }, send: send(UP, { file: HELLO.slice().buffer }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO } },
  { name: "upload a Blob: its type kept", given: { approved: [UP] }, send: send(UP, { file: new Blob([HELLO], { type: "image/png" }) }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO, contentType: "image/png" } },
  { name: "upload a typed array view: only its bytes", given: { approved: [UP] }, send: send(UP, { file: new Uint8Array([0, 104, 105, 0]).subarray(1, 3) }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: bytes(104, 105) } },
  { name: "upload a string: UTF-8 text, as XHR sends one", given: { approved: [UP] }, send: send(UP, { file: "hé" }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: bytes(104, 0xc3, 0xa9), contentType: "text/plain;charset=UTF-8" } },
  { name: "upload (stable names)", given: { approved: ["m.upload_file"] }, send: send("upload_file", { file: HELLO.slice().buffer }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO } },
  { name: "upload an object: malformed, nothing asked", given: { approved: [UP] }, send: send(UP, { file: { data: "hello" } }), want: refused("Malformed", "Blob"), calls: [] },
  { name: "upload without a file: malformed, nothing asked", given: { approved: [UP] }, send: send(UP), want: refused("Malformed", "file"), calls: [] },
  { name: "upload not approved: refused, nothing asked", given: { approved: [DOWN] }, send: send(UP, { file: "x" }), want: refused("NotAllowed", "m.upload_file"), calls: [] },

  // upload_file over websockets: base64 text
  { name: "websocket upload: base64 decoded, the bytes stored", given: { approved: [UP], transport: "m.websockets" }, send: send(UP, { file: HELLO_B64 }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO } },
  { name: "websocket upload of text that is not base64: malformed, nothing asked", given: { approved: [UP], transport: "m.websockets" }, send: send(UP, { file: "hello" }), want: refused("Malformed", "base64"), calls: [] },
  { name: "websocket upload of a non-string: malformed, nothing asked", given: { approved: [UP], transport: "m.websockets" }, send: send(UP, { file: [104, 105] }), want: refused("Malformed", "base64"), calls: [] },

  // the server's size limit, checked before any byte is sent
  { name: "larger than m.upload.size: refused after the config, never uploaded", given: { approved: [UP], config: { "m.upload.size": 4 } }, send: send(UP, { file: HELLO.slice().buffer }), want: refused("TooLarge", "at most 4"), calls: ["mediaConfig"] },
  { name: "a Blob larger than m.upload.size: refused by its size, unread", given: { approved: [UP], config: { "m.upload.size": 4 } }, send: send(UP, { file: new Blob([HELLO]) }), want: refused("TooLarge", "5 bytes"), calls: ["mediaConfig"] },
  { name: "exactly m.upload.size: uploaded", given: { approved: [UP], config: { "m.upload.size": 5 } }, send: send(UP, { file: HELLO.slice().buffer }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO } },
  { name: "a server that names no limit: uploaded", given: { approved: [UP], config: {} }, send: send(UP, { file: HELLO.slice().buffer }), want: { content_uri: "mxc://localhost/media0" }, calls: ["mediaConfig", "uploadFile"], stored: { data: HELLO } },
  {
    name: "the config fails: its error, never uploaded",
    given: { approved: [UP], fail: { method: "mediaConfig", error: serverError(502, "M_UNKNOWN", "Bad gateway", "/_matrix/client/v1/media/config") } },
    send: send(UP, { file: "x" }),
    want: { error: { code: "Homeserver", matrix_api_error: { http_status: 502 } } },
    calls: ["mediaConfig"]
  },
  {
    name: "the upload fails: the server's error as matrix_api_error",
    given: { approved: [UP], fail: { method: "uploadFile", error: serverError(403, "M_FORBIDDEN", "Quota exceeded", "/_matrix/media/v3/upload") } },
    send: send(UP, { file: "x" }),
    want: { error: { code: "Homeserver", message: "Quota exceeded", matrix_api_error: { http_status: 403, response: { errcode: "M_FORBIDDEN" } } } },
    calls: ["mediaConfig", "uploadFile"]
  },

  // download_file
  { name: "download over postMessage: a Blob typed as served", given: { approved: [DOWN], media: STORED }, send: send(DOWN, { content_uri: "mxc://localhost/media-a" }), want: { file: { blob: { type: "text/plain", bytes: [...HELLO] } } }, calls: ["downloadFile"] },
  { name: "download over websockets: base64 text", given: { approved: [DOWN], media: STORED, transport: "m.websockets" }, send: send(DOWN, { content_uri: "mxc://localhost/media-a" }), want: { file: HELLO_B64 }, calls: ["downloadFile"] },
  { name: "download (stable names)", given: { approved: ["m.download_file"], media: STORED, transport: "m.websockets" }, send: send("download_file", { content_uri: "mxc://localhost/media-a", timeout_ms: 20000 }), want: { file: HELLO_B64 }, calls: ["downloadFile"] },
  { name: "download not approved: refused, nothing asked", given: { approved: [UP], media: STORED }, send: send(DOWN, { content_uri: "mxc://localhost/media-a" }), want: refused("NotAllowed", "m.download_file"), calls: [] },
  { name: "download of a URI that is not mxc: malformed, nothing asked", given: { approved: [DOWN] }, send: send(DOWN, { content_uri: "https://localhost/media-a" }), want: refused("Malformed", "mxc://"), calls: [] },
  { name: "download of an mxc URI with a path: malformed", given: { approved: [DOWN] }, send: send(DOWN, { content_uri: "mxc://localhost/a/../b" }), want: refused("Malformed", "mxc://"), calls: [] },
  { name: "download with a negative timeout_ms: malformed", given: { approved: [DOWN] }, send: send(DOWN, { content_uri: "mxc://localhost/media-a", timeout_ms: -1 }), want: refused("Malformed", "timeout_ms"), calls: [] },
  {
    name: "download asking the host to decrypt: unsupported, never ciphertext as if clear",
    given: { approved: [DOWN], media: STORED },
    send: send(DOWN, { content_uri: "mxc://localhost/media-a", encryption: { v: "v2", iv: "w+sE15fzSc0AAAAAAAAAAA" } }),
    want: refused("Unsupported", "decrypt"),
    calls: []
  },
  { name: "download of missing media: the server's 404", given: { approved: [DOWN] }, send: send(DOWN, { content_uri: "mxc://localhost/nope" }), want: { error: { code: "Homeserver", matrix_api_error: { http_status: 404, response: { errcode: "M_NOT_FOUND" } } } }, calls: ["downloadFile"] }
]

/** A response with any Blob in `file` read into bytes, so rows compare plain data. */
const shown = async (response: unknown): Promise<unknown> => {
  const file = (response as { file?: unknown } | undefined)?.file
  if (!(file instanceof Blob)) return response
  return { ...(response as object), file: { blob: { type: file.type, bytes: [...new Uint8Array(await file.arrayBuffer())] } } }
}

const hosted = async (given: Given) => {
  const homeserver = makeInMemoryHomeserver()
  if (given.config !== undefined) homeserver.mediaConfigBody = given.config
  for (const [mediaId, file] of Object.entries(given.media ?? {})) homeserver.media.set(mediaId, file)
  if (given.fail !== undefined) homeserver.failNext(given.fail.method, given.fail.error)
  const h = new Harness({ approver: approveAll, homeserver, ...(given.transport === undefined ? {} : { transport: given.transport }) })
  await h.ready(given.approved)
  h.take()
  homeserver.calls.length = 0
  return { h, homeserver }
}

const mediaMethods = new Set(["mediaConfig", "uploadFile", "downloadFile"])

describe("MSC4039 media", () => {
  it.each(cases)("$name", async ({ given, send: { action, data }, want, calls, stored }) => {
    const { h, homeserver } = await hosted(given)
    const id = h.request(action, data)
    await flush(10)
    const out = h.take().filter((m) => m.requestId === id)
    expect(out).toHaveLength(1)
    expect(await shown((out[0] as { response: unknown }).response)).toMatchObject(want as object)
    expect(homeserver.calls.filter((c) => mediaMethods.has(c.method)).map((c) => c.method)).toEqual(calls)
    if (stored !== undefined) expect(homeserver.media.get("media0")).toEqual(stored)
  })

  it("timeout_ms reaches the homeserver with the mxc URI's parts", async () => {
    const { h, homeserver } = await hosted({ approved: [DOWN], media: STORED })
    h.request(DOWN, { content_uri: "mxc://localhost/media-a", timeout_ms: 1500 })
    await flush()
    expect(homeserver.calls.find((c) => c.method === "downloadFile")?.args).toEqual({ _tag: "DownloadFile", serverName: "localhost", mediaId: "media-a", timeoutMs: 1500 })
  })

  it("what one widget uploads over websockets, another downloads over postMessage, byte for byte", async () => {
    const homeserver = makeInMemoryHomeserver()
    const file = Uint8Array.from({ length: 256 }, (_, i) => i)
    const up = new Harness({ approver: approveAll, homeserver, transport: "m.websockets" })
    await up.ready(["m.upload_file"])
    up.take()
    const upload = up.request("upload_file", { file: Buffer.from(file).toString("base64") })
    await flush()
    const { content_uri } = (up.take().find((m) => m.requestId === upload) as { response: { content_uri: string } }).response
    const down = new Harness({ approver: approveAll, homeserver })
    await down.ready(["m.download_file"])
    down.take()
    const download = down.request("download_file", { content_uri })
    await flush()
    const answer = (down.take().find((m) => m.requestId === download) as { response: { file: Blob } }).response
    expect(new Uint8Array(await answer.file.arrayBuffer())).toEqual(file)
  })

  it("the capabilities are approved like any other, and org.matrix.msc4039 is advertised by the engine", async () => {
    const h = new Harness({ approver: approveAll })
    await h.ready([UP, "m.download_file"])
    expect(h.session.info().approved).toEqual([UP, "m.download_file"])
    expect(SUPPORTED_API_VERSIONS).toContain("org.matrix.msc4039")
  })

  it("before ready every media action is refused, never silent", () => {
    const h = new Harness({ approver: approveAll })
    for (const action of ["get_media_config", "upload_file", "org.matrix.msc4039.download_file"]) {
      expect(h.responseTo(h.request(action, { file: "x", content_uri: "mxc://localhost/a" }))).toMatchObject({ error: { code: "WrongPhase" } })
    }
  })
})
