/**
 * The toWidget requests a registration has written and the widget has not answered yet, kept so
 * a resumed link can deliver them again (see the package README, "Redelivery"). By request id,
 * in the order first written, at most `limit` of them: past it the oldest is forgotten, and the
 * caller counts it (the gap notice announces it should the link drop).
 */
import type { WidgetMessage } from "@widgethost/core"
import type { Marked } from "./registration.ts"

export class UnansweredRequests {
  private readonly written = new Map<string, string>()

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.written.size
  }

  /** Keeps a written request; returns how many older ones were forgotten to stay within the limit. */
  keep(requestId: string, data: string): number {
    this.written.set(requestId, data)
    if (this.written.size <= this.limit) return 0
    this.written.delete(this.written.keys().next().value!)
    return 1
  }

  /** An inbound message that answers a kept request settles it: it will not go again. */
  settle(message: unknown): void {
    if (this.written.size === 0 || typeof message !== "object" || message === null) return
    const { api, requestId } = message as { api?: unknown; requestId?: unknown }
    if (api === "toWidget" && typeof requestId === "string" && "response" in message) this.written.delete(requestId)
  }

  /** Everything kept, oldest first, to queue again (without a write-hook mark: it was reported once); forgets it here until rewritten. */
  takeAll(): Array<Marked> {
    const again = [...this.written].map(([requestId, data]) => ({ data, requestId }))
    this.written.clear()
    return again
  }

  clear(): void {
    this.written.clear()
  }
}

/** The id of a message worth keeping once written: a request to the widget (not an answer to one of its own). */
export const keptRequestId = (message: WidgetMessage): string | undefined => (message.api === "toWidget" && !("response" in message) ? message.requestId : undefined)
