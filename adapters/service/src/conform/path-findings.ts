/**
 * Paths and what they show, for both `conform` directions: the list of paths to drive (each
 * once, shortest first), shrinking (from a path that showed a divergence, the shortest path
 * obtained by dropping one step at a time on which it still shows, keeping only paths the
 * tool's side could really take), and one finding per divergence with its shortest path.
 */

/** `paths` without repeats, shortest first. */
export const uniqueShortestFirst = <S>(paths: ReadonlyArray<ReadonlyArray<S>>): ReadonlyArray<ReadonlyArray<S>> => {
  const seen = new Set<string>()
  return paths
    .filter((path) => {
      const key = JSON.stringify(path)
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .sort((a, b) => a.length - b.length)
}

/** `shows` drives a path and returns the divergence, if it showed. */
export const shrinkPath = async <S, D>(
  path: ReadonlyArray<S>,
  isValid: (path: ReadonlyArray<S>) => boolean,
  shows: (path: ReadonlyArray<S>) => Promise<D | undefined>
): Promise<{ path: ReadonlyArray<S>; divergence: D } | undefined> => {
  let best = path
  let found = await shows(path)
  if (found === undefined) return undefined // it did not show again: the caller keeps the original
  for (let progress = true; progress; ) {
    progress = false
    for (let drop = 0; drop < best.length; drop++) {
      const candidate = best.filter((_, i) => i !== drop)
      if (!isValid(candidate)) continue
      const again = await shows(candidate)
      if (again === undefined) continue
      best = candidate
      found = again
      progress = true
      break
    }
  }
  return { path: best, divergence: found }
}

/**
 * One finding per divergence key over `results`: first seen on its shortest path (then shrunk
 * by `shrink`), with how many paths showed it, sorted by key.
 */
export const collectFindings = async <S, D>(
  results: ReadonlyArray<{ readonly path: ReadonlyArray<S>; readonly divergences: ReadonlyArray<D> }>,
  keyOf: (divergence: D) => string,
  shrink: (path: ReadonlyArray<S>, key: string) => Promise<{ path: ReadonlyArray<S>; divergence: D } | undefined>
): Promise<Array<D & { readonly key: string; readonly path: ReadonlyArray<S>; readonly paths: number }>> => {
  const first = new Map<string, { path: ReadonlyArray<S>; divergence: D; count: number }>()
  for (const result of results) {
    for (const divergence of result.divergences) {
      const key = keyOf(divergence)
      const seen = first.get(key)
      if (seen === undefined || result.path.length < seen.path.length) first.set(key, { path: result.path, divergence, count: (seen?.count ?? 0) + 1 })
      else seen.count++
    }
  }
  const findings: Array<D & { key: string; path: ReadonlyArray<S>; paths: number }> = []
  for (const [key, { path, divergence, count }] of first) {
    const chosen = (await shrink(path, key)) ?? { path, divergence }
    findings.push({ ...chosen.divergence, key, path: chosen.path, paths: count })
  }
  return findings.sort((a, b) => a.key.localeCompare(b.key))
}
