/**
 * MSC4039's content repository calls over a `MatrixClient`: the media config and downloads through
 * authenticated media (`/_matrix/client/v1/media`, the client's token), uploads through
 * `uploadContent`. Bytes pass unchanged both ways: the widget encrypts and decrypts (as with
 * matrix-widget-api and Element Web's widget driver).
 */
import type { DownloadedFile, HomeserverErrorResponse, HomeserverRequestOf } from "@widgethost/core"
import { ClientPrefix, type MatrixClient, MediaPrefix, Method } from "matrix-js-sdk"
import { isUnrecognised, portError, viaSdk } from "./sdk-errors.ts"

/** `GET /_matrix/client/v1/media/config`, or the deprecated v3 path on servers from before Matrix 1.11. */
export const mediaConfig = async (client: MatrixClient): Promise<Readonly<Record<string, unknown>>> => {
  const get = (prefix: string, path: string) => client.http.authedRequest<Record<string, unknown>>(Method.Get, path, undefined, undefined, { prefix })
  try {
    return await get(ClientPrefix.V1, "/media/config")
  } catch (stable) {
    if (!isUnrecognised(stable)) throw portError(stable)
    try {
      return await get(MediaPrefix.V3, "/config")
    } catch {
      throw portError(stable)
    }
  }
}

export const uploadFile = async (client: MatrixClient, request: HomeserverRequestOf<"UploadFile">): Promise<{ readonly contentUri: string }> => {
  const { body, contentType } = request.file
  const res = await viaSdk(() => client.uploadContent(body as XMLHttpRequestBodyInit, { includeFilename: false, type: contentType ?? "application/octet-stream" }))
  return { contentUri: res.content_uri }
}

/** The homeserver's refusal of a download, as the Promise port rejects (its JSON error body when it sent one). */
const downloadError = async (res: Response, url: string): Promise<HomeserverErrorResponse> => {
  const text = await res.text()
  let body: Record<string, unknown> = {}
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === "object" && parsed !== null) body = parsed as Record<string, unknown>
  } catch {
    // Not JSON: the status says enough.
  }
  const retryAfter = res.headers.get("retry-after")
  return {
    status: res.status,
    errcode: typeof body["errcode"] === "string" ? body["errcode"] : "M_UNKNOWN",
    ...(typeof body["error"] === "string" ? { error: body["error"] } : {}),
    headers: retryAfter === null ? {} : { "retry-after": retryAfter },
    url,
    body
  }
}

export const downloadFile = async (client: MatrixClient, request: HomeserverRequestOf<"DownloadFile">): Promise<DownloadedFile> => {
  const url = new URL(`${client.baseUrl.replace(/\/$/, "")}${ClientPrefix.V1}/media/download/${encodeURIComponent(request.serverName)}/${encodeURIComponent(request.mediaId)}`)
  if (request.timeoutMs !== undefined) url.searchParams.set("timeout_ms", String(request.timeoutMs))
  const token = client.getAccessToken()
  const res = await client.http.fetch(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) {
    // The Promise port's contract: a refusal rejects with the response itself, as `portError` does.
    const refusal: unknown = await downloadError(res, url.toString())
    throw refusal
  }
  const contentType = res.headers.get("content-type")
  const data = new Uint8Array(await res.arrayBuffer())
  return contentType === null ? { data } : { data, contentType }
}
