/**
 * To-device messages through a matrix-js-sdk client: sending (Olm-encrypted by the client's
 * crypto when asked) and receiving (decrypted by it, with how each really arrived).
 *
 * matrix-js-sdk 36 hands a decrypted to-device message on as if it had come in clear (its
 * `ToDeviceEvent` has no encryption info; later SDKs add `ReceivedToDeviceMessage` for this). So
 * the provenance is taken where the SDK decrypts: its crypto's `preprocessToDeviceMessages`, the
 * sync loop's one pass over the batch, turns each input into one output in order; an output is
 * `encrypted` only when its input was `m.room.encrypted` and it is not. When the counts differ
 * (an SDK that drops some), nothing of that batch counts as encrypted: the flag may under-claim,
 * never over-claim. The raw objects the SDK returns become the `MatrixEvent`s it emits, which is
 * how the two are matched.
 */
import type { HomeserverRequestOf, HomeserverUpdate } from "@widgethost/core"
import { isCryptoInternalToDeviceType } from "@widgethost/core"
import { ClientEvent, type MatrixClient, type MatrixEvent } from "matrix-js-sdk"
import { viaSdk } from "./sdk-errors.ts"

type Message = Readonly<Record<string, unknown>>
type RawToDevice = { readonly type?: unknown }
type Preprocess = (events: Array<RawToDevice>) => Promise<Array<RawToDevice>>

const ENCRYPTED = "m.room.encrypted"

/**
 * Watches the client's to-device messages and hands the widget-facing ones to `deliver`.
 * Returns the function that stops (and puts the SDK's crypto back as it was).
 */
export const watchToDevice = (client: MatrixClient, deliver: (update: HomeserverUpdate) => void): (() => void) => {
  const decrypted = new WeakSet<object>()
  const crypto = client.getCrypto() as unknown as { preprocessToDeviceMessages?: Preprocess } | undefined
  const original = crypto?.preprocessToDeviceMessages
  if (crypto !== undefined && typeof original === "function") {
    const wrapped: Preprocess = async (events) => {
      const inputs = events.map((event) => event.type)
      const outputs = await original.call(crypto, events)
      if (outputs.length === inputs.length) {
        outputs.forEach((output, i) => {
          if (inputs[i] === ENCRYPTED && output.type !== ENCRYPTED && typeof output === "object") decrypted.add(output)
        })
      }
      return outputs
    }
    crypto.preprocessToDeviceMessages = wrapped
  }
  const onToDevice = (event: MatrixEvent) => {
    const type = event.getType()
    // Still ciphertext (it did not decrypt), or the crypto's own traffic: never for widgets.
    if (type === ENCRYPTED || isCryptoInternalToDeviceType(type)) return
    const sender = event.getSender()
    if (sender === undefined) return
    deliver({ _tag: "ToDevice", event: { type, sender, content: event.getContent(), encrypted: decrypted.has(event.event) } })
  }
  client.on(ClientEvent.ToDeviceEvent, onToDevice)
  return () => {
    client.off(ClientEvent.ToDeviceEvent, onToDevice)
    if (crypto !== undefined && original !== undefined && crypto.preprocessToDeviceMessages !== original) crypto.preprocessToDeviceMessages = original
  }
}

/**
 * Sends `request.messages` (`[userId][deviceId]`, `*` for all of a user's devices): in clear, or
 * Olm-encrypted per device by the client's crypto (`encryptToDeviceMessages`), in one request.
 * A named device the crypto knows no keys for fails the whole request before anything is sent
 * (MSC3819: an error along the send path is the widget's error, never a silent skip); nothing of
 * an encrypted request ever goes in clear.
 */
export const sendToDevice = async (client: MatrixClient, request: HomeserverRequestOf<"SendToDevice">): Promise<void> => {
  if (!request.encrypted) {
    const contentMap = new Map<string, Map<string, Record<string, unknown>>>()
    for (const [userId, devices] of Object.entries(request.messages)) contentMap.set(userId, new Map(Object.entries(devices).map(([deviceId, content]) => [deviceId, { ...content }])))
    await viaSdk(() => client.sendToDevice(request.type, contentMap))
    return
  }
  const crypto = client.getCrypto()
  if (crypto === undefined) throw new Error("This client has no end-to-end encryption (call initRustCrypto first): encrypted to-device messages cannot be sent; nothing was sent")
  // encryptToDeviceMessages encrypts one payload for many devices: group the devices by payload.
  const groups = new Map<string, { payload: Message; devices: Array<{ userId: string; deviceId: string }> }>()
  const wanted: Array<string> = []
  const expanded = await expandWildcards(client, request.messages)
  for (const [userId, deviceId, payload] of expanded) {
    const key = JSON.stringify(payload)
    let group = groups.get(key)
    if (group === undefined) groups.set(key, (group = { payload, devices: [] }))
    group.devices.push({ userId, deviceId })
    wanted.push(`${userId}:${deviceId}`)
  }
  const contentMap = new Map<string, Map<string, Record<string, unknown>>>()
  const reached = new Set<string>()
  for (const { payload, devices } of groups.values()) {
    const batch = await viaSdk(() => crypto.encryptToDeviceMessages(request.type, devices, { ...payload }))
    for (const { userId, deviceId, payload: encrypted } of batch.batch) {
      let devicesOf = contentMap.get(userId)
      if (devicesOf === undefined) contentMap.set(userId, (devicesOf = new Map<string, Record<string, unknown>>()))
      devicesOf.set(deviceId, encrypted)
      reached.add(`${userId}:${deviceId}`)
    }
  }
  const unknown = wanted.filter((device) => !reached.has(device))
  if (unknown.length > 0) throw new Error(`to-device ${request.type}: no device keys for ${unknown.join(", ")}; nothing was sent`)
  if (contentMap.size === 0) return
  await viaSdk(() => client.sendToDevice(ENCRYPTED, contentMap))
}

/** `*` as every device the crypto knows of that user (not this one: a device cannot Olm-encrypt to itself). */
const expandWildcards = async (client: MatrixClient, messages: HomeserverRequestOf<"SendToDevice">["messages"]): Promise<Array<[string, string, Message]>> => {
  const out: Array<[string, string, Message]> = []
  const wildcardUsers = Object.entries(messages)
    .filter(([, devices]) => "*" in devices)
    .map(([userId]) => userId)
  const known: ReadonlyMap<string, ReadonlyMap<string, unknown>> = wildcardUsers.length === 0 ? new Map() : await viaSdk(() => client.getCrypto()!.getUserDeviceInfo(wildcardUsers, true))
  for (const [userId, devices] of Object.entries(messages)) {
    for (const [deviceId, payload] of Object.entries(devices)) {
      if (deviceId !== "*") {
        out.push([userId, deviceId, payload])
        continue
      }
      for (const id of known.get(userId)?.keys() ?? []) {
        if (userId === client.getUserId() && id === client.getDeviceId()) continue
        // A device named explicitly keeps its own payload.
        if (!(id in devices)) out.push([userId, id, payload])
      }
    }
  }
  return out
}
