/**
 * A run over time: its receipts grouped by the second (since the workload's start) in which they
 * arrived, with how many there were and the latency percentiles of those. The HTML report draws
 * throughput and latency over time from these; flag runs and scenario runs share the shape.
 */

export interface SecondBucket {
  /** Whole seconds since the start: the bucket holds receipts in [second, second + 1). */
  readonly second: number
  /** Receipts in this second: deliveries per second. */
  readonly deliveries: number
  readonly latencyMs: { readonly p50: number | null; readonly p90: number | null; readonly p99: number | null; readonly max: number | null }
}

const round = (n: number) => Math.round(n * 100) / 100
const pct = (sorted: ArrayLike<number>, p: number): number | null =>
  sorted.length === 0 ? null : round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!)

/**
 * Buckets receipts by second. `receivedAt[i]` (ms, the clock of `t0`) is when the receipt of
 * latency `latencies[i]` arrived. Every second from 0 to the last receipt has a bucket, empty
 * ones included, so a stall shows as a gap in throughput.
 *
 * @example secondBuckets(0, [100, 1500], [3, 5]) // [{ second: 0, deliveries: 1, … }, { second: 1, deliveries: 1, … }]
 */
export const secondBuckets = (t0: number, receivedAt: ArrayLike<number>, latencies: ArrayLike<number>): ReadonlyArray<SecondBucket> => {
  const bySecond: Array<Array<number>> = []
  for (let i = 0; i < receivedAt.length; i++) {
    const second = Math.max(0, Math.floor((receivedAt[i]! - t0) / 1000))
    ;(bySecond[second] ??= []).push(latencies[i]!)
  }
  return Array.from(bySecond, (samples = [], second) => {
    const sorted = Float64Array.from(samples).sort()
    return { second, deliveries: sorted.length, latencyMs: { p50: pct(sorted, 0.5), p90: pct(sorted, 0.9), p99: pct(sorted, 0.99), max: pct(sorted, 1) } }
  })
}
