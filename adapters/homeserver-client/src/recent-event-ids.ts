/**
 * The window of recently taken-in event ids that drops duplicates (a batch repeated after a failed
 * save, an event both in a gap fill and in the timeline), as an immutable value for the sync loop
 * machine.
 *
 * Cost contract: adding n ids copies at most one generation (`GENERATION` ids) plus n, never the
 * whole window, so a step stays cheap however large the window; a lookup checks every generation
 * (at most `kept / GENERATION + 1` set lookups). The window keeps at least `kept` ids, and at most
 * `kept + GENERATION`.
 */

export interface RecentIds {
  /** Oldest first; each is frozen once a newer one exists. */
  readonly generations: ReadonlyArray<ReadonlySet<string>>
  readonly kept: number
}

const GENERATION = 250

export const emptyRecent = (kept: number): RecentIds => ({ generations: [], kept })

/** A window holding `ids` (oldest first), e.g. those saved in `sync.json`. */
export const recentFrom = (ids: ReadonlyArray<string>, kept: number): RecentIds => withRecent(emptyRecent(kept), ids)

export const hasRecent = (recent: RecentIds, id: string): boolean => {
  const gens = recent.generations
  for (let i = gens.length - 1; i >= 0; i--) if (gens[i]!.has(id)) return true
  return false
}

/** The window with `ids` added as the newest; the same value when there are none. */
export const withRecent = (recent: RecentIds, ids: ReadonlyArray<string>): RecentIds => {
  if (ids.length === 0) return recent
  const gens = recent.generations.slice()
  const last = gens.at(-1)
  let young: Set<string>
  if (last !== undefined && last.size < GENERATION) {
    young = new Set(last)
    gens[gens.length - 1] = young
  } else {
    young = new Set()
    gens.push(young)
  }
  for (const id of ids) {
    if (young.size >= GENERATION) {
      young = new Set()
      gens.push(young)
    }
    young.add(id)
  }
  const maxGenerations = Math.ceil(recent.kept / GENERATION) + 1
  while (gens.length > maxGenerations) gens.shift()
  return { generations: gens, kept: recent.kept }
}

/** The newest `n` ids, oldest first (what is saved). */
export const newestRecent = (recent: RecentIds, n: number): Array<string> => {
  const all: Array<string> = []
  for (const g of recent.generations) for (const id of g) all.push(id)
  return all.slice(-n)
}
