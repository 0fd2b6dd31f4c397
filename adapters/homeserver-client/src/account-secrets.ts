import { HomeserverError } from "@widgethost/core"
import type { CryptoHttp } from "./crypto.ts"
import { path } from "./matrix-http.ts"
import { DEFAULT_KEY_TYPE, decodeRecoveryKey, decryptSecret, type EncryptedSecret, encryptSecret, keyDescriptionType, keyMatches } from "./secret-storage.ts"

/**
 * The account's secret storage over HTTP: account data in and out, and one secret at a time read
 * or written under the default 4S key that a recovery key opens. Cross-signing (its three
 * private keys) and key backup (`m.megolm_backup.v1`) both keep their secrets here.
 */

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const status = (e: unknown): number | undefined => (e instanceof HomeserverError ? e.http?.status : undefined)

/** The account data of `type`, or undefined when it is not set (404). */
export const getAccountData = async (http: CryptoHttp, userId: string, type: string): Promise<Record<string, unknown> | undefined> => {
  try {
    return await http.request<Record<string, unknown>>({ method: "GET", path: path`/_matrix/client/v3/user/${userId}/account_data/${type}` })
  } catch (e) {
    if (status(e) === 404) return undefined
    throw e
  }
}

export const putAccountData = (http: CryptoHttp, userId: string, type: string, content: unknown): Promise<unknown> =>
  http.request({ method: "PUT", path: path`/_matrix/client/v3/user/${userId}/account_data/${type}`, body: content })

/** Secret storage opened with a recovery key: the default key, checked against its description. */
export interface OpenSecretStorage {
  readonly keyId: string
  /** The secret `name` under the default key, or undefined when it is not stored there. */
  readonly read: (name: string) => Promise<string | undefined>
  /** Stores `secret` as `name` under the default key (other keys' copies are kept). */
  readonly write: (name: string, secret: string) => Promise<void>
}

/** Opens the account's secret storage; throws when it has none or the recovery key is not its default key. */
export const openSecretStorage = async (http: CryptoHttp, userId: string, recoveryKey: string): Promise<OpenSecretStorage> => {
  const key = decodeRecoveryKey(recoveryKey)
  const defaultKey = await getAccountData(http, userId, DEFAULT_KEY_TYPE)
  const keyId = typeof defaultKey?.["key"] === "string" ? defaultKey["key"] : undefined
  if (keyId === undefined) throw new Error("the account has no default secret storage key")
  const description = await getAccountData(http, userId, keyDescriptionType(keyId))
  if (description === undefined || !keyMatches(key, description)) throw new Error("the recovery key is not the account's secret storage key")
  return {
    keyId,
    read: async (name) => {
      const content = await getAccountData(http, userId, name)
      const encrypted = isObject(content?.["encrypted"]) ? content["encrypted"][keyId] : undefined
      return isObject(encrypted) ? decryptSecret(key, name, encrypted as unknown as EncryptedSecret) : undefined
    },
    write: async (name, secret) => {
      const content = await getAccountData(http, userId, name)
      const others = isObject(content?.["encrypted"]) ? content["encrypted"] : {}
      await putAccountData(http, userId, name, { encrypted: { ...others, [keyId]: encryptSecret(key, name, secret) } })
    }
  }
}
