/**
 * The top-level `data` fields a request may carry. A field this host does not serve is refused,
 * never dropped: a widget that sets one (MSC4407's `sticky_duration_ms`, a `dir` where the action
 * says `direction`) would otherwise be told "done" for something that did not happen. A field set
 * to `undefined` counts as absent: structured clone keeps such keys, and matrix-widget-api's
 * `WidgetApi` sends them (`readEventRelations` puts every optional parameter in `data`).
 */

/**
 * The fields of `data` outside `known`, in their order.
 *
 * @example unservedFields({ type: "m.x", content: {}, sticky_duration_ms: 1 }, new Set(["type", "content"])) // ["sticky_duration_ms"]
 */
export const unservedFields = (data: Readonly<Record<string, unknown>>, known: ReadonlySet<string>): ReadonlyArray<string> => {
  let extra: string[] | undefined
  for (const key in data) {
    if (!Object.hasOwn(data, key) || known.has(key) || data[key] === undefined) continue
    ;(extra ??= []).push(key)
  }
  return extra ?? []
}

/** `"a"`, `"a", "b"`: field names for an error message. */
export const quoteFields = (fields: ReadonlyArray<string>): string => fields.map((f) => JSON.stringify(f)).join(", ")
