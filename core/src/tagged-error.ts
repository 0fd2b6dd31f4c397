/**
 * Error classes with a `_tag`, the stable code callers branch on (`error._tag === "InvalidWidget"`,
 * effect's `catchTag`), and `instanceof` still working. The same usage as effect's
 * `Data.TaggedError`, without its runtime, so the browser bundle carries no effect:
 *
 * ```ts
 * export class NoCommonTransport extends TaggedError("NoCommonTransport")<{ readonly host: ReadonlyArray<string> }> {}
 * new NoCommonTransport({ host: [] })
 * ```
 *
 * The fields become own properties; a `message` field is also the Error's message, a `cause`
 * field its cause. Not an Effect (cannot be `yield*`ed): fail with `Effect.fail(error)`.
 */

/** The constructor arguments: the fields, or nothing when there are none. */
type FieldsArgument<A> = keyof A extends never ? void : { readonly [P in keyof A as P extends "_tag" ? never : P]: A[P] }

export interface TaggedErrorClass<Tag extends string> {
  new <A extends Record<string, unknown> = Record<never, never>>(args: FieldsArgument<A>): Error & { readonly _tag: Tag } & Readonly<A>
}

export const TaggedError = <Tag extends string>(tag: Tag): TaggedErrorClass<Tag> => {
  class Tagged extends Error {
    readonly _tag: Tag = tag
    constructor(args?: Readonly<Record<string, unknown>>) {
      super(typeof args?.["message"] === "string" ? args["message"] : undefined, args?.["cause"] === undefined ? undefined : { cause: args["cause"] })
      if (args !== undefined) Object.assign(this, args)
    }
    /** The fields and the tag: an Error's own `message` is not enumerable, so JSON would drop it. */
    toJSON(): Record<string, unknown> {
      return { ...Object.fromEntries(Object.entries(this)), ...(this.message === "" ? {} : { message: this.message }) }
    }
  }
  Tagged.prototype.name = tag
  return Tagged as unknown as TaggedErrorClass<Tag>
}
