import { notFound, tooLarge } from "./errors.ts"
import type { Auth, Env, Reply, RequestContext, Route } from "./routing.ts"
import { authed, json, open } from "./routing.ts"

/**
 * The content repository, as much of it as widgets need (MSC4039's `get_media_config`,
 * `upload_file`, `download_file`): upload, download (authenticated `/_matrix/client/v1/media`,
 * and the deprecated unauthenticated `/_matrix/media/v3` that older clients still use) and the
 * upload size limit. Media of other servers cannot exist here, so it is 404 `M_NOT_FOUND`.
 */

const config = ({ env }: { readonly env: Env }): Reply => json({ "m.upload.size": env.maxUploadBytes })

/** The body as uploaded: never parsed as JSON. */
const upload = async ({ env, auth, query, raw, headers }: RequestContext<Auth, never>): Promise<Reply> => {
  const bytes = raw ?? Buffer.alloc(0)
  if (bytes.length > env.maxUploadBytes) throw tooLarge(`Uploads are limited to ${env.maxUploadBytes} bytes.`)
  const contentType = headers["content-type"] ?? "application/octet-stream"
  const filename = query.get("filename") ?? undefined
  const mediaId = await env.media.put(bytes, contentType, filename, auth.userId)
  return json({ content_uri: `mxc://${env.serverName}/${mediaId}` })
}

const download = async ({ env, params }: RequestContext<Auth | undefined, "serverName" | "mediaId", "fileName">): Promise<Reply> => {
  const media = params.serverName === env.serverName ? await env.media.get(params.mediaId) : undefined
  if (media === undefined) throw notFound("Not found")
  const name = params.fileName ?? media.filename
  return {
    body: media.bytes,
    headers: {
      "content-type": media.contentType,
      // Served as an attachment, never rendered inline: uploaded HTML must not run on this origin.
      "content-disposition": name === undefined ? "attachment" : `attachment; filename*=utf-8''${encodeURIComponent(name)}`,
      "content-security-policy": "sandbox; default-src 'none'",
      "x-content-type-options": "nosniff"
    }
  }
}

const AUTHED = "/_matrix/client/v1/media"
const LEGACY = "/_matrix/media/{v3}"

export const routes: ReadonlyArray<Route> = [
  authed("GET", `${AUTHED}/config`, config),
  authed("GET", `${LEGACY}/config`, config),
  { ...authed("POST", `${LEGACY}/upload`, upload), rawBody: true },
  authed("GET", `${AUTHED}/download/:serverName/:mediaId`, download),
  authed("GET", `${AUTHED}/download/:serverName/:mediaId/:fileName`, download),
  open("GET", `${LEGACY}/download/:serverName/:mediaId`, download),
  open("GET", `${LEGACY}/download/:serverName/:mediaId/:fileName`, download)
]
