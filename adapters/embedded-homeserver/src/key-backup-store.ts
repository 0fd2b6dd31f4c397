import type { JsonObject } from "./decode.ts"
import type { JournalRecord } from "./records.ts"

/**
 * Server-side key backup state (client-server spec, "Server-side key backups"), as the fold of
 * the `backup.*` journal records: per user, its backup versions (one current: the newest not
 * deleted) and, per version, the room keys by room and session. The keys are ciphertext to us;
 * only `is_verified`, `first_message_index` and `forwarded_count` are read, to keep the better
 * of two copies of a key, as the spec requires.
 */
export interface BackupVersion {
  readonly version: string
  algorithm: string
  authData: JsonObject
  /** Bumped on every change of the version's keys; clients compare it to see if the backup moved. */
  etag: number
  readonly rooms: Map<string, Map<string, JsonObject>>
}

type BackupRecord = Extract<JournalRecord, { t: `backup.${string}` }>

export const isBackupRecord = (r: JournalRecord): r is BackupRecord => r.t.startsWith("backup.")

export class KeyBackups {
  private readonly byUser = new Map<string, Map<string, BackupVersion>>()

  /** The user's current version: the newest one not deleted. */
  current(userId: string): BackupVersion | undefined {
    let newest: BackupVersion | undefined
    for (const v of this.byUser.get(userId)?.values() ?? []) if (newest === undefined || Number(v.version) > Number(newest.version)) newest = v
    return newest
  }

  get(userId: string, version: string): BackupVersion | undefined {
    return this.byUser.get(userId)?.get(version)
  }

  /** The version number a new backup of this user gets (never one used before, deleted or not). */
  nextVersion(userId: string): string {
    return String((this.highest.get(userId) ?? 0) + 1)
  }
  private readonly highest = new Map<string, number>()

  /** Number of keys in a version. */
  static count(v: BackupVersion): number {
    let n = 0
    for (const sessions of v.rooms.values()) n += sessions.size
    return n
  }

  apply(r: BackupRecord): void {
    const versions = this.byUser.get(r.userId) ?? new Map<string, BackupVersion>()
    this.byUser.set(r.userId, versions)
    switch (r.t) {
      case "backup.version": {
        const existing = versions.get(r.version)
        if (existing !== undefined) {
          existing.algorithm = r.algorithm
          existing.authData = r.authData
        } else versions.set(r.version, { version: r.version, algorithm: r.algorithm, authData: r.authData, etag: 0, rooms: new Map() })
        this.highest.set(r.userId, Math.max(this.highest.get(r.userId) ?? 0, Number(r.version)))
        return
      }
      case "backup.version.deleted":
        versions.delete(r.version)
        return
      case "backup.keys": {
        const v = versions.get(r.version)
        if (v === undefined) return
        for (const k of r.keys) {
          const sessions = v.rooms.get(k.roomId) ?? new Map<string, JsonObject>()
          v.rooms.set(k.roomId, sessions)
          sessions.set(k.sessionId, k.data)
        }
        v.etag += 1
        return
      }
      case "backup.keys.deleted": {
        const v = versions.get(r.version)
        if (v === undefined) return
        if (r.roomId === undefined) v.rooms.clear()
        else if (r.sessionId === undefined) v.rooms.delete(r.roomId)
        else v.rooms.get(r.roomId)?.delete(r.sessionId)
        v.etag += 1
        return
      }
    }
  }
}

/**
 * Whether `candidate` should replace `existing` (the spec's order): a verified key beats an
 * unverified one, then the lower `first_message_index` wins (it decrypts more), then the lower
 * `forwarded_count`.
 */
export const betterKey = (candidate: JsonObject, existing: JsonObject | undefined): boolean => {
  if (existing === undefined) return true
  const verified = (k: JsonObject) => k["is_verified"] === true
  if (verified(candidate) !== verified(existing)) return verified(candidate)
  const index = (k: JsonObject) => (typeof k["first_message_index"] === "number" ? k["first_message_index"] : Number.MAX_SAFE_INTEGER)
  if (index(candidate) !== index(existing)) return index(candidate) < index(existing)
  const forwards = (k: JsonObject) => (typeof k["forwarded_count"] === "number" ? k["forwarded_count"] : Number.MAX_SAFE_INTEGER)
  return forwards(candidate) < forwards(existing)
}
