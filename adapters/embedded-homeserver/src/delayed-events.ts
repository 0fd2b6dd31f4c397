import type { JsonObject } from "./decode.ts"
import { asObject, optString, reqString } from "./decode.ts"
import { badJson, invalidParam, MatrixError, notFound, unrecognized } from "./errors.ts"
import { randomString } from "./ids.ts"
import type { DelayedEvent, DelayedOutcome, JournalRecord } from "./records.ts"
import type { Proposal } from "./room-rules.ts"
import { authorize, errorBody, eventRecord, requireRoom } from "./room-rules.ts"
import type { Auth, Env, RequestContext, Route } from "./routing.ts"
import { authed, CLIENT, json } from "./routing.ts"
import type { DelayedState, Store } from "./store.ts"

/**
 * MSC4140 delayed events, in the revision the server is configured for (`DelayedEventsShape`):
 * the query-parameter one deployed servers speak (`?org.matrix.msc4140.delay=<ms>` on `/send`
 * and `/state` schedules instead of sending), or the dedicated endpoint of the newer text
 * (`PUT …/rooms/{roomId}/delayed_event/{eventType}/{txnId}` with `delay_ms`, `content` and
 * `state_key`). Either way the `delay_id` returned names it for cancelling, restarting or
 * sending it early. Every endpoint
 * needs an access token (MSC4140, "Security considerations: all new endpoints are authenticated"),
 * and only the user who scheduled a delayed event may act on it: anyone else is told it does not
 * exist, so a leaked or guessed id says nothing. Power levels are checked when the event is
 * finally sent (the MSC's rule), so a delayed event can fail then; the failure is recorded in the
 * `finalised` list.
 *
 * Schedules are journaled like everything else, so a restart re-arms them; one that fell due
 * while the server was down is sent as soon as it is back.
 */

/** The MSC asks servers to bound delays and outstanding schedules; these are Synapse's scale. */
export const MAX_DELAY_MS = 24 * 60 * 60 * 1000
export const MAX_SCHEDULED_PER_USER = 100
const UNSTABLE = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"
const STABLE = "/_matrix/client/v1/delayed_events"

export class DelayedEvents {
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private closed = false

  constructor(private readonly store: Store) {
    store.onApplied = (r) => this.observe(r)
  }

  /** Arms timers for every schedule the journal left pending. */
  start(): void {
    for (const d of this.store.delayed.values()) if (d.finalised === undefined) this.arm(d.delayed)
  }

  close(): void {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  /** Schedules `p` to be sent after `delayMs`; idempotent per access token and transaction id. */
  async schedule(auth: Auth, p: Proposal, delayMs: number, txnId: string | undefined): Promise<string> {
    const { store } = this
    if (delayMs <= 0) throw invalidParam("The delay must be a positive number of milliseconds.")
    if (delayMs > MAX_DELAY_MS)
      throw new MatrixError({
        status: 400,
        errcode: "M_UNKNOWN",
        error: "The requested delay exceeds the allowed maximum.",
        extra: { "org.matrix.msc4140.errcode": "M_MAX_DELAY_EXCEEDED", "org.matrix.msc4140.max_delay": MAX_DELAY_MS }
      })
    const txn = txnId === undefined ? undefined : { tokenKey: auth.tokenKey, scope: `delayed/${p.roomId}`, txnId }
    const earlier = txn === undefined ? undefined : store.txns.get(store.txnKey(txn))
    if (earlier !== undefined) return earlier
    const room = requireRoom(store, p.roomId)
    // Permission is judged at send time, but scheduling into a room one is not in is refused
    // now: it could never succeed and would only fill the schedule.
    if (room.membershipAt(auth.userId) !== "join") throw new MatrixError({ status: 403, errcode: "M_FORBIDDEN", error: `User ${auth.userId} not in room ${room.id}` })
    const outstanding = [...store.delayed.values()].filter((d) => d.finalised === undefined && d.delayed.userId === auth.userId).length
    if (outstanding >= MAX_SCHEDULED_PER_USER)
      throw new MatrixError({
        status: 400,
        errcode: "M_UNKNOWN",
        error: "The maximum number of delayed events has been reached.",
        extra: { "org.matrix.msc4140.errcode": "M_MAX_DELAYED_EVENTS_EXCEEDED" }
      })
    const delayed: DelayedEvent = {
      delayId: `syd_${randomString(18)}`,
      userId: auth.userId,
      roomId: p.roomId,
      type: p.type,
      ...(p.stateKey !== undefined && { stateKey: p.stateKey }),
      content: p.content,
      delay: delayMs,
      runningSince: store.now()
    }
    await store.commit([{ t: "delayed.scheduled", delayed, ...(txn && { txn }) }])
    return delayed.delayId
  }

  /**
   * `cancel`, `restart` or `send` one of `userId`'s scheduled events (the management endpoint).
   * Another user's delayed event answers exactly as an unknown one does.
   */
  async act(userId: string, delayId: string, action: string): Promise<void> {
    const state = this.store.delayed.get(delayId)
    if (!["cancel", "restart", "send"].includes(action)) throw invalidParam(`Unknown action '${action}'.`)
    if (state === undefined || state.delayed.userId !== userId) throw notFound("Unknown delayed event")
    if (state.finalised !== undefined) {
      // `send` is safe to retry: once sent, asking again succeeds.
      if (action === "send" && state.finalised.outcome === "send") return
      if (action === "send" && state.finalised.reason === "error" && state.finalised.error !== undefined) throw errorOf(state.finalised.error)
      throw notFound("Unknown delayed event")
    }
    if (action === "cancel") return this.store.commit([this.finalise(delayId, { outcome: "cancel", reason: "action", ts: this.store.now() })])
    if (action === "restart") return this.store.commit([{ t: "delayed.restarted", delayId, runningSince: this.store.now() }])
    const failure = await this.send(state, "action")
    if (failure !== undefined) throw failure
  }

  /** The user's scheduled and finalised delayed events, as `GET /delayed_events` lists them. */
  list(userId: string, status: string | null, ids: ReadonlyArray<string>): JsonObject {
    if (status !== null && status !== "scheduled" && status !== "finalised")
      throw new MatrixError({ status: 400, errcode: "M_UNKNOWN", error: "'status' must be scheduled or finalised." })
    const mine = [...this.store.delayed.values()].filter((d) => d.delayed.userId === userId && (ids.length === 0 || ids.includes(d.delayed.delayId)))
    const scheduled = mine
      .filter((d) => d.finalised === undefined)
      .sort((a, b) => due(a.delayed) - due(b.delayed))
      .map((d) => describe(d.delayed))
    const finalised = mine
      .filter((d) => d.finalised !== undefined)
      .sort((a, b) => b.finalised!.ts - a.finalised!.ts)
      .map((d) => ({
        delayed_event: describe(d.delayed),
        outcome: d.finalised!.outcome,
        reason: d.finalised!.reason,
        ...(d.finalised!.error !== undefined && { error: d.finalised!.error }),
        ...(d.finalised!.eventId !== undefined && { event_id: d.finalised!.eventId }),
        origin_server_ts: d.finalised!.ts
      }))
    return {
      ...(status !== "finalised" && { scheduled, delayed_events: scheduled }),
      ...(status !== "scheduled" && { finalised })
    }
  }

  /**
   * Sends the event and finalises the schedule in one commit, so a crash leaves either both or
   * neither. Returns the error when the event was refused (and finalises it as failed).
   */
  private async send(state: DelayedState, reason: "action" | "delay"): Promise<MatrixError | undefined> {
    const { delayed } = state
    const p: Proposal = {
      roomId: delayed.roomId,
      sender: delayed.userId,
      type: delayed.type,
      content: delayed.content,
      ...(delayed.stateKey !== undefined && { stateKey: delayed.stateKey }),
      ...(delayed.type === "m.room.redaction" && typeof delayed.content.redacts === "string" && { redacts: delayed.content.redacts })
    }
    let records: Array<JournalRecord>
    let failure: MatrixError | undefined
    try {
      authorize(requireRoom(this.store, p.roomId), p)
      const { record, event } = eventRecord(this.store, p)
      records = [record, this.finalise(delayed.delayId, { outcome: "send", reason, eventId: event.event_id, ts: this.store.now() })]
    } catch (e) {
      failure = e instanceof MatrixError ? e : new MatrixError({ status: 500, errcode: "M_UNKNOWN", error: String(e) })
      records = [this.finalise(delayed.delayId, { outcome: "cancel", reason: "error", error: errorBody(failure), ts: this.store.now() })]
    }
    await this.store.commit(records)
    return failure
  }

  private finalise(delayId: string, finalised: DelayedOutcome): JournalRecord {
    return { t: "delayed.finalised", delayId, finalised }
  }

  private observe(r: JournalRecord): void {
    if (r.t === "delayed.scheduled") this.arm(r.delayed)
    else if (r.t === "delayed.restarted") {
      const d = this.store.delayed.get(r.delayId)
      if (d !== undefined) this.arm(d.delayed)
    } else if (r.t === "delayed.finalised") {
      clearTimeout(this.timers.get(r.delayId))
      this.timers.delete(r.delayId)
    }
  }

  private arm(delayed: DelayedEvent): void {
    if (this.closed) return
    clearTimeout(this.timers.get(delayed.delayId))
    const wait = Math.max(0, due(delayed) - this.store.now())
    // Unref'd: a pending delayed event must not keep a test process or a CLI alive.
    const timer = setTimeout(() => {
      this.timers.delete(delayed.delayId)
      const state = this.store.delayed.get(delayed.delayId)
      if (state === undefined || state.finalised !== undefined || this.store.isClosed) return
      // A restart after arming moves the due time; re-arm rather than send early.
      if (due(state.delayed) > this.store.now()) return this.arm(state.delayed)
      this.send(state, "delay").catch(() => {})
    }, wait)
    timer.unref()
    this.timers.set(delayed.delayId, timer)
  }
}

const due = (d: DelayedEvent): number => d.runningSince + d.delay

const describe = (d: DelayedEvent): JsonObject => ({
  delay_id: d.delayId,
  room_id: d.roomId,
  type: d.type,
  ...(d.stateKey !== undefined && { state_key: d.stateKey }),
  delay: d.delay,
  running_since: d.runningSince,
  content: d.content
})

/** Rebuilds the error a failed send recorded; the body does not hold the status, the errcode implies it. */
const errorOf = (body: JsonObject): MatrixError => {
  const errcode = typeof body.errcode === "string" ? body.errcode : "M_UNKNOWN"
  const status = errcode === "M_FORBIDDEN" ? 403 : errcode === "M_NOT_FOUND" ? 404 : errcode === "M_TOO_LARGE" ? 413 : 400
  return new MatrixError({ status, errcode, error: typeof body.error === "string" ? body.error : "Failed to send the delayed event" })
}

/** A route of one revision only: on a server of another, it does not exist (404 `M_UNRECOGNIZED`). */
const onlyIn = (env: Env, ...shapes: ReadonlyArray<Env["delayedEventsShape"]>): void => {
  if (!shapes.includes(env.delayedEventsShape)) throw unrecognized("Unrecognized request")
}

/** The endpoint revision's scheduling: the body carries the delay, the state key and the content. */
const scheduleAtEndpoint = async ({ env, auth, params, body }: RequestContext<Auth, "roomId" | "eventType" | "txnId">) => {
  const request = asObject(body, "The body")
  const delayMs = request["delay_ms"]
  if (typeof delayMs !== "number" || !Number.isSafeInteger(delayMs)) throw badJson("'delay_ms' must be an integer number of milliseconds.")
  const stateKey = optString(request, "state_key")
  const content = asObject(request["content"], "'content'")
  if (params.eventType === "m.room.redaction" && stateKey === undefined) throw invalidParam("Delayed redactions are not supported here.")
  const room = requireRoom(env.store, params.roomId)
  const p: Proposal = { roomId: room.id, sender: auth.userId, type: params.eventType, content, ...(stateKey === undefined ? {} : { stateKey }) }
  return json({ delay_id: await env.delayed.schedule(auth, p, delayMs, params.txnId) })
}

export const routes: ReadonlyArray<Route> = [
  authed("PUT", `${CLIENT}/rooms/:roomId/delayed_event/:eventType/:txnId`, (ctx) => {
    onlyIn(ctx.env, "endpoint-stable")
    return scheduleAtEndpoint(ctx)
  }),
  authed("PUT", "/_matrix/client/unstable/org.matrix.msc4140/rooms/:roomId/delayed_event/:eventType/:txnId", (ctx) => {
    onlyIn(ctx.env, "endpoint", "endpoint-stable")
    return scheduleAtEndpoint(ctx)
  }),
  // Authenticated and owner-only (MSC4140's current text). The query-parameter revision deployed
  // servers once spoke left management unauthenticated, the delay id acting as a bearer
  // capability; then any holder of an id (a log line, a proxy) could send or cancel someone
  // else's "last will", so we do not. The action in the body is Synapse's form of that revision.
  authed("POST", `${UNSTABLE}/:delayId`, async ({ env, auth, params, body }) => {
    onlyIn(env, "query-parameter")
    await env.delayed.act(auth.userId, params.delayId, reqString(asObject(body), "action"))
    return json({})
  }),
  authed("POST", `${UNSTABLE}/:delayId/:action`, async ({ env, auth, params }) => {
    await env.delayed.act(auth.userId, params.delayId, params.action)
    return json({})
  }),
  authed("POST", `${STABLE}/:delayId/:action`, async ({ env, auth, params }) => {
    await env.delayed.act(auth.userId, params.delayId, params.action)
    return json({})
  }),
  authed("GET", UNSTABLE, ({ env, auth, query }) => json(env.delayed.list(auth.userId, query.get("status"), query.getAll("delay_id")))),
  authed("GET", STABLE, ({ env, auth, query }) => json(env.delayed.list(auth.userId, query.get("status"), query.getAll("delay_id"))))
]
