/**
 * How MSC4039 files cross the widget's transport. The proposal types `upload_file`'s `data.file`
 * and `download_file`'s `response.file` as `XMLHttpRequestBodyInit`, which only postMessage can
 * carry (structured clone keeps a Blob or an ArrayBuffer as it is). A JSON transport (MSC3009
 * websockets) cannot carry bytes, so there the file is a string of padded standard base64
 * (RFC 4648 §4) both ways. Per session, one of:
 *
 * | encoding           | `upload_file` `data.file` accepted                            | `download_file` `response.file` |
 * | ------------------ | -------------------------------------------------------------- | ------------------------------- |
 * | `structured-clone` | Blob (its type kept), ArrayBuffer, typed array / DataView, text (UTF-8, as XHR sends a string) | Blob, typed as the server served it (what Element Web answers) |
 * | `base64`           | a base64 string                                                | a base64 string                 |
 *
 * Anything else (FormData, URLSearchParams, a plain object, bad base64) is refused as malformed
 * before anything reaches the homeserver: a form body would be uploaded as its multipart text.
 */
import * as Result from "./result.ts"
import { decodeBase64, encodeBase64 } from "./base64.ts"
import type { MediaFile } from "./homeserver-port.ts"

export type FileEncoding = "structured-clone" | "base64"

const isBlob = (value: unknown): value is Blob => typeof Blob !== "undefined" && value instanceof Blob

/**
 * The widget's `file` as a {@link MediaFile}, or why it is not one (a sentence for the widget).
 *
 * @example readWidgetFile("aGVsbG8=", "base64") // Success({ body: Uint8Array[104, 101, 108, 108, 111], size: 5 })
 */
export const readWidgetFile = (file: unknown, encoding: FileEncoding): Result.Result<MediaFile, string> => {
  if (encoding === "base64") {
    if (typeof file !== "string") return Result.fail("file must be a string of base64 on this transport (JSON cannot carry bytes)")
    const bytes = decodeBase64(file)
    return Result.isFailure(bytes) ? Result.fail("file is not valid padded base64 (RFC 4648)") : Result.succeed({ body: bytes.success, size: bytes.success.length })
  }
  if (isBlob(file)) return Result.succeed({ body: file, size: file.size, ...(file.type === "" ? {} : { contentType: file.type }) })
  if (file instanceof ArrayBuffer) return Result.succeed({ body: new Uint8Array(file), size: file.byteLength })
  if (ArrayBuffer.isView(file)) return Result.succeed({ body: new Uint8Array(file.buffer, file.byteOffset, file.byteLength), size: file.byteLength })
  if (typeof file === "string") {
    const bytes = new TextEncoder().encode(file)
    return Result.succeed({ body: bytes, size: bytes.length, contentType: "text/plain;charset=UTF-8" })
  }
  return Result.fail("file must be a Blob, an ArrayBuffer, a typed array or a string")
}

/**
 * A downloaded file as the widget's transport carries it: a Blob over postMessage, base64 text
 * over JSON.
 *
 * @example widgetFileOf(new Uint8Array([104, 105]), "text/plain", "base64") // "aGk="
 */
export const widgetFileOf = (data: Uint8Array, contentType: string | undefined, encoding: FileEncoding): Blob | string =>
  encoding === "base64" ? encodeBase64(data) : new Blob([data as Uint8Array<ArrayBuffer>], contentType === undefined ? {} : { type: contentType })

/** `mxc://<server name>/<media id>`, split; `undefined` when `uri` is not one (the spec's media id alphabet). */
export const parseMxc = (uri: string): { readonly serverName: string; readonly mediaId: string } | undefined => {
  const match = /^mxc:\/\/([^/?#\s]+)\/([A-Za-z0-9_-]+)$/.exec(uri)
  return match === null ? undefined : { serverName: match[1]!, mediaId: match[2]! }
}
