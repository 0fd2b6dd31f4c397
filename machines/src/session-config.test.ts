import { defaultLimits } from "@widgethost/core"
import { describe, expect, it } from "vitest"
import { type OwnSessionConfig, sessionConfigs } from "./session-config.ts"

const own: OwnSessionConfig = { widgetId: "w", kind: "room", homeRoom: "!r:x", waitForIframeLoad: true, origin: "https://w.example", fileEncoding: "structured-clone" }

describe("session configs over one prototype per engine", () => {
  it("read like a plain config: own fields and the engine's shared ones", () => {
    const policy = { rules: [] }
    const config = sessionConfigs({ policy, limits: defaultLimits, openIdApprover: false })(own)
    expect(config.widgetId).toBe("w")
    expect(config.homeRoom).toBe("!r:x")
    expect(config.origin).toBe("https://w.example")
    expect(config.policy).toBe(policy)
    expect(config.limits).toBe(defaultLimits)
    expect(config.openIdApprover).toBe(false)
  })

  it("sessions of one engine share the prototype; it is frozen, and holds no session's fields", () => {
    const make = sessionConfigs({ policy: { rules: [] }, limits: defaultLimits })
    const one = make(own)
    const two = make({ ...own, widgetId: "v", homeRoom: undefined, origin: undefined })
    const proto = Object.getPrototypeOf(one) as object
    expect(Object.getPrototypeOf(two)).toBe(proto)
    expect(Object.isFrozen(proto)).toBe(true)
    expect(Object.keys(one).sort()).toEqual(["fileEncoding", "homeRoom", "kind", "origin", "waitForIframeLoad", "widgetId"])
    expect([two.widgetId, two.homeRoom, two.origin, one.widgetId]).toEqual(["v", undefined, undefined, "w"])
    expect(() => ((proto as { limits: unknown }).limits = {})).toThrow(TypeError)
  })

  it("two engines do not share a prototype", () => {
    const a = sessionConfigs({ policy: { rules: [] }, limits: defaultLimits })(own)
    const b = sessionConfigs({ policy: { rules: [] }, limits: { ...defaultLimits, requestTimeoutMs: 1 } })(own)
    expect(Object.getPrototypeOf(a)).not.toBe(Object.getPrototypeOf(b))
    expect(b.limits.requestTimeoutMs).toBe(1)
    expect(a.limits.requestTimeoutMs).toBe(defaultLimits.requestTimeoutMs)
  })
})
