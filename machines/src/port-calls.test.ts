import { type CallResult, mediaFeature, type PromiseHomeserverPort } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { callPort } from "./port-calls.ts"

const port = { mediaConfig: async () => ({ "m.upload.size": 5 }), joinedRooms: async () => ["!a:hs"] } as unknown as PromiseHomeserverPort

const answered = (run: (answer: (result: CallResult) => void) => void): Promise<CallResult[]> =>
  new Promise((resolve) => {
    const results: CallResult[] = []
    run((result) => results.push(result))
    setTimeout(() => resolve(results), 10)
  })

describe("callPort", () => {
  it("runs the core's calls without any feature", async () => {
    expect(await answered((answer) => callPort(port, { _tag: "JoinedRooms" }, answer, {}))).toEqual([{ _tag: "Rooms", value: ["!a:hs"] }])
  })

  it("runs a feature's call with that feature's calls, and answers one Failed without them", async () => {
    expect(await answered((answer) => callPort(port, { _tag: "MediaConfig" }, answer, mediaFeature.calls ?? {}))).toEqual([{ _tag: "Body", value: { "m.upload.size": 5 } }])
    const [failed, ...more] = await answered((answer) => callPort(port, { _tag: "MediaConfig" }, answer, {}))
    expect(more).toEqual([])
    expect(failed?._tag).toBe("Failed")
    expect(failed?._tag === "Failed" ? failed.error.message : "").toContain("mediaConfig")
  })
})
