import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto"

/**
 * Secret storage (4S) as the client-server spec's "Secret storage" section defines it, with the
 * one algorithm every client implements, `m.secret_storage.v2.aes-hmac-sha2`, and the spec's
 * recovery key encoding. crypto-wasm 18.9 has no secret-storage API (it exports and imports the
 * private keys, `exportCrossSigningKeys`/`importCrossSigningKeys`, but leaves storing them to the
 * client, as matrix-js-sdk's `ServerSideSecretStorage` does), so it is node:crypto here.
 *
 * - A secret `name` is encrypted with keys derived by HKDF-SHA-256 (salt: 32 zero bytes, info:
 *   the name) from the 32-byte storage key: AES-256-CTR with a random IV whose bit 63 is clear,
 *   then HMAC-SHA-256 over the ciphertext.
 * - The key's description (account data `m.secret_storage.key.<id>`) carries `iv` and `mac` of 32
 *   zero bytes encrypted under the name "", so a client can tell a right key from a wrong one.
 * - The recovery key is `0x8B 0x01`, the key, and an XOR parity byte, in base58 (the Bitcoin
 *   alphabet), in groups of four characters.
 *
 * Model: matrix-org/matrix-js-sdk `src/utils/encryptAESSecretStorageItem.ts`,
 * `src/crypto-api/recovery-key.ts`, `src/secret-storage.ts`.
 */

export const SECRET_STORAGE_ALGORITHM = "m.secret_storage.v2.aes-hmac-sha2"
export const DEFAULT_KEY_TYPE = "m.secret_storage.default_key"
export const keyDescriptionType = (keyId: string): string => `m.secret_storage.key.${keyId}`

/** The secrets this host stores: the three cross-signing seeds and the backup key. */
export const SECRET_NAMES = {
  master: "m.cross_signing.master",
  selfSigning: "m.cross_signing.self_signing",
  userSigning: "m.cross_signing.user_signing",
  backup: "m.megolm_backup.v1"
} as const

/** One secret encrypted under one key: the value under `encrypted.<keyId>` in the secret's account data. */
export interface EncryptedSecret {
  readonly iv: string
  readonly ciphertext: string
  readonly mac: string
}

/** The account data `m.secret_storage.key.<keyId>` describing a key (no passphrase: recovery key only). */
export interface KeyDescription {
  readonly algorithm: typeof SECRET_STORAGE_ALGORITHM
  readonly name?: string
  readonly iv: string
  readonly mac: string
}

const ZERO_SALT = Buffer.alloc(32)
const RECOVERY_PREFIX = [0x8b, 0x01] as const
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

const deriveKeys = (key: Uint8Array, name: string): { aes: Buffer; hmac: Buffer } => {
  const out = Buffer.from(hkdfSync("sha256", key, ZERO_SALT, Buffer.from(name, "utf8"), 64))
  return { aes: out.subarray(0, 32), hmac: out.subarray(32) }
}

/**
 * Encrypts `secret` (for keys: their unpadded base64) as secret `name` under `key`.
 *
 * @example encryptSecret(key, "m.cross_signing.master", seedBase64) // { iv, ciphertext, mac }
 */
export const encryptSecret = (key: Uint8Array, name: string, secret: string | Uint8Array, iv: Uint8Array = randomBytes(16)): EncryptedSecret => {
  const { aes, hmac } = deriveKeys(key, name)
  const counter = Buffer.from(iv)
  // Bit 63 clear: the 64-bit counter half cannot overflow into the nonce half (the spec's rule).
  counter[8]! &= 0x7f
  const cipher = createCipheriv("aes-256-ctr", aes, counter)
  const ciphertext = Buffer.concat([cipher.update(typeof secret === "string" ? Buffer.from(secret, "utf8") : secret), cipher.final()])
  const mac = createHmac("sha256", hmac).update(ciphertext).digest()
  return { iv: counter.toString("base64"), ciphertext: ciphertext.toString("base64"), mac: mac.toString("base64") }
}

/** Decrypts secret `name`; throws when the MAC does not match (wrong key, or tampered data). */
export const decryptSecret = (key: Uint8Array, name: string, encrypted: EncryptedSecret): string => {
  const { aes, hmac } = deriveKeys(key, name)
  const ciphertext = Buffer.from(encrypted.ciphertext, "base64")
  const mac = createHmac("sha256", hmac).update(ciphertext).digest()
  const given = Buffer.from(encrypted.mac.replace(/=+$/, ""), "base64")
  if (given.length !== mac.length || !timingSafeEqual(given, mac)) throw new Error(`secret ${name}: bad MAC (wrong key?)`)
  const decipher = createDecipheriv("aes-256-ctr", aes, Buffer.from(encrypted.iv, "base64"))
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8")
}

/** The description of `key`, with the check value (32 zero bytes encrypted under the name ""). */
export const describeKey = (key: Uint8Array, name?: string): KeyDescription => {
  const { iv, mac } = encryptSecret(key, "", new Uint8Array(32))
  return { algorithm: SECRET_STORAGE_ALGORITHM, ...(name === undefined ? {} : { name }), iv, mac }
}

/** Whether `key` is the key `description` describes (its check value matches). */
export const keyMatches = (key: Uint8Array, description: { readonly iv?: unknown; readonly mac?: unknown }): boolean => {
  if (typeof description.iv !== "string" || typeof description.mac !== "string") return false
  const check = encryptSecret(key, "", new Uint8Array(32), Buffer.from(description.iv, "base64"))
  const a = Buffer.from(check.mac, "base64")
  const b = Buffer.from(description.mac.replace(/=+$/, ""), "base64")
  return a.length === b.length && timingSafeEqual(a, b)
}

const base58Encode = (bytes: Uint8Array): string => {
  let n = BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`)
  let out = ""
  while (n > 0n) {
    out = BASE58[Number(n % 58n)]! + out
    n /= 58n
  }
  for (const b of bytes) {
    if (b !== 0) break
    out = `1${out}`
  }
  return out
}

const base58Decode = (text: string): Buffer => {
  let n = 0n
  for (const ch of text) {
    const digit = BASE58.indexOf(ch)
    if (digit < 0) throw new Error(`recovery key: '${ch}' is not a base58 character`)
    n = n * 58n + BigInt(digit)
  }
  const hex = n === 0n ? "" : n.toString(16)
  const body = Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, "hex")
  let zeros = 0
  while (text[zeros] === "1") zeros++
  return Buffer.concat([Buffer.alloc(zeros), body])
}

/**
 * The spec's recovery key for a 32-byte storage key.
 *
 * @example encodeRecoveryKey(new Uint8Array(32)) // "EsTc 1111 1111 …" (groups of four)
 */
export const encodeRecoveryKey = (key: Uint8Array): string => {
  if (key.length !== 32) throw new RangeError("a secret storage key is 32 bytes")
  const bytes = Buffer.concat([Buffer.from(RECOVERY_PREFIX), Buffer.from(key), Buffer.alloc(1)])
  let parity = 0
  for (let i = 0; i < bytes.length - 1; i++) parity ^= bytes[i]!
  bytes[bytes.length - 1] = parity
  return base58Encode(bytes).replace(/(.{4})(?!$)/g, "$1 ")
}

/** The storage key in a recovery key (spaces ignored); throws on a bad prefix, length or parity. */
export const decodeRecoveryKey = (recoveryKey: string): Buffer => {
  const bytes = base58Decode(recoveryKey.replace(/\s+/g, ""))
  if (bytes.length !== 35 || bytes[0] !== RECOVERY_PREFIX[0] || bytes[1] !== RECOVERY_PREFIX[1]) throw new Error("recovery key: wrong length or prefix")
  let parity = 0
  for (const b of bytes) parity ^= b
  if (parity !== 0) throw new Error("recovery key: parity check failed (a typo?)")
  return bytes.subarray(2, 34)
}

/** A fresh storage key and an id for it (as matrix-js-sdk makes them: 32 letters and digits). */
export const newStorageKey = (): { readonly keyId: string; readonly key: Buffer } => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  const keyId = Array.from(randomBytes(32), (b) => alphabet[b % alphabet.length]).join("")
  return { keyId, key: randomBytes(32) }
}
