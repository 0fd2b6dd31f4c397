import { HomeserverError } from "@widgethost/core"

/**
 * How the `/sync` connection is doing, as an operator asks it: when did the last sync succeed,
 * how far behind the homeserver are the events handed over, is the loop backing off (how long,
 * how often so far), and what went wrong, by kind. The sync loop's machine (sync-loop-machine.ts)
 * decides; this meter only watches what its shell does, with the shell's clock, so the machine
 * stays free of time and the meter free of policy.
 */

/** What a failure was, in the words an operator acts on. */
export type SyncErrorKind =
  /** No answer: refused, reset, DNS (the homeserver is down or unreachable). */
  | "network"
  | "timeout"
  /** 429 after the waits the HTTP client allows. */
  | "rate-limited"
  /** 5xx. */
  | "server-error"
  /** Another 4xx. */
  | "client-error"
  /** 401: the access token was refused; the loop halts. */
  | "unknown-token"
  /** A 2xx whose body was not JSON. */
  | "bad-response"
  /** Taking a batch in failed (crypto machine, decrypting timeline); the batch is asked again. */
  | "take-in"
  /** Saving the crypto store or `sync.json` failed. */
  | "save"
  /** A `/messages` page that was to close a `limited` gap failed. */
  | "gap-fill"
  | "other"

/** Classifies an error of the HTTP client (matrix-http.ts), by status first, then by its message. */
export const syncErrorKind = (error: unknown): SyncErrorKind => {
  if (!(error instanceof HomeserverError)) return "other"
  const status = error.http?.status
  if (status !== undefined) {
    if (status === 401) return "unknown-token"
    if (status === 429) return "rate-limited"
    if (status >= 500) return "server-error"
    if (status >= 400) return "client-error"
    return "other"
  }
  if (error.message.startsWith("network error")) return "network"
  if (error.message.startsWith("request timed out")) return "timeout"
  if (error.message.startsWith("invalid JSON")) return "bad-response"
  return "other"
}

export interface SyncHealth {
  /**
   * `starting`: no sync has succeeded yet; `connected`: the last sync succeeded; `retrying`: the
   * last one failed and the loop backs off; `halted`: the token was refused; `stopped`.
   */
  readonly state: "starting" | "connected" | "retrying" | "halted" | "stopped"
  /** When the last `/sync` answered (ISO time); null before the first. */
  readonly lastSyncAt: string | null
  /** Milliseconds since then: the sync lag an operator watches grow during an outage. */
  readonly lastSyncAgoMs: number | null
  /**
   * How far behind the homeserver the last batch with room events was: its newest event's
   * `origin_server_ts` to the moment it was handed over (clocks of other servers may skew it). A
   * batch after an outage shows the outage's length; a live one, the delivery delay.
   */
  readonly behindMs: number | null
  /** Failed syncs since the last success (what the backoff doubles on). */
  readonly failuresInRow: number
  /** Syncs asked again after a backoff wait, since the start. */
  readonly retries: number
  /** Attempts the HTTP client repeated inside single calls (5xx, network, 429 waits), all calls. */
  readonly httpRetries: number
  /** The wait in progress; null when the loop is not backing off. */
  readonly backoff: { readonly ms: number; readonly retryInMs: number } | null
  /** Failures since the start, by kind (kinds that never happened are absent). */
  readonly errors: Readonly<Partial<Record<SyncErrorKind, number>>>
  readonly lastError: { readonly at: string; readonly kind: SyncErrorKind; readonly message: string } | null
}

/** What the shell knows of the machine when asked: its phase and whether it sleeps. */
export interface SyncLoopView {
  readonly phase: "idle" | "running" | "halted" | "stopping" | "stopped"
  readonly failures: number
  readonly sleeping: boolean
}

export class SyncHealthMeter {
  private lastSyncAt: number | undefined
  private behindMs: number | undefined
  private retries = 0
  private backoff: { readonly ms: number; readonly until: number } | undefined
  private readonly errors: Partial<Record<SyncErrorKind, number>> = {}
  private lastError: { readonly at: number; readonly kind: SyncErrorKind; readonly message: string } | undefined

  constructor(private readonly now: () => number) {}

  /** A `/sync` answered (whether or not its batch is taken in yet). */
  syncSucceeded(): void {
    this.lastSyncAt = this.now()
  }

  failed(kind: SyncErrorKind, error: unknown): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1
    this.lastError = { at: this.now(), kind, message: error instanceof Error ? error.message : String(error) }
  }

  /** The loop sleeps `ms` before asking again. */
  backingOff(ms: number): void {
    this.backoff = { ms, until: this.now() + ms }
  }

  /** A sync is asked for: after a backoff, that is a retry. */
  requesting(): void {
    if (this.backoff === undefined) return
    this.backoff = undefined
    this.retries += 1
  }

  /** A batch was handed over; `newestTs` is its newest room event's `origin_server_ts`, if it had any. */
  delivered(newestTs: number | undefined): void {
    if (newestTs !== undefined) this.behindMs = Math.max(0, this.now() - newestTs)
  }

  snapshot(loop: SyncLoopView, httpRetries: number): SyncHealth {
    const now = this.now()
    const state: SyncHealth["state"] =
      loop.phase === "stopping" || loop.phase === "stopped"
        ? "stopped"
        : loop.phase === "halted"
          ? "halted"
          : loop.failures > 0 || loop.sleeping
            ? "retrying"
            : this.lastSyncAt === undefined
              ? "starting"
              : "connected"
    const iso = (ms: number) => new Date(ms).toISOString()
    return {
      state,
      lastSyncAt: this.lastSyncAt === undefined ? null : iso(this.lastSyncAt),
      lastSyncAgoMs: this.lastSyncAt === undefined ? null : now - this.lastSyncAt,
      behindMs: this.behindMs ?? null,
      failuresInRow: loop.failures,
      retries: this.retries,
      httpRetries,
      backoff: this.backoff === undefined || !loop.sleeping ? null : { ms: this.backoff.ms, retryInMs: Math.max(0, this.backoff.until - now) },
      errors: { ...this.errors },
      lastError: this.lastError === undefined ? null : { ...this.lastError, at: iso(this.lastError.at) }
    }
  }
}

/** The newest `origin_server_ts` among `events`, or undefined when none carries one. */
export const newestTimestamp = (events: ReadonlyArray<Readonly<Record<string, unknown>>>): number | undefined => {
  let newest: number | undefined
  for (const event of events) {
    const ts = event["origin_server_ts"]
    if (typeof ts === "number" && Number.isFinite(ts) && (newest === undefined || ts > newest)) newest = ts
  }
  return newest
}
