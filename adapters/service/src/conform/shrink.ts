/**
 * Shrinking, for both `conform` directions: from a path that showed a divergence, the shortest
 * path obtained by dropping one step at a time on which it still shows, keeping only paths the
 * tool's side could really take. `shows` drives a path and returns the divergence, if it showed.
 */
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
