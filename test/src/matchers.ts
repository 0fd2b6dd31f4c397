import { expect } from "vitest"

/*
 * vitest's asymmetric matchers are typed `any`, so that they fit anywhere in an expected value.
 * These return `unknown`, which fits there as well and keeps `any` out of the tests (the lint's
 * no-unsafe-assignment). Not exported from index.ts: the benchmarks use that outside vitest.
 */

/** A string that contains `text`. */
export const stringContaining = (text: string): unknown => expect.stringContaining(text)

/** Any value made by `constructor`, or of its primitive type (`String`, `Number`, ...). */
export const anyOf = (constructor: unknown): unknown => expect.any(constructor)

/** An object with at least these properties. */
export const objectContaining = (properties: Readonly<Record<string, unknown>>): unknown => expect.objectContaining(properties)
