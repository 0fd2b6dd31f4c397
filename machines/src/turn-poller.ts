/**
 * One TURN poller for the whole engine (MSC3846): however many widgets watch, the homeserver's
 * `/voip/turnServer` is called once per refresh and the answer fans out to every watcher.
 *
 * Schedule (all on the injected clock, so tests run on simulated time):
 * - credentials are refreshed `refreshMargin(ttl)` before they expire: 20% of the TTL, at most
 *   60 s early (a 24 h TTL refreshes 60 s before expiry; a 60 s TTL after 48 s);
 * - transient failures (network, 5xx, 429) back off 1 s, 2 s, 4 s … capped at 60 s, or wait as
 *   long as a 429's Retry-After says; if the current credentials expire meanwhile, watchers get
 *   an update with empty `uris` (as MSC3846 suggests), then fresh ones once polling recovers;
 * - a homeserver without TURN (empty answer) is asked again every 5 minutes;
 * - a refusal (403 or another 4xx but 429) fails the pending watch requests with the error;
 * - with no watchers left, polling stops.
 */
import { type Clock, type HomeserverError, homeserverErrorFrom, type PromiseHomeserverPort, type TurnServers } from "@widgethost/core"

export type TurnCredentials = Pick<TurnServers, "uris" | "username" | "password">

export interface TurnPollerOptions {
  readonly maxBackoffMs?: number
  readonly emptyRetryMs?: number
}

export interface TurnListener {
  /** A watch request was accepted (credentials known) or refused. */
  readonly answer: (key: string, ticket: number, result: { ok: true; servers: TurnCredentials } | { ok: false; error: HomeserverError }) => void
  /** New credentials (or empty `uris`) for these watchers. */
  readonly push: (keys: ReadonlyArray<string>, servers: TurnCredentials) => void
}

export const refreshMargin = (ttlMs: number): number => Math.min(60_000, ttlMs * 0.2)
export const backoffMs = (attempt: number, maxMs: number): number => Math.min(maxMs, 1_000 * 2 ** attempt)

const emptyCredentials: TurnCredentials = { uris: [], username: "", password: "" }

export class TurnPoller {
  private readonly watchers = new Set<string>()
  private readonly waiting = new Map<string, number[]>()
  private current: { servers: TurnCredentials; expiresAt: number } | undefined
  private timer: unknown
  private expiryTimer: unknown
  private fetching = false
  private attempt = 0
  private generation = 0

  constructor(
    private readonly port: Pick<PromiseHomeserverPort, "turnServers">,
    private readonly clock: Clock,
    private readonly listener: TurnListener,
    private readonly options: TurnPollerOptions = {}
  ) {}

  /** How many homeserver calls were made (for tests and stats). */
  calls = 0

  watch(key: string, ticket: number): void {
    if (this.watchers.has(key) && this.current !== undefined) {
      this.listener.answer(key, ticket, { ok: true, servers: this.current.servers })
      return
    }
    const tickets = this.waiting.get(key) ?? []
    tickets.push(ticket)
    this.waiting.set(key, tickets)
    if (this.current !== undefined && this.current.expiresAt > this.clock.now()) return this.settle()
    if (!this.fetching && this.timer === undefined) this.fetch()
  }

  unwatch(key: string): void {
    this.watchers.delete(key)
    this.waiting.delete(key)
    if (this.watchers.size === 0 && this.waiting.size === 0) this.stop()
  }

  get watching(): number {
    return this.watchers.size
  }

  stop(): void {
    this.generation++
    this.clearTimers()
    this.fetching = false
    this.attempt = 0
  }

  private clearTimers(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer)
    this.timer = undefined
    this.expiryTimer = undefined
  }

  private schedule(ms: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined
      this.fetch()
    }, ms)
  }

  private fetch(): void {
    this.fetching = true
    this.calls++
    const generation = this.generation
    // new Promise: a port that throws synchronously fails this fetch like one that rejects.
    new Promise<TurnServers>((resolve) => resolve(this.port.turnServers())).then(
      (turn) => {
        if (generation !== this.generation) return // stopped meanwhile: nobody wants this answer
        this.fetching = false
        this.received(turn)
      },
      (thrown: unknown) => {
        if (generation !== this.generation) return
        this.fetching = false
        this.failed(homeserverErrorFrom(thrown, "turnServers"))
      }
    )
  }

  private received(turn: TurnServers): void {
    this.attempt = 0
    const servers: TurnCredentials = { uris: turn.uris, username: turn.username, password: turn.password }
    const ttlMs = turn.uris.length === 0 || !(turn.ttl > 0) ? 0 : turn.ttl * 1_000
    this.current = { servers, expiresAt: this.clock.now() + (ttlMs === 0 ? this.options.emptyRetryMs ?? 300_000 : ttlMs) }
    const already = [...this.watchers].filter((key) => !this.waiting.has(key))
    this.settle()
    if (already.length > 0) this.listener.push(already, servers)
    if (this.expiryTimer !== undefined) this.clock.clearTimeout(this.expiryTimer)
    this.expiryTimer = undefined
    this.schedule(ttlMs === 0 ? this.options.emptyRetryMs ?? 300_000 : ttlMs - refreshMargin(ttlMs))
  }

  /** Answers every waiting watch with the current credentials. */
  private settle(): void {
    const servers = this.current?.servers ?? emptyCredentials
    for (const [key, tickets] of this.waiting) {
      this.watchers.add(key)
      for (const ticket of tickets) this.listener.answer(key, ticket, { ok: true, servers })
    }
    this.waiting.clear()
  }

  private failed(error: HomeserverError): void {
    const status = error.http?.status
    if (status !== undefined && status >= 400 && status < 500 && status !== 429) {
      // Refused (e.g. 403): pending watches fail; existing watchers keep their credentials until expiry.
      for (const [key, tickets] of this.waiting) {
        for (const ticket of tickets) this.listener.answer(key, ticket, { ok: false, error })
      }
      this.waiting.clear()
      if (this.watchers.size === 0) return this.stop()
    } else if (this.waiting.size > 0) {
      // Transient: accept the watch now and tell it there are no servers yet; fresh ones follow.
      const expired = this.current === undefined || this.current.expiresAt <= this.clock.now()
      if (expired) this.current = undefined
      this.settle()
    }
    this.armExpiry()
    const retryAfter = Number(error.http?.headers["retry-after"] ?? Number.NaN) * 1_000
    const retryAfterMs = typeof error.http?.body.retry_after_ms === "number" ? error.http.body.retry_after_ms : retryAfter
    const wait = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? retryAfterMs : backoffMs(this.attempt, this.options.maxBackoffMs ?? 60_000)
    this.attempt++
    this.schedule(wait)
  }

  /** While failing, push empty `uris` the moment the last good credentials expire. */
  private armExpiry(): void {
    if (this.expiryTimer !== undefined || this.current === undefined) return
    const left = this.current.expiresAt - this.clock.now()
    const expire = () => {
      this.expiryTimer = undefined
      this.current = undefined
      if (this.watchers.size > 0) this.listener.push([...this.watchers], emptyCredentials)
    }
    if (left <= 0) return expire()
    this.expiryTimer = this.clock.setTimeout(expire, left)
  }
}
