/**
 * What the crypto machine's backup rounds (crypto.ts `runBackup`) read off an upload to
 * server-side key backup (key-backup.ts turns it on): how many keys a round carried, and whether
 * the server refused it because another client replaced the backup version.
 */
import { HomeserverError } from "@widgethost/core"

export const countBackedUp = (body: string): number => {
  const rooms = (JSON.parse(body) as { rooms?: Record<string, { sessions?: Record<string, unknown> }> }).rooms ?? {}
  return Object.values(rooms).reduce((n, room) => n + Object.keys(room.sessions ?? {}).length, 0)
}

export const isWrongBackupVersion = (e: unknown): boolean => e instanceof HomeserverError && e.http?.status === 403 && e.http.body.errcode === "M_WRONG_ROOM_KEYS_VERSION"
