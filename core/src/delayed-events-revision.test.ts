/** How the MSC4140 revision is told apart, as a table: given what `/versions` and the probe say, want the revision or the error. */
import { assert, describe, it } from "vitest"
import { type DelayedEventsProbe, learnDelayedEventsRevision, type ProbeRefusal } from "./delayed-events-revision.ts"

const refusal = (status: number | undefined, errcode?: string): ProbeRefusal => ({ status, errcode, error: new Error(`refused ${status}`) })

interface Case {
  readonly given: { readonly stable: boolean; readonly unstable: boolean }
  readonly probe: ProbeRefusal | undefined | "not asked"
  readonly want: string | undefined
}

const cases: ReadonlyArray<Case> = [
  { given: { stable: true, unstable: true }, probe: "not asked", want: "endpoint-stable" },
  { given: { stable: false, unstable: false }, probe: "not asked", want: undefined },
  { given: { stable: false, unstable: true }, probe: refusal(404, "M_UNRECOGNIZED"), want: "query-parameter" },
  { given: { stable: false, unstable: true }, probe: refusal(405, "M_UNRECOGNIZED"), want: "query-parameter" },
  // Another 404 (an unknown room, say) comes from an endpoint that exists.
  { given: { stable: false, unstable: true }, probe: refusal(404, "M_NOT_FOUND"), want: "endpoint" },
  { given: { stable: false, unstable: true }, probe: refusal(400, "M_BAD_JSON"), want: "endpoint" },
  { given: { stable: false, unstable: true }, probe: refusal(403, "M_FORBIDDEN"), want: "endpoint" },
  { given: { stable: false, unstable: true }, probe: undefined, want: "endpoint" },
  { given: { stable: false, unstable: true }, probe: refusal(500), want: "error: refused 500" },
  { given: { stable: false, unstable: true }, probe: refusal(429, "M_LIMIT_EXCEEDED"), want: "error: refused 429" },
  { given: { stable: false, unstable: true }, probe: refusal(undefined), want: "error: refused undefined" }
]

const probeOf = (c: Case, asked: { versions: number; endpoint: number }): DelayedEventsProbe => ({
  versions: async () => (asked.versions++, c.given),
  tryEndpoint: async () => {
    asked.endpoint++
    if (c.probe === "not asked") throw new Error("the endpoint was probed though /versions settled it")
    return c.probe
  }
})

describe("MSC4140 revision: /versions, then the probe", () => {
  for (const c of cases) {
    it(`${JSON.stringify(c.given)} and ${c.probe === undefined || c.probe === "not asked" ? String(c.probe) : `${c.probe.status} ${String(c.probe.errcode)}`} → ${String(c.want)}`, async () => {
      const asked = { versions: 0, endpoint: 0 }
      const got = await learnDelayedEventsRevision(probeOf(c, asked))().then(
        (revision) => revision,
        (error: Error) => `error: ${error.message}`
      )
      assert.equal(got, c.want)
      assert.equal(asked.endpoint, c.probe === "not asked" ? 0 : 1)
    })
  }

  it("learned once: later calls ask nothing", async () => {
    const asked = { versions: 0, endpoint: 0 }
    const revision = learnDelayedEventsRevision(probeOf({ given: { stable: false, unstable: true }, probe: undefined, want: "endpoint" }, asked))
    assert.deepEqual(await Promise.all([revision(), revision(), revision()]), ["endpoint", "endpoint", "endpoint"])
    assert.deepEqual(asked, { versions: 1, endpoint: 1 })
  })

  it("a failure is not remembered: the next call asks again", async () => {
    let down = true
    let versions = 0
    const revision = learnDelayedEventsRevision({
      versions: async () => {
        versions++
        if (down) throw new Error("connection refused")
        return { stable: true, unstable: false }
      },
      tryEndpoint: async () => undefined
    })
    const first = await revision().catch((error: Error) => error.message)
    down = false
    assert.deepEqual([first, await revision(), versions], ["connection refused", "endpoint-stable", 2])
  })
})
