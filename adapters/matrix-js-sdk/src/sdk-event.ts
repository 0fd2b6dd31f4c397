/**
 * A matrix-js-sdk `MatrixEvent` as the engine's {@link RoomEvent}, and where it stands in its
 * decryption: only a clear or decrypted event is ever handed on, never ciphertext and never the
 * SDK's `m.bad.encrypted` stand-in for an event it could not decrypt.
 */
import type { RoomEvent } from "@widgethost/core"
import type { MatrixEvent } from "matrix-js-sdk"

/** The parts of `MatrixEvent` read here (tests use stand-ins of this shape). */
export type SdkEvent = Pick<
  MatrixEvent,
  "getId" | "getRoomId" | "getEffectiveEvent" | "isEncrypted" | "isBeingDecrypted" | "isDecryptionFailure" | "getClearContent" | "isRedacted" | "shouldAttemptDecryption" | "status" | "decryptionFailureReason"
>

/**
 * - `ready`: clear, or decrypted: it can be handed on;
 * - `decrypting`: being decrypted, or not tried yet (the caller starts it);
 * - `undecryptable`: decryption failed; the SDK tries again when its key arrives;
 * - `never`: encrypted and redacted (no ciphertext left to decrypt): nothing to hand on, ever.
 */
export type DecryptionState = "ready" | "decrypting" | "undecryptable" | "never"

export const decryptionState = (event: SdkEvent): DecryptionState => {
  if (!event.isEncrypted()) return "ready"
  if (event.isBeingDecrypted()) return "decrypting"
  if (event.isDecryptionFailure()) return "undecryptable"
  if (event.getClearContent() !== null) return "ready"
  return event.shouldAttemptDecryption() ? "decrypting" : "never"
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * The event as a client sees it after decryption (the clear type and content, the wire
 * content's `m.relates_to`), or undefined when it is not a room event one could hand on (no id,
 * still encrypted).
 *
 * @example
 * const event = roomEventOf(matrixEvent) // { type: "m.room.message", event_id: "$…", content: { body: "hi" }, … }
 */
export const roomEventOf = (event: Pick<MatrixEvent, "getEffectiveEvent">): RoomEvent | undefined => raw(event.getEffectiveEvent())

/** A raw client-server event (from `/state`, say) as a {@link RoomEvent}, or undefined when it is not one. */
export const raw = (json: unknown): RoomEvent | undefined => {
  if (!isRecord(json)) return undefined
  const { type, event_id, room_id, sender, origin_server_ts, content, state_key, redacts, unsigned } = json
  if (typeof type !== "string" || type === "m.room.encrypted" || typeof event_id !== "string" || typeof room_id !== "string" || typeof sender !== "string") return undefined
  return {
    type,
    event_id,
    room_id,
    sender,
    origin_server_ts: typeof origin_server_ts === "number" ? origin_server_ts : 0,
    content: isRecord(content) ? content : {},
    ...(typeof state_key === "string" ? { state_key } : {}),
    ...(typeof redacts === "string" ? { redacts } : {}),
    ...(isRecord(unsigned) ? { unsigned } : {})
  }
}
