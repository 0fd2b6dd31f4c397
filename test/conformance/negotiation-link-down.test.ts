/**
 * The `capabilities` request while the transport's link is down: the chart's negotiation timer
 * (`negotiating.asking`) does not run while no answer can come, as toWidget request timeouts do
 * not (`linkDown`). Given a session asking for capabilities with the default 10 s timeout, and a
 * script of link-down, link-up and time; want its phase at the end, whether the request timed
 * out, and (when the widget answers after all) what it was granted.
 */
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness } from "../src/index.ts"

const CAP = "m.send.event:m.room.message"

/** One step of a row's script. */
type Step = { readonly advance: number } | "down" | "up" | "answer"

const rows: ReadonlyArray<{ readonly name: string; readonly script: ReadonlyArray<Step>; readonly phase: string; readonly timedOut: number; readonly approved: ReadonlyArray<string> }> = [
  { name: "link up throughout: times out at 10 s", script: [{ advance: 10_000 }], phase: "ready", timedOut: 1, approved: [] },
  { name: "link up throughout: still asking at 7.5 s", script: [{ advance: 7_500 }], phase: "negotiating", timedOut: 0, approved: [] },
  { name: "down at once for 60 s: still asking", script: ["down", { advance: 60_000 }], phase: "negotiating", timedOut: 0, approved: [] },
  { name: "down at 5 s for 60 s, then answered: granted", script: [{ advance: 5_000 }, "down", { advance: 60_000 }, "up", "answer"], phase: "ready", timedOut: 0, approved: [CAP] },
  { name: "down at 5 s for 60 s, back for 2.5 s: what was left has not run out", script: [{ advance: 5_000 }, "down", { advance: 60_000 }, "up", { advance: 2_500 }], phase: "negotiating", timedOut: 0, approved: [] },
  { name: "down at 5 s for 60 s, back for 5 s: the rest of its 10 s ran out", script: [{ advance: 5_000 }, "down", { advance: 60_000 }, "up", { advance: 5_000 }], phase: "ready", timedOut: 1, approved: [] },
  { name: "down and up twice, 30 s away in all, answered after 9 s up: granted", script: [{ advance: 3_000 }, "down", { advance: 15_000 }, "up", { advance: 3_000 }, "down", { advance: 15_000 }, "up", { advance: 3_000 }, "answer"], phase: "ready", timedOut: 0, approved: [CAP] },
  { name: "down only while the timeout would have fired, then up for 10 s: times out", script: [{ advance: 9_000 }, "down", { advance: 2_000 }, "up", { advance: 10_000 }], phase: "ready", timedOut: 1, approved: [] }
]

describe("negotiation while the link is down", () => {
  it.each(rows)("$name", async ({ script, phase, timedOut, approved }) => {
    const h = new Harness({ approver: approveAll })
    h.session.frameLoaded()
    const [capabilities] = Harness.requests(h.take())
    expect(capabilities?.action).toBe("capabilities")
    for (const step of script) {
      if (step === "down") h.session.transportDown()
      else if (step === "up") h.session.transportUp()
      else if (step === "answer") h.respond(capabilities!, { capabilities: [CAP] })
      else await h.advance(step.advance)
      await flush()
    }
    expect(h.phase).toBe(phase)
    expect(h.session.info().counters.timedOut).toBe(timedOut)
    expect(h.session.info().approved).toEqual(approved)
  })

})
