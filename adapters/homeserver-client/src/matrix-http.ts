import { EventEmitter } from "node:events"
import { Effect } from "effect"
import { Pool, type Dispatcher } from "undici"
import { type Clock, HomeserverError, realClock, setTimer, sleep } from "@widgethost/core"

/**
 * The client-server HTTP client: one undici `Pool` per homeserver (connections are kept alive and
 * reused, nothing is set up per request), access-token auth, JSON bodies, per-request timeouts,
 * and retries that honour the homeserver's rate limits.
 *
 * Retry schedule (per call, `maxAttempts` counts the first try):
 * - 429: wait `Retry-After` (seconds or HTTP date) or else the body's `retry_after_ms`; a wait longer
 *   than `maxRateLimitWaitMs` is not waited for, the 429 is returned to the caller instead.
 * - 5xx (not 501), network errors, timeouts: exponential backoff `baseDelayMs * 2^(n-1)` capped at
 *   `maxDelayMs`, with "equal jitter" (a random point in the upper half), so clients that failed
 *   together do not retry together.
 * - anything else (4xx) fails at once.
 * A send carries its transaction id in the path, so each retry re-sends the same id and the
 * homeserver's idempotency makes a retry that raced a lost response a no-op, never a duplicate.
 *
 * Models: nodejs/undici `lib/interceptor/retry.js`, matrix-rust-sdk `http_client` (`RequestConfig`).
 */

export interface RetryPolicy {
  /** Attempts in all, the first included; 1 disables retries. */
  readonly maxAttempts: number
  readonly baseDelayMs: number
  readonly maxDelayMs: number
  /** A rate-limit wait longer than this is returned to the caller as the 429 instead. */
  readonly maxRateLimitWaitMs: number
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxRateLimitWaitMs: 60_000 }

export interface MatrixHttpOptions {
  /** e.g. `http://127.0.0.1:8008`; a path prefix is kept. */
  readonly baseUrl: string
  readonly accessToken?: string
  /** Defaults to a `Pool` on the base URL's origin; tests pass an undici `MockAgent`. */
  readonly dispatcher?: Dispatcher
  /** Backoff waits, per-attempt timeouts and transaction ids; a `ManualClock` in tests. */
  readonly clock?: Clock
  /** In [0, 1); drives jitter and transaction ids. */
  readonly random?: () => number
  /** Per attempt; default 30 s. */
  readonly requestTimeoutMs?: number
  readonly retry?: Partial<RetryPolicy>
  /** Sockets kept per homeserver (the sync long-poll holds one); default 8. */
  readonly connections?: number
}

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE"

export interface HttpRequest {
  readonly method: HttpMethod
  /** Path below the base URL, components already encoded (use {@link path}). */
  readonly path: string
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>
  /** Sent as JSON; a string is taken as JSON text already encoded. */
  readonly body?: unknown
  /** Sent unchanged instead of a JSON body (a media upload). */
  readonly bytes?: { readonly data: Uint8Array; readonly contentType: string }
  /** `bytes`: a success answers {@link HttpBytes} (a media download), not parsed JSON. */
  readonly answer?: "json" | "bytes"
  /** Send the access token (default true). */
  readonly auth?: boolean
  /** Overrides the client's per-attempt timeout (the sync long-poll needs more). */
  readonly timeoutMs?: number
  readonly retry?: Partial<RetryPolicy>
  /** Aborting fails the call at once, without retry. */
  readonly signal?: AbortSignal
}

/** A successful answer's body as it came, for `answer: "bytes"`. */
export interface HttpBytes {
  readonly data: Uint8Array
  readonly contentType?: string
}

/** Response headers that the Matrix spec defines on errors; all others are dropped. */
const specErrorHeaders = ["retry-after"] as const

/** Template tag that percent-encodes each interpolated path component. */
export const path = (strings: TemplateStringsArray, ...values: ReadonlyArray<string | number>): string =>
  strings.reduce((out, s, i) => out + s + (i < values.length ? encodeURIComponent(String(values[i])) : ""), "")

/** Read through a call so TypeScript does not keep an earlier narrowing of `aborted`. */
const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true

const isRetryableStatus = (status: number) => status === 429 || (status >= 500 && status !== 501)

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

/**
 * What one attempt's undici request listens to for its abort (the timeout or the caller's
 * signal). undici takes an EventEmitter as well as an AbortSignal; an AbortController and its
 * signal per attempt, whose abort builds a DOMException, cost more on every request, aborted or
 * not (about 2 % of a process's CPU on the account path).
 */
class AttemptAbort extends EventEmitter {
  aborted = false
  reason: unknown = undefined

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.emit("abort")
  }
}

type Outcome =
  | { readonly _tag: "Ok"; readonly value: unknown }
  | { readonly _tag: "Fail"; readonly error: HomeserverError; readonly retry: boolean; readonly waitMs?: number }

/**
 * One homeserver's HTTP client.
 *
 * @example
 * const http = new MatrixHttp({ baseUrl: "http://127.0.0.1:8008", accessToken })
 * const { user_id } = await http.request<{ user_id: string }>({ method: "GET", path: "/_matrix/client/v3/account/whoami" })
 */
export class MatrixHttp {
  readonly baseUrl: string
  accessToken: string | undefined
  private readonly origin: string
  private readonly prefix: string
  private readonly dispatcher: Dispatcher
  private readonly ownsDispatcher: boolean
  private readonly clock: Clock
  private readonly random: () => number
  private readonly timeoutMs: number
  private readonly retry: RetryPolicy
  private txnCounter = 0
  /** Counters for observability: attempts made, retries among them, calls that failed in the end. */
  readonly stats = { attempts: 0, retries: 0, failures: 0 }

  constructor(options: MatrixHttpOptions) {
    const url = new URL(options.baseUrl)
    this.baseUrl = options.baseUrl.replace(/\/+$/, "")
    this.origin = url.origin
    this.prefix = url.pathname.replace(/\/+$/, "")
    this.accessToken = options.accessToken
    this.ownsDispatcher = options.dispatcher === undefined
    this.dispatcher =
      options.dispatcher ??
      new Pool(url.origin, {
        connections: options.connections ?? 8,
        keepAliveTimeout: 30_000,
        // Our own per-attempt timer is authoritative; undici's would cut the sync long-poll.
        headersTimeout: 0,
        bodyTimeout: 0
      })
    this.clock = options.clock ?? realClock
    this.random = options.random ?? Math.random
    this.timeoutMs = options.requestTimeoutMs ?? 30_000
    this.retry = { ...defaultRetryPolicy, ...options.retry }
  }

  /** A transaction id unique for this client: time, randomness and a counter. */
  txnId(): string {
    this.txnCounter += 1
    const rand = Math.floor(this.random() * 0x1_0000_0000).toString(36)
    return `wh${this.clock.now().toString(36)}.${rand}.${this.txnCounter}`
  }

  /** The backoff delay before attempt `attempt + 1` (attempt counts from 1). */
  backoffMs(attempt: number, policy: RetryPolicy = this.retry): number {
    const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
    return Math.round(cap / 2 + (this.random() * cap) / 2)
  }

  /** Runs the request with retries; rejects only with {@link HomeserverError}. */
  async request<T>(req: HttpRequest): Promise<T> {
    const policy = { ...this.retry, ...req.retry }
    for (let attempt = 1; ; attempt++) {
      this.stats.attempts += 1
      if (attempt > 1) this.stats.retries += 1
      const outcome = await this.attempt(req)
      if (outcome._tag === "Ok") return outcome.value as T
      const waitMs = outcome.retry ? (outcome.waitMs ?? this.backoffMs(attempt, policy)) : 0
      if (!outcome.retry || attempt >= policy.maxAttempts || waitMs > policy.maxRateLimitWaitMs) {
        this.stats.failures += 1
        throw outcome.error
      }
      try {
        await sleep(this.clock, waitMs, req.signal)
      } catch {
        this.stats.failures += 1
        throw new HomeserverError({ message: `request aborted: ${req.method} ${req.path}` })
      }
    }
  }

  /** {@link request} as an Effect; interrupting it aborts the HTTP call. */
  effect<T>(req: HttpRequest): Effect.Effect<T, HomeserverError> {
    return Effect.tryPromise({
      try: (signal) => this.request<T>({ ...req, signal: req.signal === undefined ? signal : AbortSignal.any([signal, req.signal]) }),
      catch: (e) => (e instanceof HomeserverError ? e : new HomeserverError({ message: String(e) }))
    })
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close()
  }

  /** The request target (a `URLSearchParams` only when there is a query: most calls, sends among them, have none). */
  private target(req: HttpRequest): string {
    if (req.query === undefined) return `${this.prefix}${req.path}`
    const params = new URLSearchParams()
    for (const k in req.query) {
      const v = req.query[k]
      if (v !== undefined) params.set(k, String(v))
    }
    const qs = params.toString()
    return `${this.prefix}${req.path}${qs === "" ? "" : `?${qs}`}`
  }

  private async attempt(req: HttpRequest): Promise<Outcome> {
    const pathAndQuery = this.target(req)
    const what = `${req.method} ${req.path}`
    if (req.signal?.aborted === true) return { _tag: "Fail", error: new HomeserverError({ message: `request aborted: ${what}` }), retry: false }
    const abort = new AttemptAbort()
    const timeoutMs = req.timeoutMs ?? this.timeoutMs
    let timedOut = false
    const cancelTimer = setTimer(this.clock, timeoutMs, () => {
      timedOut = true
      abort.abort(new Error("timeout"))
    })
    const onCallerAbort = () => abort.abort(req.signal?.reason)
    req.signal?.addEventListener("abort", onCallerAbort, { once: true })
    const headers: Record<string, string> = { accept: req.answer === "bytes" ? "*/*" : "application/json" }
    if (req.auth !== false && this.accessToken !== undefined) headers["authorization"] = `Bearer ${this.accessToken}`
    let body: string | Uint8Array | undefined
    if (req.bytes !== undefined) {
      headers["content-type"] = req.bytes.contentType
      body = req.bytes.data
    } else if (req.body !== undefined) {
      headers["content-type"] = "application/json"
      body = typeof req.body === "string" ? req.body : JSON.stringify(req.body)
    }
    try {
      const res = await this.dispatcher.request({
        origin: this.origin,
        path: pathAndQuery,
        method: req.method,
        headers,
        body: body ?? null,
        signal: abort
      })
      if (req.answer === "bytes" && res.statusCode >= 200 && res.statusCode < 300) {
        const contentType = res.headers["content-type"]
        const data = new Uint8Array(await res.body.arrayBuffer())
        return { _tag: "Ok", value: { data, ...(typeof contentType === "string" ? { contentType } : {}) } satisfies HttpBytes }
      }
      const text = await res.body.text()
      if (res.statusCode >= 200 && res.statusCode < 300) {
        try {
          return { _tag: "Ok", value: text === "" ? {} : JSON.parse(text) }
        } catch {
          return { _tag: "Fail", error: new HomeserverError({ message: `invalid JSON from homeserver: ${what}` }), retry: false }
        }
      }
      const error = this.httpError(res.statusCode, res.headers, `${this.origin}${pathAndQuery}`, text, what)
      const retry = isRetryableStatus(res.statusCode)
      if (res.statusCode !== 429) return { _tag: "Fail", error, retry }
      const hint =
        parseRetryAfter(error.http?.headers["retry-after"], this.clock.now()) ??
        (typeof error.http?.body["retry_after_ms"] === "number" ? error.http.body["retry_after_ms"] : undefined)
      return hint === undefined ? { _tag: "Fail", error, retry } : { _tag: "Fail", error, retry, waitMs: hint }
    } catch (e) {
      if (timedOut) return { _tag: "Fail", error: new HomeserverError({ message: `request timed out after ${timeoutMs} ms: ${what}` }), retry: true }
      if (isAborted(req.signal)) return { _tag: "Fail", error: new HomeserverError({ message: `request aborted: ${what}` }), retry: false }
      const code = typeof e === "object" && e !== null && "code" in e ? ` (${String(e.code)})` : ""
      return { _tag: "Fail", error: new HomeserverError({ message: `network error: ${what}: ${e instanceof Error ? e.message : String(e)}${code}` }), retry: true }
    } finally {
      cancelTimer()
      req.signal?.removeEventListener("abort", onCallerAbort)
    }
  }

  private httpError(status: number, raw: Dispatcher.ResponseData["headers"], url: string, text: string, what: string): HomeserverError {
    const headers: Record<string, string> = {}
    for (const name of specErrorHeaders) {
      const v = raw[name]
      if (typeof v === "string") headers[name] = v
      else if (Array.isArray(v) && v[0] !== undefined) headers[name] = v[0]
    }
    let body: { errcode: string; error?: string } & Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(text)
      body =
        typeof parsed === "object" && parsed !== null && typeof (parsed as { errcode?: unknown }).errcode === "string"
          ? (parsed as typeof body)
          : { errcode: "M_UNKNOWN", error: text }
    } catch {
      body = text === "" ? { errcode: "M_UNKNOWN" } : { errcode: "M_UNKNOWN", error: text }
    }
    const summary = body.error === undefined ? body.errcode : `${body.errcode}: ${body.error}`
    return new HomeserverError({ message: `${what} failed with ${status} ${summary}`, http: { status, headers, url, body } })
  }
}

export interface Session {
  readonly userId: string
  readonly accessToken: string
  readonly deviceId: string
}

/**
 * Password login (`m.login.password`); reusing `deviceId` keeps the same device and its keys.
 *
 * @example
 * const session = await login(http, { user: "alice", password: "secret" })
 */
export const login = async (
  http: MatrixHttp,
  credentials: { readonly user: string; readonly password: string; readonly deviceId?: string; readonly displayName?: string }
): Promise<Session> => {
  const res = await http.request<{ user_id: string; access_token: string; device_id: string }>({
    method: "POST",
    path: "/_matrix/client/v3/login",
    auth: false,
    body: {
      type: "m.login.password",
      identifier: { type: "m.id.user", user: credentials.user },
      password: credentials.password,
      ...(credentials.deviceId === undefined ? {} : { device_id: credentials.deviceId }),
      initial_device_display_name: credentials.displayName ?? "widgethost"
    }
  })
  return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id }
}
