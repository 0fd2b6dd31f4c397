/**
 * The port's content repository calls (MSC4039): the media config, an upload of the widget's bytes
 * as they are, and an authenticated download (`/_matrix/client/v1/media`, MSC3916). Nothing is
 * encrypted or decrypted here: MSC4039 widgets do that themselves, as with matrix-widget-api.
 */
import { Effect } from "effect"
import { HomeserverError, type DownloadedFile, type HomeserverRequest } from "@widgethost/core"
import { tryPromise } from "./account-calls.ts"
import { type HttpBytes, type MatrixHttp, path } from "./matrix-http.ts"

const isUnrecognised = (e: unknown): boolean =>
  e instanceof HomeserverError && e.http?.status === 404 && (e.http.body as { errcode?: unknown }).errcode === "M_UNRECOGNIZED"

export const mediaCalls = (http: MatrixHttp) => {
  /**
   * `GET /_matrix/client/v1/media/config`; a server from before authenticated media (Matrix 1.11)
   * answers the deprecated `/_matrix/media/v3/config` instead. The stable path's error is the one
   * reported when neither exists.
   */
  const mediaConfig = (): Effect.Effect<Readonly<Record<string, unknown>>, HomeserverError> =>
    tryPromise("media config", async (signal) => {
      try {
        return await http.request<Record<string, unknown>>({ method: "GET", path: "/_matrix/client/v1/media/config", signal })
      } catch (stable) {
        if (!isUnrecognised(stable)) throw stable
        try {
          return await http.request<Record<string, unknown>>({ method: "GET", path: "/_matrix/media/v3/config", signal })
        } catch {
          throw stable
        }
      }
    })

  const uploadFile = (request: Extract<HomeserverRequest, { _tag: "UploadFile" }>): Effect.Effect<{ readonly contentUri: string }, HomeserverError> =>
    tryPromise("upload file", async (signal) => {
      const { body, contentType } = request.file
      const data = body instanceof Uint8Array ? body : new Uint8Array(await body.arrayBuffer())
      const res = await http.request<{ content_uri?: unknown }>({
        method: "POST",
        path: "/_matrix/media/v3/upload",
        bytes: { data, contentType: contentType ?? "application/octet-stream" },
        signal
      })
      if (typeof res.content_uri !== "string") throw new HomeserverError({ message: "The homeserver answered the upload without a content_uri" })
      return { contentUri: res.content_uri }
    })

  const downloadFile = (request: Extract<HomeserverRequest, { _tag: "DownloadFile" }>): Effect.Effect<DownloadedFile, HomeserverError> =>
    tryPromise("download file", async (signal) => {
      const res = await http.request<HttpBytes>({
        method: "GET",
        path: path`/_matrix/client/v1/media/download/${request.serverName}/${request.mediaId}`,
        ...(request.timeoutMs === undefined ? {} : { query: { timeout_ms: request.timeoutMs } }),
        answer: "bytes",
        signal
      })
      return res.contentType === undefined ? { data: res.data } : { data: res.data, contentType: res.contentType }
    })

  return { mediaConfig, uploadFile, downloadFile }
}
