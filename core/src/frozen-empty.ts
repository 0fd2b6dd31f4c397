/**
 * Empty collections that cannot be written: what every fresh session state starts with, shared by
 * all of them. Their writers throw and the objects are frozen, so sharing one is sharing a
 * constant, not state (a bug that writes into one fails loudly instead of leaking into every
 * other session). `delete` and `clear` are left as they are: on an empty collection they change
 * nothing.
 *
 * A step that writes one copies it first (`Stepper`).
 */
class FrozenEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new TypeError("widgethost: a shared empty map is never written (copy it first)")
  }
}

class FrozenEmptySet<T> extends Set<T> {
  override add(): this {
    throw new TypeError("widgethost: a shared empty set is never written (copy it first)")
  }
}

/** An empty map that stays empty. */
export const frozenEmptyMap = <K, V>(): ReadonlyMap<K, V> => Object.freeze(new FrozenEmptyMap<K, V>())

/** An empty set that stays empty. */
export const frozenEmptySet = <T>(): ReadonlySet<T> => Object.freeze(new FrozenEmptySet<T>())
