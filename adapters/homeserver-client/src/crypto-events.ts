/**
 * From the crypto machine's JSON to core events (crypto.ts): raw timeline events, decrypted ones
 * and what a failed decryption means, and the to-device events a sync's processing lets widgets
 * see. The machine's output is untrusted shape like the homeserver's; nothing here throws on it.
 */
import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import type { RoomEvent, ToDeviceEvent } from "@widgethost/core"
import { isCryptoInternalToDeviceType } from "@widgethost/core"
import type { DecryptOutcome, RawEvent, ToDeviceUndecryptable } from "./e2ee-types.ts"

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const toRoomEvent = (raw: RawEvent, roomId: string): RoomEvent | undefined => {
  if (typeof raw["type"] !== "string" || typeof raw["event_id"] !== "string" || typeof raw["sender"] !== "string") return undefined
  const event: Record<string, unknown> = {
    type: raw["type"],
    event_id: raw["event_id"],
    room_id: roomId,
    sender: raw["sender"],
    origin_server_ts: typeof raw["origin_server_ts"] === "number" ? raw["origin_server_ts"] : 0,
    content: isObject(raw["content"]) ? raw["content"] : {}
  }
  if (typeof raw["state_key"] === "string") event["state_key"] = raw["state_key"]
  if (typeof raw["redacts"] === "string") event["redacts"] = raw["redacts"]
  if (isObject(raw["unsigned"])) event["unsigned"] = raw["unsigned"]
  return event as unknown as RoomEvent
}

/** A timeline event that is not `m.room.encrypted`, as it is. */
export const clearOutcome = (raw: RawEvent, roomId: string): DecryptOutcome => {
  const event = toRoomEvent(raw, roomId)
  return event === undefined ? { _tag: "Failed", reason: "malformed event" } : { _tag: "Clear", event }
}

/** Why the machine could not decrypt: a missing key (not withheld) may still come, anything else never will. */
export const outcomeOfDecryptError = (e: unknown, sessionId: string): DecryptOutcome => {
  if (e instanceof sdk.MegolmDecryptionError) {
    const transient = e.code === sdk.DecryptionErrorCode.MissingRoomKey || e.code === sdk.DecryptionErrorCode.UnknownMessageIndex
    if (transient && e.withheldCode === undefined) return { _tag: "Pending", sessionId, reason: sdk.DecryptionErrorCode[e.code] ?? "missing key" }
    return { _tag: "Failed", reason: e.withheldCode ?? sdk.DecryptionErrorCode[e.code] ?? e.description }
  }
  return { _tag: "Failed", reason: e instanceof Error ? e.message : String(e) }
}

/** The decrypted event: the clear JSON's type and content on the encrypted event's envelope. */
export const decryptedOutcome = (raw: RawEvent, roomId: string, content: Record<string, unknown>, clearJson: string): DecryptOutcome => {
  const clear = JSON.parse(clearJson) as RawEvent
  const clearContent: Record<string, unknown> = isObject(clear["content"]) ? { ...clear["content"] } : {}
  // Relations stay in clear on the wire (so servers can aggregate them); put them back.
  if (clearContent["m.relates_to"] === undefined && content["m.relates_to"] !== undefined) clearContent["m.relates_to"] = content["m.relates_to"]
  const event = toRoomEvent({ ...raw, type: clear["type"], content: clearContent }, roomId)
  return event === undefined ? { _tag: "Failed", reason: "malformed decrypted event" } : { _tag: "Decrypted", event }
}

type ProcessedToDevice = Awaited<ReturnType<sdk.OlmMachine["receiveSyncChanges"]>>[number]

/**
 * The to-device events widgets may see from what the machine processed: decrypted ones with
 * `encrypted: true`, clear ones with `encrypted: false`, never the machinery's own types, never
 * ciphertext. One it could not decrypt is reported, not delivered.
 */
export const visibleToDeviceEvents = (
  processed: ReadonlyArray<ProcessedToDevice>,
  onUndecryptable: ((report: ToDeviceUndecryptable) => void) | undefined
): Array<ToDeviceEvent> => {
  const out: Array<ToDeviceEvent> = []
  for (const p of processed) {
    if (p instanceof sdk.DecryptedToDeviceEvent) {
      const raw = JSON.parse(p.rawEvent) as RawEvent
      const type = raw["type"]
      if (typeof type !== "string" || isCryptoInternalToDeviceType(type)) continue
      out.push({ type, sender: p.encryptionInfo.sender.toString(), content: isObject(raw["content"]) ? raw["content"] : {}, encrypted: true })
    } else if (p instanceof sdk.PlainTextToDeviceEvent) {
      const raw = JSON.parse(p.rawEvent) as RawEvent
      const type = raw["type"]
      if (typeof type !== "string" || typeof raw["sender"] !== "string" || isCryptoInternalToDeviceType(type)) continue
      out.push({ type, sender: raw["sender"], content: isObject(raw["content"]) ? raw["content"] : {}, encrypted: false })
    } else if (p instanceof sdk.UTDToDeviceEvent) {
      const raw = JSON.parse(p.rawEvent) as RawEvent
      onUndecryptable?.({
        sender: typeof raw["sender"] === "string" ? raw["sender"] : "",
        reason: sdk.ToDeviceUnableToDecryptReason[p.utdInfo.reason] ?? "unknown"
      })
    }
    // InvalidToDeviceEvent: malformed (no type…), dropped.
  }
  return out
}

/** An interactive-verification to-device event the machine processed: who sent it, which step, which flow. */
export interface VerificationEventSeen {
  readonly sender: string
  readonly type: string
  readonly flowId: string
}

/** The `m.key.verification.*` events among what the machine processed (malformed ones, without a flow id, left out). */
export const verificationEventsOf = (processed: ReadonlyArray<ProcessedToDevice>): Array<VerificationEventSeen> => {
  const out: Array<VerificationEventSeen> = []
  for (const p of processed) {
    if (!(p instanceof sdk.DecryptedToDeviceEvent) && !(p instanceof sdk.PlainTextToDeviceEvent)) continue
    let raw: RawEvent
    try {
      raw = JSON.parse(p.rawEvent) as RawEvent
    } catch {
      continue
    }
    const type = raw["type"]
    const content = raw["content"]
    if (typeof type !== "string" || !type.startsWith("m.key.verification.") || !isObject(content)) continue
    const flowId = content["transaction_id"]
    const sender = p instanceof sdk.DecryptedToDeviceEvent ? p.encryptionInfo.sender.toString() : raw["sender"]
    if (typeof flowId === "string" && typeof sender === "string") out.push({ sender, type, flowId })
  }
  return out
}
