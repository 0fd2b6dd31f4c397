import * as Result from "./result.ts"
import { describe, expect, it } from "vitest"
import { type FileEncoding, parseMxc, readWidgetFile, widgetFileOf } from "./media-file.ts"

/** given the widget's `file` on a transport, want the bytes and type uploaded, or the refusal. */
const table: ReadonlyArray<readonly [name: string, file: unknown, encoding: FileEncoding, want: { bytes: ReadonlyArray<number>; contentType?: string } | RegExp]> = [
  ["base64", "aGk=", "base64", { bytes: [104, 105] }],
  ["empty base64", "", "base64", { bytes: [] }],
  ["unpadded base64", "aGk", "base64", /padded base64/],
  ["bytes on a JSON transport", new Uint8Array([1]), "base64", /string of base64/],
  ["ArrayBuffer", new Uint8Array([1, 2]).buffer, "structured-clone", { bytes: [1, 2] }],
  ["DataView", new DataView(new Uint8Array([9, 1, 2, 9]).buffer, 1, 2), "structured-clone", { bytes: [1, 2] }],
  ["text", "é", "structured-clone", { bytes: [0xc3, 0xa9], contentType: "text/plain;charset=UTF-8" }],
  ["URLSearchParams", new URLSearchParams("a=b"), "structured-clone", /Blob, an ArrayBuffer/],
  ["null", null, "structured-clone", /Blob, an ArrayBuffer/]
]

describe("readWidgetFile", () => {
  it.each(table)("%s", (_name, file, encoding, want) => {
    const read = readWidgetFile(file, encoding)
    if (want instanceof RegExp) return expect(Result.isFailure(read) && read.failure).toMatch(want)
    if (Result.isFailure(read)) throw new Error(read.failure)
    const { body, size, contentType } = read.success
    expect(body instanceof Uint8Array ? [...body] : undefined).toEqual(want.bytes)
    expect(size).toBe(want.bytes.length)
    expect(contentType).toBe(want.contentType)
  })

  it("a Blob is taken as it is: its size and type, unread", () => {
    const blob = new Blob(["abc"], { type: "image/png" })
    expect(readWidgetFile(blob, "structured-clone")).toStrictEqual(Result.succeed({ body: blob, size: 3, contentType: "image/png" }))
  })
})

describe("widgetFileOf", () => {
  it("base64 over JSON, a typed Blob over postMessage", async () => {
    expect(widgetFileOf(new Uint8Array([104, 105]), "text/plain", "base64")).toBe("aGk=")
    const blob = widgetFileOf(new Uint8Array([104, 105]), "text/plain", "structured-clone") as Blob
    expect([blob.type, await blob.text()]).toEqual(["text/plain", "hi"])
  })
})

describe("parseMxc", () => {
  it.each([
    ["mxc://example.org/abc_D-1", { serverName: "example.org", mediaId: "abc_D-1" }],
    ["mxc://127.0.0.1:8448/x", { serverName: "127.0.0.1:8448", mediaId: "x" }],
    ["mxc://example.org/a/b", undefined],
    ["mxc://example.org/", undefined],
    ["mxc:///abc", undefined],
    ["https://example.org/abc", undefined],
    ["mxc://example.org/abc?x=1", undefined]
  ])("%s", (uri, want) => expect(parseMxc(uri)).toEqual(want))
})
