/**
 * The widget's own (fromWidget) requests a registration has seen, and the answers the session
 * gave them, so a request the widget sends again after a dropped link (same id: its answer may
 * have been lost with the link) is answered once and never run twice (see the package README,
 * "Redelivery"). Pure bookkeeping: the I/O (registration-io.ts) asks `repeat` for every
 * inbound request and tells `answered` and `written` for every outbound answer.
 *
 * A repeated id is:
 * - still being worked on by the session: dropped (its one answer comes when ready);
 * - answered, the answer queued or written to the link the repeat came on: dropped (it reaches
 *   the widget on this link, in order);
 * - answered, the answer written to a link that has ended since: that answer is written again,
 *   once, on this link (the session does not see the repeat).
 *
 * Memory is bounded twice: at most `limits.requests` ids, in the order first seen (past it the
 * oldest is forgotten: a repeat of a forgotten id is new to the transport, and the session
 * refuses it while in flight), and at most `limits.bytes` of kept answers (past it the oldest
 * answers' texts are let go; a repeat of one after a drop gets an error saying so, never a
 * second run, never silence).
 */

/** What the transport does with an inbound fromWidget request. */
export type Repeat =
  | { readonly _tag: "New" }
  | { readonly _tag: "Drop"; readonly why: "in-flight" | "answer-on-this-link" }
  | { readonly _tag: "AnswerAgain"; readonly data: string }
  /** The answer may be lost and is no longer kept: the transport answers with this error (`{ error: { message } }`). */
  | { readonly _tag: "AnswerLost"; readonly message: string }

interface Seen {
  /** The serialised answer, once the session gave it; `LET_GO` past the byte budget. */
  data: string | typeof LET_GO | undefined
  /** The link the answer was last written to; undefined while it waits in the queue. */
  link: object | undefined
}

/** An answer whose text was let go past the byte budget. */
const LET_GO: unique symbol = Symbol("let go")
/** The link of an answer dropped unwritten (a queue overflow): never the link a repeat comes on. */
const NO_LINK = {}

const NEW: Repeat = { _tag: "New" }
const IN_FLIGHT: Repeat = { _tag: "Drop", why: "in-flight" }
const ON_THIS_LINK: Repeat = { _tag: "Drop", why: "answer-on-this-link" }

export interface AnsweredRequestsLimits {
  readonly requests: number
  readonly bytes: number
}

export class AnsweredRequests {
  /** Made on the first request: an idle registration carries no map. */
  private seen: Map<string, Seen> | undefined
  private bytes = 0
  /** Ids whose answers hold bytes, oldest first from `head`: letting go is O(1) per answer, no scan. */
  private kept: string[] = []
  private head = 0

  constructor(private readonly limits: AnsweredRequestsLimits) {}

  get size(): number {
    return this.seen?.size ?? 0
  }

  /** An inbound request with `requestId` on `link`: new (now remembered), or a repeat and what to do with it. */
  repeat(requestId: string, link: object): Repeat {
    const seen = (this.seen ??= new Map<string, Seen>())
    const entry = seen.get(requestId)
    if (entry === undefined) {
      seen.set(requestId, { data: undefined, link: undefined })
      if (seen.size > this.limits.requests) this.forget(seen.keys().next().value!)
      return NEW
    }
    if (entry.data === undefined) return IN_FLIGHT
    if (entry.link === undefined || entry.link === link) return ON_THIS_LINK
    if (entry.data === LET_GO) return { _tag: "AnswerLost", message: `the answer to request ${requestId} may have been lost with the link, and is no longer kept; the request was not run again` }
    return { _tag: "AnswerAgain", data: entry.data }
  }

  /** The session answered `requestId` (queued, not yet written). Answers to ids not seen here (forgotten) are not kept. */
  answered(requestId: string, data: string): void {
    const entry = this.seen?.get(requestId)
    if (entry === undefined || entry.data !== undefined) return
    entry.data = data
    this.bytes += data.length
    this.kept.push(requestId)
    while (this.bytes > this.limits.bytes && this.head < this.kept.length) {
      const older = this.seen!.get(this.kept[this.head++]!)
      if (typeof older?.data !== "string") continue // forgotten since, or let go already
      this.bytes -= older.data.length
      older.data = LET_GO
    }
    // Compacted now and then: ids let go (before `head`), and ids forgotten past the id limit
    // (answers too small for the byte budget ever to reach them), so the list stays bounded.
    if (this.kept.length - this.head > 2 * this.limits.requests || (this.head > 1024 && this.head * 2 > this.kept.length)) {
      const seen = this.seen!
      this.kept = this.kept.slice(this.head).filter((id) => typeof seen.get(id)?.data === "string")
      this.head = 0
    }
  }

  /** The answer to `requestId` was dropped unwritten (the queue overflowed): a repeat gets it again. */
  lost(requestId: string): void {
    const entry = this.seen?.get(requestId)
    if (entry !== undefined) entry.link = NO_LINK
  }

  /** The answer to `requestId` went out on `link`. */
  written(requestId: string, link: object): void {
    const entry = this.seen?.get(requestId)
    if (entry !== undefined) entry.link = link
  }

  clear(): void {
    this.seen = undefined
    this.bytes = 0
    this.kept = []
    this.head = 0
  }

  private forget(requestId: string): void {
    const entry = this.seen!.get(requestId)
    if (typeof entry?.data === "string") this.bytes -= entry.data.length
    this.seen!.delete(requestId)
  }
}

/** The id of an inbound message that is a fromWidget request (not an answer), if it is one. */
export const widgetRequestId = (message: unknown): string | undefined => {
  if (typeof message !== "object" || message === null) return undefined
  const { api, requestId } = message as { api?: unknown; requestId?: unknown }
  return api === "fromWidget" && typeof requestId === "string" && !("response" in message) ? requestId : undefined
}
