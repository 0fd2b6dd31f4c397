import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import { HomeserverError } from "@widgethost/core"
import { type CryptoHttp, type E2ee, type OutgoingRequest } from "./crypto.ts"
import { writeFileDurably } from "./crypto-store.ts"
import { getAccountData, openSecretStorage, putAccountData } from "./account-secrets.ts"
import { DEFAULT_KEY_TYPE, describeKey, encodeRecoveryKey, encryptSecret, keyDescriptionType, newStorageKey, SECRET_NAMES } from "./secret-storage.ts"

/**
 * The account's cross-signing identity, so that other users' clients trust this device: a device
 * not signed by its owner's self-signing key gets Element's red shield, and peers that exclude
 * insecure devices (MSC4153) neither share room keys with it nor decrypt what it sends.
 *
 * - No identity on the server and the account's password known (widgethost created the account):
 *   matrix-sdk-crypto's own bootstrap (`bootstrapCrossSigning`) makes the three keys and signs this
 *   device; the keys go up with user-interactive auth (`m.login.password`), then the signatures.
 * - The private keys in the crypto store but no secret storage on the account (a fresh bootstrap,
 *   or a crash right after one): a new 4S key becomes the default, the three private keys are
 *   stored under it, and its recovery key is written once to `recoveryKeyFile` (mode 0600) before
 *   anything is uploaded, so no secret is ever stored under a key nobody has.
 * - An identity on the server that this device is not signed by, and a recovery key: the private
 *   keys are read from secret storage, imported (the machine checks they match the published
 *   public keys) and this device is signed.
 * - Otherwise the device stays unverified, and the outcome says so.
 *
 * Models: matrix-org/matrix-js-sdk `src/rust-crypto/CrossSigningIdentity.ts` (`bootstrapCrossSigning`),
 * `src/rust-crypto/rust-crypto.ts` (`bootstrapSecretStorage`), `src/secret-storage.ts`.
 */

export type IdentityOutcome =
  /** A new identity was published; this device is signed; the recovery key is in `recoveryKeyFile`. */
  | { readonly _tag: "Bootstrapped"; readonly recoveryKeyFile: string | undefined }
  /** This device is signed by the account's identity (already, or now from secret storage). */
  | { readonly _tag: "Trusted"; readonly restored: boolean }
  /** This device is not cross-signed: peers that exclude unverified devices leave it out. */
  | { readonly _tag: "Unverified"; readonly reason: string }

export interface IdentityOptions {
  readonly e2ee: E2ee
  /** The account's HTTP (access token set): account data and the signing-key upload. */
  readonly http: CryptoHttp
  /** The account's password, for the UIA of the signing-key upload; without it, no bootstrap. */
  readonly password?: string
  /** The recovery key of the account's secret storage, to sign this device with the stored keys. */
  readonly recoveryKey?: string
  /** Where a new recovery key is written (mode 0600); without it no secret storage is set up. */
  readonly recoveryKeyFile?: string
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const status = (e: unknown): number | undefined => (e instanceof HomeserverError ? e.http?.status : undefined)

/** The `session` of a UIA 401 (a bare 401 has no errcode, so the HTTP layer keeps its text in `error`). */
const uiaSession = (e: unknown): string | undefined => {
  if (!(e instanceof HomeserverError) || e.http?.status !== 401) return undefined
  const body = e.http.body
  if (typeof body["session"] === "string") return body["session"]
  try {
    const parsed: unknown = JSON.parse(body.error ?? "")
    return isObject(parsed) && typeof parsed["session"] === "string" ? parsed["session"] : undefined
  } catch {
    return undefined
  }
}

/** Uploads the public signing keys, answering the password stage when the server asks for it. */
const uploadSigningKeys = async (http: CryptoHttp, userId: string, body: string, password: string): Promise<void> => {
  const keys = JSON.parse(body) as Record<string, unknown>
  const send = (auth?: Record<string, unknown>) =>
    http.request({ method: "POST", path: "/_matrix/client/v3/keys/device_signing/upload", body: auth === undefined ? keys : { ...keys, auth } })
  try {
    await send()
  } catch (e) {
    const session = uiaSession(e)
    if (session === undefined && status(e) !== 401) throw e
    await send({ type: "m.login.password", identifier: { type: "m.id.user", user: userId }, password, ...(session === undefined ? {} : { session }) })
  }
}

/** Fetches our own keys now, so identity and device state below are the server's current ones. */
const refreshOwnKeys = async (machine: sdk.OlmMachine, send: (r: OutgoingRequest) => Promise<void>, userId: string): Promise<void> => {
  await send(machine.queryKeysForUsers([new sdk.UserId(userId)]))
}

const ownDeviceSigned = async (machine: sdk.OlmMachine, userId: string, deviceId: string): Promise<boolean> => {
  const device = await machine.getDevice(new sdk.UserId(userId), new sdk.DeviceId(deviceId))
  if (device === undefined) return false
  try {
    return device.isCrossSignedByOwner()
  } finally {
    device.free()
  }
}

/** Creates secret storage holding the machine's private cross-signing keys; returns false when it has none. */
const setUpSecretStorage = async (machine: sdk.OlmMachine, http: CryptoHttp, userId: string, recoveryKeyFile: string): Promise<boolean> => {
  const exported = await machine.exportCrossSigningKeys()
  if (exported?.masterKey === undefined || exported.self_signing_key === undefined || exported.userSigningKey === undefined) return false
  const { keyId, key } = newStorageKey()
  const recoveryKey = encodeRecoveryKey(key)
  await writeFileDurably(recoveryKeyFile, `${recoveryKey}\n`, 0o600)
  await putAccountData(http, userId, keyDescriptionType(keyId), describeKey(key, "widgethost recovery key"))
  const secrets: Array<[string, string]> = [
    [SECRET_NAMES.master, exported.masterKey],
    [SECRET_NAMES.selfSigning, exported.self_signing_key],
    [SECRET_NAMES.userSigning, exported.userSigningKey]
  ]
  for (const [name, secret] of secrets) await putAccountData(http, userId, name, { encrypted: { [keyId]: encryptSecret(key, name, secret) } })
  // Last: a client that finds the default key finds every secret under it.
  await putAccountData(http, userId, DEFAULT_KEY_TYPE, { key: keyId })
  return true
}

/** Reads the three private keys from secret storage with `recoveryKey`. */
const readCrossSigningSecrets = async (http: CryptoHttp, userId: string, recoveryKey: string): Promise<{ master: string; selfSigning: string; userSigning: string }> => {
  const storage = await openSecretStorage(http, userId, recoveryKey)
  const read = async (name: string): Promise<string> => {
    const secret = await storage.read(name)
    if (secret === undefined) throw new Error(`secret storage holds no ${name} under the default key`)
    return secret
  }
  return { master: await read(SECRET_NAMES.master), selfSigning: await read(SECRET_NAMES.selfSigning), userSigning: await read(SECRET_NAMES.userSigning) }
}

/**
 * Makes this device cross-signed by the account's identity where it can (see the header), and
 * says what it did.
 *
 * @example
 * const outcome = await ensureCrossSigned({ e2ee: hs.e2ee, http: hs.http, password, recoveryKeyFile: "data/recovery-key.txt" })
 * if (outcome._tag === "Unverified") log("warn", outcome.reason)
 */
export const ensureCrossSigned = (options: IdentityOptions): Promise<IdentityOutcome> => {
  const { e2ee, http } = options
  const { userId, deviceId } = e2ee
  return e2ee.exclusive(async (machine, send): Promise<IdentityOutcome> => {
    await refreshOwnKeys(machine, send, userId)
    // The server's word, not the machine's: after a bootstrap whose upload failed, the machine
    // holds an identity that nobody else can see.
    const query = await http.request<{ master_keys?: Record<string, unknown> }>({ method: "POST", path: "/_matrix/client/v3/keys/query", body: { device_keys: { [userId]: [] } } })
    const published = isObject(query.master_keys?.[userId])

    if (!published) {
      if (options.password === undefined) return { _tag: "Unverified", reason: "the account has no cross-signing identity and no password was given to create one" }
      const requests = await machine.bootstrapCrossSigning(true)
      if (requests.uploadKeysRequest !== undefined && requests.uploadKeysRequest !== null) await send(requests.uploadKeysRequest as OutgoingRequest)
      await uploadSigningKeys(http, userId, requests.uploadSigningKeysRequest.body, options.password)
      await send(requests.uploadSignaturesRequest)
      requests.free()
      await refreshOwnKeys(machine, send, userId)
      const stored = options.recoveryKeyFile !== undefined && (await setUpSecretStorage(machine, http, userId, options.recoveryKeyFile))
      return { _tag: "Bootstrapped", recoveryKeyFile: stored ? options.recoveryKeyFile : undefined }
    }

    if (await ownDeviceSigned(machine, userId, deviceId)) {
      // A bootstrap that stopped before its secret storage (a crash) is finished now.
      const held = await machine.crossSigningStatus()
      const complete = held.hasMaster && held.hasSelfSigning && held.hasUserSigning
      held.free()
      if (complete && options.recoveryKeyFile !== undefined && (await getAccountData(http, userId, DEFAULT_KEY_TYPE)) === undefined)
        await setUpSecretStorage(machine, http, userId, options.recoveryKeyFile)
      return { _tag: "Trusted", restored: false }
    }

    if (options.recoveryKey === undefined)
      return { _tag: "Unverified", reason: "the account's cross-signing identity has not signed this device; give its recovery key (homeserver.recoveryKey) to sign it" }
    const secrets = await readCrossSigningSecrets(http, userId, options.recoveryKey)
    const imported = await machine.importCrossSigningKeys(secrets.master, secrets.selfSigning, secrets.userSigning)
    const usable = imported.hasMaster && imported.hasSelfSigning
    imported.free()
    if (!usable) throw new Error("the cross-signing keys in secret storage do not match the account's published identity")
    const device = await machine.getDevice(new sdk.UserId(userId), new sdk.DeviceId(deviceId))
    if (device === undefined) throw new Error("this device is not in the server's device list")
    try {
      await send(await device.verify())
    } finally {
      device.free()
    }
    await refreshOwnKeys(machine, send, userId)
    return { _tag: "Trusted", restored: true }
  })
}
