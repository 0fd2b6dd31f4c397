/**
 * One clock for every thread of a run: `performance.now()` counts from each thread's own start,
 * so times stamped in one worker and read in another (send times, receipts, step times) are
 * taken as `performance.timeOrigin + performance.now()`, milliseconds since the epoch.
 */
import { performance } from "node:perf_hooks"

export const sharedNow = (): number => performance.timeOrigin + performance.now()
