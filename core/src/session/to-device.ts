/** MSC3819 to-device messages, both directions. Encryption itself is the homeserver port's job. */
import { isCryptoInternalToDeviceType } from "../crypto-types.ts"
import type { ToDeviceEvent } from "../matrix.ts"
import { ProtocolError } from "../protocol-error.ts"
import { isServing, type RawRequest } from "./state.ts"
import type { Stepper } from "./step.ts"
import { isObject } from "../is-object.ts"


/** `{user: {device or "*": content}}`, all objects. */
const isMessageMap = (value: unknown): value is Record<string, Record<string, Record<string, unknown>>> =>
  isObject(value) && Object.values(value).every((devices) => isObject(devices) && Object.values(devices).every(isObject))

export const sendToDevice = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const { type, encrypted, messages } = data
  if (typeof type !== "string" || type.length === 0) return s.fail(raw, ProtocolError.Malformed({ issue: "type must be a non-empty string" }))
  // MSC3819: the client MUST encrypt by default, so an absent flag means encrypted.
  if (encrypted !== undefined && typeof encrypted !== "boolean") return s.fail(raw, ProtocolError.Malformed({ issue: "encrypted must be a boolean when present" }))
  if (!isMessageMap(messages)) return s.fail(raw, ProtocolError.Malformed({ issue: "messages must map user ids to device ids to content objects" }))
  if (!s.state.permissions.maySendToDevice(type) || isCryptoInternalToDeviceType(type)) return s.fail(raw, ProtocolError.NotAllowed({ what: `sending ${type} to-device messages` }))
  s.start(raw)
  s.call({ _tag: "SendToDevice", type, encrypted: encrypted ?? true, messages }, { _tag: "Answer", raw, format: "empty" })
}

export const deliverToDevice = (s: Stepper, event: ToDeviceEvent): void => {
  if (!isServing(s.phase) || isCryptoInternalToDeviceType(event.type) || !s.state.permissions.mayReceiveToDevice(event.type)) return
  s.sendRequest("send_to_device", { type: event.type, sender: event.sender, content: event.content, encrypted: event.encrypted }, "delivery")
}
