/**
 * To-device types the encryption machinery owns. They are never delivered to widgets and never
 * sent by them, whatever capabilities were approved: a widget that could read `m.room_key` or
 * forge `m.secret.send` could steal keys or break verification (MSC3819 security section).
 */
const cryptoInternalTypes: ReadonlySet<string> = new Set([
  "m.room.encrypted",
  "m.room_key",
  "m.forwarded_room_key",
  "m.room_key_request",
  "m.room_key.withheld",
  "org.matrix.room_key.withheld",
  "m.room_key_bundle",
  "io.element.msc4268.room_key_bundle",
  "m.dummy"
])
const cryptoInternalPrefixes: ReadonlyArray<string> = ["m.secret.", "m.key.verification.", "org.matrix.msc3814."]

/** True for to-device types the crypto machinery owns. */
export const isCryptoInternalToDeviceType = (type: string): boolean =>
  cryptoInternalTypes.has(type) || cryptoInternalPrefixes.some((prefix) => type.startsWith(prefix))
