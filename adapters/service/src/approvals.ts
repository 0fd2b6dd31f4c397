import { randomBytes } from "node:crypto"
import { describeCapability } from "@widgethost/core"
import type { ApprovalRequest, Approver } from "@widgethost/engine"

/*
 * The approval queue: capability prompts waiting for a person (the admin console) instead of an
 * in-process dialog. The engine's policy has already run when a prompt arrives here, so the queue
 * holds only what nobody has decided yet.
 *
 * A prompt leaves the queue exactly once, in one of three ways:
 *   decided    `decide(id, …)`: the engine gets the approved subset, the rest is denied
 *   withdrawn  the request's signal aborted (session closed, `limits.approvalTimeoutMs` passed);
 *              the engine has already moved on and the answer would be ignored
 *   refused    more than `maxPending` prompts wait: denied at once, never queued
 * Every arrival and departure is announced to `onChange` listeners, so a console can follow live.
 */

/** A prompt waiting in the queue, as the console shows it. */
export interface PendingApproval {
  /** Unguessable (72 random bits, base64url): a console cannot decide a prompt it was not shown. */
  readonly id: string
  readonly sessionId: string
  readonly widgetId: string
  /** The widget's name, as its definition gives it. */
  readonly widgetName?: string
  /** The widget's URL template as defined (unrendered: it holds no token), so the person deciding sees where it comes from. */
  readonly widgetUrl: string
  /** The origin its messages come from (a browser page's); null when the transport knows none (a native client). */
  readonly origin: string | null
  /** The capabilities to decide: not yet approved and not decided by the policy. */
  readonly requested: ReadonlyArray<string>
  /** Each of `requested` in words, in the same order: exactly what approving it grants. */
  readonly meanings: ReadonlyArray<string>
  readonly alreadyApproved: ReadonlyArray<string>
  /** Milliseconds since the epoch (the queue's `now`). */
  readonly createdAt: number
}

/**
 * An answer to a prompt. `approve` and `deny` each name capabilities of the prompt or say `"all"`;
 * whatever is not approved is denied, and a capability both approved and denied is denied.
 */
export interface ApprovalDecision {
  readonly approve?: ReadonlyArray<string> | "all"
  readonly deny?: ReadonlyArray<string> | "all"
}

/** What `decide` did. */
export type DecideOutcome =
  | { readonly _tag: "Decided"; readonly approval: PendingApproval; readonly approved: ReadonlyArray<string>; readonly denied: ReadonlyArray<string> }
  | { readonly _tag: "NotFound"; readonly id: string }
  | { readonly _tag: "Invalid"; readonly issue: string }

export type ApprovalChange =
  | { readonly kind: "added"; readonly approval: PendingApproval }
  | { readonly kind: "decided"; readonly approval: PendingApproval; readonly approved: ReadonlyArray<string> }
  | { readonly kind: "withdrawn"; readonly approval: PendingApproval }

export interface ApprovalQueueOptions {
  /**
   * Decides a prompt before it is queued; `undefined` queues it. Default: none (the engine's policy
   * already ran; the console or the engine's approval timeout decides the rest).
   */
  readonly autoDecide?: (approval: PendingApproval) => ApprovalDecision | undefined
  /**
   * Prompts that may wait at once; beyond it new prompts are denied immediately. Protects the
   * host's memory and the console from many sessions asking at once. Default 1000.
   */
  readonly maxPending?: number
  readonly now?: () => number
  /** Id generator, for deterministic tests. Default: 9 random bytes, base64url. */
  readonly newId?: () => string
}

interface Entry {
  readonly approval: PendingApproval
  readonly resolve: (approved: ReadonlyArray<string>) => void
  readonly unlisten: () => void
}

const isStringList = (value: unknown): value is ReadonlyArray<string> => Array.isArray(value) && value.every((item) => typeof item === "string")

/** Checks an untrusted decision (a request body) without deciding anything. */
export const parseDecision = (body: unknown): { readonly ok: true; readonly decision: ApprovalDecision } | { readonly ok: false; readonly issue: string } => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return { ok: false, issue: "the decision must be a JSON object" }
  const { approve, deny } = body as Record<string, unknown>
  if (approve === undefined && deny === undefined) return { ok: false, issue: 'give "approve" or "deny" (a list of capabilities or "all")' }
  for (const [name, value] of [["approve", approve], ["deny", deny]] as const) {
    if (value !== undefined && value !== "all" && !isStringList(value)) return { ok: false, issue: `"${name}" must be a list of capabilities or "all"` }
  }
  return {
    ok: true,
    decision: {
      ...(approve === undefined ? {} : { approve: approve as ReadonlyArray<string> | "all" }),
      ...(deny === undefined ? {} : { deny: deny as ReadonlyArray<string> | "all" })
    }
  }
}

/**
 * Capability prompts held for a person to answer; `queue.approver` is the engine's approver.
 *
 * @example
 * const approvals = new ApprovalQueue()
 * const engine = createEngine({ homeserver, approver: approvals.approver })
 * approvals.onChange((change) => console.log(change.kind, change.approval.requested))
 * approvals.decide(approvals.pending()[0].id, { approve: ["m.sticker"] })   // the rest denied
 */
export class ApprovalQueue {
  private readonly entries = new Map<string, Entry>()
  private readonly listeners = new Set<(change: ApprovalChange) => void>()
  private readonly autoDecide: ApprovalQueueOptions["autoDecide"]
  private readonly maxPending: number
  private readonly now: () => number
  private readonly newId: () => string
  /** Prompts denied because the queue was full. */
  refused = 0

  constructor(options: ApprovalQueueOptions = {}) {
    this.autoDecide = options.autoDecide
    this.maxPending = options.maxPending ?? 1000
    this.now = options.now ?? Date.now
    this.newId = options.newId ?? (() => randomBytes(9).toString("base64url"))
  }

  /** The engine's approver: resolves when the prompt is decided, with `[]` when it is withdrawn or refused. */
  readonly approver: Approver = (request: ApprovalRequest) =>
    new Promise<ReadonlyArray<string>>((resolve) => {
      if (request.signal.aborted) return resolve([])
      let id = this.newId()
      while (this.entries.has(id)) id = this.newId()
      const approval: PendingApproval = {
        id,
        sessionId: request.sessionId,
        widgetId: request.widgetId,
        ...(request.widget.name === undefined ? {} : { widgetName: request.widget.name }),
        widgetUrl: request.widget.url,
        origin: request.origin ?? null,
        requested: [...request.requested],
        meanings: request.requested.map(describeCapability),
        alreadyApproved: [...request.alreadyApproved],
        createdAt: this.now()
      }
      const automatic = this.autoDecide?.(approval)
      if (automatic !== undefined) return resolve(settle(approval.requested, automatic).approved)
      if (this.entries.size >= this.maxPending) {
        this.refused++
        return resolve([])
      }
      const onAbort = () => {
        const entry = this.entries.get(id)
        if (entry === undefined) return
        this.entries.delete(id)
        entry.resolve([])
        this.emit({ kind: "withdrawn", approval })
      }
      request.signal.addEventListener("abort", onAbort, { once: true })
      this.entries.set(id, { approval, resolve, unlisten: () => request.signal.removeEventListener("abort", onAbort) })
      this.emit({ kind: "added", approval })
    })

  /** Waiting prompts, oldest first. */
  pending(): ReadonlyArray<PendingApproval> {
    return [...this.entries.values()].map((entry) => entry.approval)
  }

  get(id: string): PendingApproval | undefined {
    return this.entries.get(id)?.approval
  }

  get size(): number {
    return this.entries.size
  }

  /**
   * Answers a prompt: the approved capabilities go to the engine, the rest of the prompt is denied.
   * Naming a capability the prompt did not ask for is `Invalid` and decides nothing.
   */
  decide(id: string, decision: ApprovalDecision): DecideOutcome {
    const entry = this.entries.get(id)
    if (entry === undefined) return { _tag: "NotFound", id }
    const { requested } = entry.approval
    for (const list of [decision.approve, decision.deny]) {
      if (list === undefined || list === "all") continue
      const stranger = list.find((capability) => !requested.includes(capability))
      if (stranger !== undefined) return { _tag: "Invalid", issue: `${JSON.stringify(stranger)} was not requested by this prompt` }
    }
    const { approved, denied } = settle(requested, decision)
    this.entries.delete(id)
    entry.unlisten()
    entry.resolve(approved)
    this.emit({ kind: "decided", approval: entry.approval, approved })
    return { _tag: "Decided", approval: entry.approval, approved, denied }
  }

  /** Follows arrivals and departures; returns the function that stops following. */
  onChange(listener: (change: ApprovalChange) => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  private emit(change: ApprovalChange) {
    for (const listener of [...this.listeners]) {
      try {
        listener(change)
      } catch {
        // A broken listener (a console gone away) must not stop the engine's approvals.
      }
    }
  }
}

/** Splits a prompt's capabilities by a decision; deny wins over approve. */
const settle = (requested: ReadonlyArray<string>, decision: ApprovalDecision) => {
  const pick = (list: ReadonlyArray<string> | "all" | undefined) => (list === "all" ? new Set(requested) : new Set(list ?? []))
  const approve = pick(decision.approve)
  const deny = pick(decision.deny)
  const approved = requested.filter((capability) => approve.has(capability) && !deny.has(capability))
  return { approved, denied: requested.filter((capability) => !approved.includes(capability)) }
}
