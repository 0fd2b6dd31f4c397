import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { TaggedError } from "./tagged-error.ts"

class NotFound extends TaggedError("NotFound")<{ readonly message: string; readonly path: string }> {}
class Gone extends TaggedError("Gone") {}

describe("TaggedError", () => {
  it("is an Error and its class, tagged and named, with its fields as properties", () => {
    const error = new NotFound({ message: "no such file", path: "/x" })
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(NotFound)
    expect(error).not.toBeInstanceOf(Gone)
    expect([error._tag, error.name, error.message, error.path]).toEqual(["NotFound", "NotFound", "no such file", "/x"])
    // A stack trace starts with the tag, so logs name the error.
    expect(error.stack?.split("\n")[0]).toBe("NotFound: no such file")
  })

  it("takes no argument when it has no fields", () => {
    const error = new Gone()
    expect([error._tag, error.message]).toEqual(["Gone", ""])
  })

  it("a cause field is the Error's cause", () => {
    const cause = new Error("socket closed")
    class Failed extends TaggedError("Failed")<{ readonly cause: unknown }> {}
    expect(new Failed({ cause }).cause).toBe(cause)
  })

  it("serialises its tag and fields, message included", () => {
    expect(JSON.parse(JSON.stringify(new NotFound({ message: "no such file", path: "/x" })))).toEqual({ _tag: "NotFound", message: "no such file", path: "/x" })
  })

  it("effect's catchTag finds it by its tag", async () => {
    const program = Effect.fail(new NotFound({ message: "m", path: "/y" })).pipe(Effect.catchTag("NotFound", (e) => Effect.succeed(e.path)))
    expect(await Effect.runPromise(program)).toBe("/y")
    const gone: Effect.Effect<string, NotFound | Gone> = Effect.fail(new Gone())
    const exit = await Effect.runPromiseExit(gone.pipe(Effect.catchTag("NotFound", () => Effect.succeed("wrong"))))
    expect(Exit.isFailure(exit)).toBe(true)
  })
})
