import { readFile } from "node:fs/promises"
import { writeFileDurably } from "./crypto-store.ts"
import type { TimelineState } from "./decrypting-timeline.ts"

/**
 * `sync.json`: where the sync loop resumes after a restart. Written atomically and durably
 * (temp file, fsync, rename, fsync of the directory) by one writer at a time, in token order (see
 * sync-loop-machine.ts for when, and why a crash repeats at most `maxUnsavedBatches` batches).
 */
export interface SyncStateFile {
  readonly version: 1
  readonly since?: string
  /** Events still held for a room key, and late ones waiting for theirs. */
  readonly timeline: TimelineState
  /** The newest ids of the recent-id window, oldest first. */
  readonly recent: ReadonlyArray<string>
  readonly encrypted: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /** Per room, the last timeline event taken in: where a `limited` gap fill stops. */
  readonly lastSeen?: Readonly<Record<string, string>>
  /** Per room, the last event handed to subscribers in timeline order (see `roomPositions`). */
  readonly positions?: Readonly<Record<string, string>>
}

/** Ids the recent-id window keeps in memory, and how many of them are saved. */
export const RECENT_KEPT = 2000
export const RECENT_SAVED = 1000

/** A JSON file's value, or undefined when there is no such file. */
export const readJsonFile = async <T>(file: string): Promise<T | undefined> => {
  try {
    return JSON.parse(await readFile(file, "utf8")) as T
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
}

export const readSyncState = (file: string): Promise<SyncStateFile | undefined> => readJsonFile<SyncStateFile>(file)

export const writeSyncState = (file: string, state: SyncStateFile): Promise<void> => writeFileDurably(file, JSON.stringify(state))
