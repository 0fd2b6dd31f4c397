/**
 * MSC4515 `get_rtc_transports`: the homeserver's MatrixRTC transports (where a call widget such
 * as Element Call finds its media server). Refused without `rtc_transports` before anything is
 * asked; otherwise the homeserver's answer goes to the widget verbatim, and its error (an
 * unsupported server's 404 `M_UNRECOGNIZED`, say) as `matrix_api_error`, so the widget can tell
 * "not here" from a transient failure.
 */
import { ProtocolError } from "../protocol-error.ts"
import type { RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"

export const getRtcTransports = (s: Stepper, raw: RawRequest): void => {
  if (!s.state.permissions.rtcTransports) return s.fail(raw, ProtocolError.NotAllowed({ what: "RTC transports (needs rtc_transports)" }))
  s.start(raw)
  s.call({ _tag: "RtcTransports" }, { _tag: "Answer", raw, format: "body" })
}
