/**
 * A decoder's answer: the value, or why there is none. Plain data with effect's `Result` shape
 * (`_tag` "Success" | "Failure", `success` / `failure`), so code that switches on `_tag` reads the
 * same; kept here rather than imported so the browser bundle carries no effect runtime.
 *
 * Import it as a namespace: `import { Result } from "@widgethost/core"`, then `Result.isFailure(r)`.
 */

export interface Success<A> {
  readonly _tag: "Success"
  readonly success: A
}

export interface Failure<E> {
  readonly _tag: "Failure"
  readonly failure: E
}

export type Result<A, E> = Success<A> | Failure<E>

export const succeed = <A>(success: A): Result<A, never> => ({ _tag: "Success", success })

export const fail = <E>(failure: E): Result<never, E> => ({ _tag: "Failure", failure })

export const isSuccess = <A, E>(result: Result<A, E>): result is Success<A> => result._tag === "Success"

export const isFailure = <A, E>(result: Result<A, E>): result is Failure<E> => result._tag === "Failure"

/** The value, or throws the failure (as is when it is an Error, wrapped otherwise). For callers that treat failure as a bug. */
export const getOrThrow = <A, E>(result: Result<A, E>): A => {
  if (result._tag === "Success") return result.success
  throw result.failure instanceof Error ? result.failure : new Error(`Result.getOrThrow: ${JSON.stringify(result.failure)}`)
}
