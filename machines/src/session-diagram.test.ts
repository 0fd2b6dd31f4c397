import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { sessionDiagramDocument } from "./session-diagram.ts"

describe("session diagram", () => {
  it("docs/session-machine.md is the diagram of the chart as defined now (npm run diagram rewrites it)", () => {
    const checkedIn = readFileSync(new URL("../../docs/session-machine.md", import.meta.url), "utf8")
    expect(checkedIn).toBe(sessionDiagramDocument())
  })

  it("shows every state, every delay and the reload transitions", () => {
    const text = sessionDiagramDocument()
    for (const state of ["loading", "negotiating_asking", "negotiating_prompting", "ready", "renegotiating", "closed"]) expect(text).toContain(state)
    for (const delay of ["after capabilitiesTick", "after approvalTimeout"]) expect(text).toContain(delay)
    expect(text).toContain("ready --> loading : frame.loaded [loadBringsNewDocument]")
  })
})
