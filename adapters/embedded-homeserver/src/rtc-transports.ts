import { unrecognized } from "./errors.ts"
import type { Auth, Reply, RequestContext, Route } from "./routing.ts"
import { authed, json } from "./routing.ts"

/**
 * MatrixRTC transport discovery (MSC4143, what MSC4515's `get_rtc_transports` proxies): the
 * transports this server's operator configured, typically a LiveKit JWT service. With none
 * configured the endpoint answers 404 `M_UNRECOGNIZED`, as a server without the feature does,
 * so a widget can tell "unsupported here" from a transient failure.
 */

/** One transport entry: `type` plus the properties its specification defines (`livekit_service_url`). */
export type RtcTransport = { readonly type: string } & Readonly<Record<string, unknown>>

const answer = ({ env }: RequestContext<Auth, never>): Reply => {
  if (env.rtcTransports.length === 0) throw unrecognized("No RTC transports are configured on this server.")
  return json({ rtc_transports: env.rtcTransports })
}

export const routes: ReadonlyArray<Route> = [
  authed("GET", "/_matrix/client/v1/rtc/transports", answer),
  authed("GET", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports", answer)
]
