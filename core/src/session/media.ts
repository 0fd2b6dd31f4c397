/**
 * MSC4039, the content repository through the widget: `get_media_config`, `upload_file`,
 * `download_file` (stable and `org.matrix.msc4039.` names). Like matrix-widget-api,
 * `get_media_config` needs `m.upload_file` (its one field is the upload limit) and the host
 * neither encrypts nor decrypts: the widget does, and keeps the `EncryptedFile` next to the mxc
 * URI (the proposal's "SHOULD encrypt" is not what its reference host or Element does, and a widget
 * that encrypts itself would see its file encrypted twice). A download asking for decryption
 * (`encryption`) is refused as unsupported, never answered with ciphertext as if decrypted.
 *
 * An upload asks the server's `m.upload.size` first and refuses a larger file before any byte is
 * sent; files cross the transport as `media-file.ts` describes.
 */
import * as Result from "../result.ts"
import type { MediaFile } from "../homeserver-port.ts"
import { type FileEncoding, parseMxc, readWidgetFile, widgetFileOf } from "../media-file.ts"
import { ProtocolError, tooLarge } from "../protocol-error.ts"
import type { CallResult } from "./input.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

const encodingOf = (s: Stepper): FileEncoding => s.state.config.fileEncoding ?? "structured-clone"

const needsUpload = (s: Stepper, raw: RawRequest): boolean => {
  if (s.state.permissions.uploadFile) return true
  s.fail(raw, ProtocolError.NotAllowed({ what: "the media repository (needs m.upload_file)" }))
  return false
}

export const getMediaConfig = (s: Stepper, raw: RawRequest): void => {
  if (!needsUpload(s, raw)) return
  s.start(raw)
  s.call({ _tag: "MediaConfig" }, { _tag: "Answer", raw, format: "body" })
}

export const uploadFile = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  if (!needsUpload(s, raw)) return
  const file = readWidgetFile(data["file"], encodingOf(s))
  if (Result.isFailure(file)) return s.fail(raw, ProtocolError.Malformed({ issue: file.failure }))
  s.start(raw)
  s.call({ _tag: "MediaConfig" }, { _tag: "UploadSizeCheck", raw, file: file.success })
}

/** The server's limit arrived: upload when the file fits (or the server names no limit). */
export const onUploadSizeCheck = (s: Stepper, raw: RawRequest, file: MediaFile, result: CallResult): void => {
  if (result._tag === "Failed") return s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
  const limit = result._tag === "Body" ? result.value["m.upload.size"] : undefined
  if (typeof limit === "number" && file.size > limit) return s.fail(raw, tooLarge(file.size, limit))
  s.call({ _tag: "UploadFile", file }, { _tag: "Media", raw, answer: "uploaded" })
}

export const downloadFile = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  if (!s.state.permissions.downloadFile) return s.fail(raw, ProtocolError.NotAllowed({ what: "downloading files (needs m.download_file)" }))
  const { content_uri: uri, timeout_ms: timeoutMs, encryption } = data
  const mxc = typeof uri === "string" ? parseMxc(uri) : undefined
  if (mxc === undefined) return s.fail(raw, ProtocolError.Malformed({ issue: "content_uri must be an mxc://<server name>/<media id> URI" }))
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && Number.isSafeInteger(timeoutMs) && timeoutMs >= 0)) {
    return s.fail(raw, ProtocolError.Malformed({ issue: "timeout_ms must be a non-negative integer when present" }))
  }
  if (encryption !== undefined) return s.fail(raw, ProtocolError.Unsupported({ what: "decrypting downloads (encryption): the widget decrypts the file itself" }))
  s.start(raw)
  s.call({ _tag: "DownloadFile", ...mxc, ...(timeoutMs === undefined ? {} : { timeoutMs }) }, { _tag: "Media", raw, answer: "downloaded" })
}

/** An upload's or download's answer, in the widget's terms. */
export const onMedia = (s: Stepper, raw: RawRequest, answer: "uploaded" | "downloaded", result: CallResult): void => {
  if (result._tag === "Failed") return s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
  if (answer === "uploaded" && result._tag === "Uploaded") return s.reply(raw, { content_uri: result.value.contentUri })
  if (answer === "downloaded" && result._tag === "Downloaded") return s.reply(raw, { file: widgetFileOf(result.value.data, result.value.contentType, encodingOf(s)) })
  s.fail(raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
}
