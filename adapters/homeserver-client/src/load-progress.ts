/**
 * How far along the long work of connecting is, for a progress line: loading the crypto store
 * (the snapshot's records restored, the journal replayed, the crypto machine opened on them) and
 * taking in the first sync of an account (its rooms). Reported as it goes, and once more with
 * `finished` when it is done; what to show, and how often, is the receiver's business.
 */
export interface LoadProgress {
  readonly task: "crypto-store" | "first-sync"
  /** What it is doing now, in a few words ("restoring records", "taking in rooms"). */
  readonly step: string
  readonly done: number
  /** 0: not countable (a step of unknown length, such as waiting for the homeserver). */
  readonly total: number
  /** What `done` and `total` count ("records", "rooms"); empty when not countable. */
  readonly unit: string
  readonly finished: boolean
}

export type OnLoadProgress = (progress: LoadProgress) => void
