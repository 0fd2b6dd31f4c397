/**
 * The client's toWidget requests of one session (`session.request`) waiting to be settled. The
 * session settles each exactly once (`ClientRequestSettled`); whatever is still here when the
 * session closes is rejected then, so no promise is left hanging.
 */
import type { ClientRequestOutcome } from "@widgethost/core"
import { requestError, WidgetRequestError } from "./session-handle.ts"

interface Waiting {
  readonly action: string
  readonly resolve: (response: unknown) => void
  readonly reject: (error: WidgetRequestError) => void
}

export class PendingRequests {
  private readonly waiting = new Map<number, Waiting>()

  get size(): number {
    return this.waiting.size
  }

  /** A promise for the request `id`, settled by `settle` or `closeAll`. */
  add(id: number, action: string): Promise<unknown> {
    return new Promise((resolve, reject) => this.waiting.set(id, { action, resolve, reject }))
  }

  settle(id: number, outcome: ClientRequestOutcome): void {
    const waiting = this.waiting.get(id)
    if (waiting === undefined) return
    this.waiting.delete(id)
    if (outcome._tag === "Answered") waiting.resolve(outcome.response)
    else waiting.reject(requestError(waiting.action, outcome))
  }

  closeAll(reason: string): void {
    for (const { action, reject } of this.waiting.values()) reject(new WidgetRequestError("closed", `${action} will not be answered: the session closed (${reason})`))
    this.waiting.clear()
  }
}
