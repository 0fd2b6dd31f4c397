/**
 * What the core remembers to be fast, in one object that its owner passes in: `createEngine`
 * makes one per engine and hands it to the session charts and the router. The core keeps no
 * state of its own between calls, so two engines in one process share nothing, and a test can
 * look at (or start from) an engine's caches.
 *
 * Every cache is bounded and holds only values nobody writes (frozen objects, strings, compiled
 * permissions); a hit saves work or memory, never changes an answer. A function given no caches
 * computes the same answer afresh.
 */
import type { Permissions } from "./permissions.ts"
import type { RoutingEntry } from "./routing-index.ts"
import type { PendingToWidget, ToWidgetPurpose } from "./session/state.ts"

export interface CoreCaches {
  /**
   * Compiled permissions by approved set (sorted, as JSON): a thousand copies of one call widget
   * cost one set of maps, not a thousand. Oldest dropped past {@link CORE_CACHE_LIMITS}.
   */
  readonly permissions: Map<string, Permissions>
  /**
   * One copy of each capability string: every copy of a widget asks for the same strings, and each
   * session keeps its requested and approved lists for its whole life.
   */
  readonly capabilities: Map<string, string>
  /**
   * One frozen copy of each capability list (requested, approved, denied) by its contents: every
   * copy of a widget ends up with the same lists, each kept by its session for its whole life.
   */
  readonly lists: Map<string, ReadonlyArray<string>>
  /** Policy globs (widget id, origin, capability patterns) compiled to regular expressions. */
  readonly globs: Map<string, RegExp>
  /** The routing index's bucket keys per permissions object; weak, so they go with it. */
  readonly bucketKeys: WeakMap<Permissions, ReadonlyArray<string>>
  /**
   * The routing index's entries per permissions object and home room (frozen; weak, so they go
   * with the permissions): a thousand sessions approved alike in one room share one.
   */
  readonly routingEntries: WeakMap<Permissions, Map<string | undefined, RoutingEntry>>
  /**
   * The pending entry of a toWidget request that has survived no sweep, per (action, purpose):
   * frozen, so a burst of deliveries shares one instead of allocating one per message.
   */
  readonly freshPending: Map<string, Map<ToWidgetPurpose, PendingToWidget>>
  /**
   * The one exception to "nobody writes": a few empty collections that sessions' steps emptied
   * and let go (an idle session points at the shared frozen empties instead, `step.ts`), for
   * the next step that needs one. A round trip empties its pending call and in-flight id at the
   * end, and the next one needs both again: without these, each costs a new Map and Set.
   * Whoever takes one owns it; at most {@link SPARE_COLLECTIONS} of each are kept.
   */
  readonly spareMaps: Array<Map<unknown, unknown>>
  readonly spareSets: Array<Set<unknown>>
}

/** How many emptied Maps (and, apart, Sets) an engine keeps for reuse. */
export const SPARE_COLLECTIONS = 4

/** How many entries each string-keyed cache keeps; the oldest goes first past it. */
export const CORE_CACHE_LIMITS = {
  permissions: 1024,
  capabilities: 4096,
  lists: 1024,
  globs: 1024
} as const

/** Fresh, empty caches: one per engine. */
export const createCoreCaches = (): CoreCaches => ({
  permissions: new Map(),
  capabilities: new Map(),
  lists: new Map(),
  globs: new Map(),
  bucketKeys: new WeakMap(),
  routingEntries: new WeakMap(),
  freshPending: new Map(),
  spareMaps: [],
  spareSets: []
})

/** Stores `value` under `key`, first dropping the oldest entry if the cache is full. */
export const remember = <K, V>(cache: Map<K, V>, key: K, value: V, limit: number): V => {
  if (cache.size >= limit) cache.delete(cache.keys().next().value!)
  cache.set(key, value)
  return value
}

/** Lists whose key would be longer than this are kept as they are (a key that long costs more than it saves). */
const MAX_SHARED_LIST_KEY = 16_384

/**
 * The caches' one frozen copy of a capability list with these contents, in this order (`list`
 * itself, frozen, when it is the first). Lists in a session's state are replaced, never written
 * in place, so sharing one is safe; freezing makes sure of it.
 */
export const shareList = (caches: CoreCaches, list: ReadonlyArray<string>): ReadonlyArray<string> => {
  const key = JSON.stringify(list)
  if (key.length > MAX_SHARED_LIST_KEY) return list
  return caches.lists.get(key) ?? remember(caches.lists, key, Object.freeze(list), CORE_CACHE_LIMITS.lists)
}
