import { Result as EffectResult } from "effect"
import { describe, expect, it } from "vitest"
import * as Result from "./result.ts"

describe("Result", () => {
  it("success and failure are plain data with effect's Result shape", () => {
    expect(Result.succeed(1)).toStrictEqual({ _tag: "Success", success: 1 })
    expect(Result.fail("no")).toStrictEqual({ _tag: "Failure", failure: "no" })
    // Code written against effect's Result reads ours the same way.
    expect(EffectResult.isSuccess(Result.succeed(1) as never)).toBe(true)
    expect(EffectResult.isFailure(Result.fail("no") as never)).toBe(true)
  })

  it("the guards tell them apart", () => {
    expect([Result.isSuccess(Result.succeed(0)), Result.isFailure(Result.succeed(0))]).toEqual([true, false])
    expect([Result.isSuccess(Result.fail(0)), Result.isFailure(Result.fail(0))]).toEqual([false, true])
  })

  it("getOrThrow gives the value, or throws the failure (wrapped when it is not an Error)", () => {
    expect(Result.getOrThrow(Result.succeed("v"))).toBe("v")
    const error = new Error("boom")
    expect(() => Result.getOrThrow(Result.fail(error))).toThrow(error)
    expect(() => Result.getOrThrow(Result.fail({ reason: "bad" }))).toThrow(/"reason":"bad"/)
  })
})
