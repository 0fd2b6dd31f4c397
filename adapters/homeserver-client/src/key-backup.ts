import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import { HomeserverError } from "@widgethost/core"
import { openSecretStorage } from "./account-secrets.ts"
import type { CryptoHttp, E2ee } from "./crypto.ts"
import { SECRET_NAMES } from "./secret-storage.ts"

/**
 * Server-side key backup as current clients do it (client-server spec, "Server-side key
 * backups", algorithm `m.megolm_backup.v1.curve25519-aes-sha2`), so a lost crypto store costs no
 * history: every room key the machine holds is encrypted to the backup's public key and uploaded
 * (`PUT /room_keys/keys`, crypto.ts after each round), and a machine that has not had this
 * backup before (a new store) downloads and imports all of it.
 *
 * - A backup exists: its private key is the one the crypto store holds for it, or else the secret
 *   `m.megolm_backup.v1` in secret storage (opened with the recovery key). It is used only when
 *   its public half is the backup's `auth_data.public_key`: a key from 4S is as trusted as the
 *   recovery key, so no signature check is needed (matrix-js-sdk trusts it the same way).
 * - No backup and a recovery key: a new one is made (matrix-sdk-crypto's key; `auth_data` signed
 *   by this device and the account's master key), its private key stored in 4S first, then the
 *   version created.
 * - Otherwise the device does not back up, and the outcome says why.
 *
 * Models: matrix-org/matrix-js-sdk `src/rust-crypto/backup.ts` (`setupKeyBackup`,
 * `importKeyBackup`, `RustBackupDecryptor`), `src/rust-crypto/rust-crypto.ts` (`signObject`).
 */

export const BACKUP_ALGORITHM = "m.megolm_backup.v1.curve25519-aes-sha2"

export type BackupOutcome =
  /** A new backup version was created; every room key goes up from now on. */
  | { readonly _tag: "Created"; readonly version: string }
  /** The account's backup is in use; `restored` when this store had not had it before. */
  | { readonly _tag: "Enabled"; readonly version: string; readonly restored?: { readonly imported: number; readonly total: number } }
  /** No backup: room keys live only in this crypto store. */
  | { readonly _tag: "Unavailable"; readonly reason: string }

export interface BackupOptions {
  readonly e2ee: E2ee
  readonly http: CryptoHttp
  /** The recovery key of the account's secret storage: to read the backup key, or store a new one. */
  readonly recoveryKey?: string
}

interface BackupInfo {
  readonly version: string
  readonly algorithm: string
  readonly auth_data: { readonly public_key?: unknown }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const currentBackup = async (http: CryptoHttp): Promise<BackupInfo | undefined> => {
  try {
    return await http.request<BackupInfo>({ method: "GET", path: "/_matrix/client/v3/room_keys/version" })
  } catch (e) {
    if (e instanceof HomeserverError && e.http?.status === 404) return undefined
    throw e
  }
}

/** Canonical JSON of a flat object of strings (all `auth_data` holds before it is signed). */
const canonical = (o: Readonly<Record<string, string>>): string => JSON.stringify(Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))))

/** Downloads the whole backup, decrypts each session with `key` and imports them. */
const restore = async (machine: sdk.OlmMachine, http: CryptoHttp, key: sdk.BackupDecryptionKey, version: string): Promise<{ imported: number; total: number }> => {
  const res = await http.request<{ rooms?: Record<string, { sessions?: Record<string, unknown> }> }>({ method: "GET", path: "/_matrix/client/v3/room_keys/keys", query: { version } })
  const byRoom = new Map<sdk.RoomId, Map<string, unknown>>()
  let total = 0
  for (const [roomId, room] of Object.entries(res.rooms ?? {})) {
    const sessions = new Map<string, unknown>()
    for (const [sessionId, backed] of Object.entries(room.sessions ?? {})) {
      total += 1
      const data = isObject(backed) && isObject(backed["session_data"]) ? backed["session_data"] : undefined
      if (data === undefined || typeof data["ephemeral"] !== "string" || typeof data["mac"] !== "string" || typeof data["ciphertext"] !== "string") continue
      try {
        const session = JSON.parse(key.decryptV1(data["ephemeral"], data["mac"], data["ciphertext"])) as Record<string, unknown>
        sessions.set(sessionId, { ...session, session_id: sessionId, room_id: roomId })
      } catch {
        // A key that does not decrypt (tampered, or another key's) is skipped, as matrix-js-sdk does.
      }
    }
    if (sessions.size > 0) byRoom.set(new sdk.RoomId(roomId), sessions)
  }
  if (byRoom.size === 0) return { imported: 0, total }
  const result = await machine.importBackedUpRoomKeys(byRoom, () => undefined, version)
  const imported = result.importedCount
  result.free()
  return { imported, total }
}

/**
 * Backs this device's room keys up to the account's server-side key backup, creating one with
 * the recovery key when there is none, and restores the backup into a store that has not had it.
 *
 * @example
 * const outcome = await ensureKeyBackup({ e2ee: hs.e2ee, http: hs.http, recoveryKey })
 * if (outcome._tag === "Unavailable") log("warn", outcome.reason)
 */
export const ensureKeyBackup = async (options: BackupOptions): Promise<BackupOutcome> => {
  const { e2ee, http, recoveryKey } = options
  const info = await currentBackup(http)
  if (info !== undefined && info.algorithm !== BACKUP_ALGORITHM) return { _tag: "Unavailable", reason: `the account's key backup uses ${info.algorithm}, which this host does not support` }
  const storage = recoveryKey === undefined ? undefined : await openSecretStorage(http, e2ee.userId, recoveryKey)
  return e2ee.exclusive(async (machine): Promise<BackupOutcome> => {
    const held = await machine.getBackupKeys()
    let key = held.decryptionKey
    const heldVersion = held.backupVersion
    held.free()

    if (info === undefined) {
      if (storage === undefined) return { _tag: "Unavailable", reason: "the account has no key backup, and creating one needs the recovery key (homeserver.recoveryKey)" }
      const fresh = sdk.BackupDecryptionKey.createRandomKey()
      const publicKey = fresh.megolmV1PublicKey.publicKeyBase64
      const authData = { public_key: publicKey }
      const signatures = await machine.sign(canonical(authData))
      const signed = { ...authData, signatures: JSON.parse(signatures.asJSON()) as unknown }
      signatures.free()
      // The key first: a backup whose key is in no secret storage would be a backup nobody can read.
      await storage.write(SECRET_NAMES.backup, fresh.toBase64())
      const { version } = await http.request<{ version: string }>({ method: "POST", path: "/_matrix/client/v3/room_keys/version", body: { algorithm: BACKUP_ALGORITHM, auth_data: signed } })
      await machine.saveBackupDecryptionKey(fresh, version)
      await machine.enableBackupV1(publicKey, version)
      e2ee.setBackingUp(true)
      return { _tag: "Created", version }
    }

    const matches = (k: sdk.BackupDecryptionKey | undefined): k is sdk.BackupDecryptionKey => k !== undefined && k.megolmV1PublicKey.publicKeyBase64 === info.auth_data.public_key
    if (!matches(key) && storage !== undefined) {
      const secret = await storage.read(SECRET_NAMES.backup)
      key = secret === undefined ? undefined : sdk.BackupDecryptionKey.fromBase64(secret)
    }
    if (!matches(key))
      return {
        _tag: "Unavailable",
        reason: storage === undefined ? `the account has a key backup (version ${info.version}); using it needs the recovery key (homeserver.recoveryKey)` : `secret storage holds no key for the account's key backup (version ${info.version})`
      }
    const isNew = heldVersion !== info.version
    if (isNew) await machine.saveBackupDecryptionKey(key, info.version)
    await machine.enableBackupV1(info.auth_data.public_key as string, info.version)
    e2ee.setBackingUp(true)
    if (!isNew) return { _tag: "Enabled", version: info.version }
    return { _tag: "Enabled", version: info.version, restored: await restore(machine, http, key, info.version) }
  })
}
