/**
 * MSC4533: `rtc_livekit_get_token` and `rtc_livekit_delegate_delayed_leave`, the two MSC4195
 * LiveKit endpoints a call widget needs and cannot call itself (it holds no access token). Each
 * is refused without its own capability before anything is asked; otherwise the widget's `data`
 * goes to the homeserver as the body, verbatim, and the homeserver's body comes back verbatim. Its
 * error passes through as `matrix_api_error`: a 404 `M_UNRECOGNIZED` tells the widget the server
 * has no such endpoint (and, for the delayed leave, to keep refreshing it itself).
 */
import type { RtcLivekitEndpoint } from "../homeserver-port.ts"
import { ProtocolError } from "../protocol-error.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

const CAPABILITY: Readonly<Record<RtcLivekitEndpoint, { readonly permission: "rtcLivekitGetToken" | "rtcLivekitDelegateDelayedLeave"; readonly words: string }>> = {
  get_token: { permission: "rtcLivekitGetToken", words: "LiveKit tokens (needs rtc_livekit_get_token)" },
  delegate_delayed_leave: { permission: "rtcLivekitDelegateDelayedLeave", words: "delegating the delayed leave (needs rtc_livekit_delegate_delayed_leave)" }
}

export const rtcLivekit =
  (endpoint: RtcLivekitEndpoint) =>
  (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
    const { permission, words } = CAPABILITY[endpoint]
    if (!s.state.permissions[permission]) return s.fail(raw, ProtocolError.NotAllowed({ what: words }))
    s.start(raw)
    s.call({ _tag: "RtcLivekit", endpoint, body: data }, { _tag: "Answer", raw, format: "body" })
  }
