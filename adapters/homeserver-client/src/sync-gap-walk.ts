import type { RawEvent } from "./crypto.ts"
import { hasRecent, type RecentIds } from "./recent-event-ids.ts"
import type { GapWalk } from "./sync-batch-plan.ts"

/**
 * One `limited` room's gap walk, page by page (pure, for the sync loop machine, #20). The walk
 * goes back from `prev_batch` in pages of `gapPageSize` events until it meets the last event taken
 * in, the room's first event, or the budget of `maxGapEvents` events (the last page asks only for
 * what is left); what it then gives up is the older rest. A budget in pages let a slow server
 * cost each room as many round trips whatever their size; in events, larger pages close the same
 * gap in fewer. The machine adds the time limit (`GapDeadline`) and the walk ids.
 */

export interface GapBudget {
  readonly maxGapEvents: number
  readonly gapPageSize: number
}

/** An event taken in before: the room's last one, or one still in the recent-id window. */
export const knownEvent = (raw: RawEvent, last: string, recent: RecentIds): boolean => {
  const id = raw["event_id"]
  return id === last || (typeof id === "string" && hasRecent(recent, id))
}

/** The first page's size. */
export const firstGapPage = (budget: GapBudget): number => Math.min(budget.gapPageSize, budget.maxGapEvents)

/** The walk after one page (`chunk` newest first, `end` the token further back), and the next page to ask for if it goes on. */
export const walkGapPage = (
  walk: GapWalk,
  chunk: ReadonlyArray<RawEvent>,
  end: string | undefined,
  recent: RecentIds,
  budget: GapBudget
): { readonly walk: GapWalk; readonly givenUp: boolean; readonly next?: { readonly from: string; readonly limit: number } } => {
  const missed = walk.missed.slice()
  const closed = (kept: ReadonlyArray<RawEvent>, givenUp: boolean) => ({ walk: { ...walk, missed: kept, done: true }, givenUp })
  for (const raw of chunk) {
    if (knownEvent(raw, walk.last, recent)) return closed(missed, false)
    missed.push(raw)
  }
  // A server that sent more than asked: the newest within the budget are kept.
  if (missed.length > budget.maxGapEvents) return closed(missed.slice(0, budget.maxGapEvents), true)
  // The room's first event reached: nothing older is missing.
  if (chunk.length === 0 || end === undefined) return closed(missed, false)
  const left = budget.maxGapEvents - missed.length
  if (left <= 0) return closed(missed, true)
  return { walk: { ...walk, missed }, givenUp: false, next: { from: end, limit: Math.min(budget.gapPageSize, left) } }
}
