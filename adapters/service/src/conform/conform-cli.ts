/**
 * `widgethost conform host …`: parses the flags, runs the conformance module, writes the
 * JUnit report (`--junit FILE`) and prints the summary on stdout. Exit code 0 when nothing
 * diverged, 1 when something did, 2 for a usage problem (thrown as UsageError).
 */
import { writeFileSync } from "node:fs"
import { parseFlags, UsageError } from "@widgethost/simulator"
import { conformHost } from "./conform-host.ts"
import { type Harness, HarnessError, loadHarness, makeHarness } from "./harness.ts"
import { hostJunit, hostSummary } from "./host-report.ts"

export const conformUsage = `usage: widgethost conform host --ws URI [--harness FILE] [--widget-id ID] [--junit FILE] [--quiet]

conform host     act as a widget against the Widget API host at URI (MSC3009 websocket), along
                 every path of widgethost's session chart, with the chart as the oracle

options:
  --harness FILE   JSON: widgetId, capabilities, approvals, timeouts (see README)
  --widget-id ID   the widget id (overrides the harness)
  --junit FILE     write a JUnit XML report there
  --quiet          no progress on stderr
exit code: 0 no divergences, 1 divergences found, 2 usage error
`

const harnessFrom = (flags: Readonly<Record<string, string | boolean | undefined>>): Harness => {
  const overrides = typeof flags["widget-id"] === "string" ? { widgetId: flags["widget-id"] } : {}
  try {
    return typeof flags.harness === "string" ? loadHarness(flags.harness, overrides) : makeHarness(overrides)
  } catch (error) {
    if (error instanceof HarnessError) throw new UsageError(error.message)
    throw error
  }
}

export const runConform = async (args: ReadonlyArray<string>): Promise<number> => {
  const [which, ...rest] = args
  const flags = parseFlags(rest, { ws: "value", harness: "value", "widget-id": "value", junit: "value", quiet: "switch", help: "switch" }) as Record<string, string | boolean | undefined>
  if (flags.help === true || which === "--help" || which === undefined) {
    process.stdout.write(conformUsage)
    return which === undefined ? 2 : 0
  }
  const harness = harnessFrom(flags)
  const progress = (line: string) => {
    if (flags.quiet !== true) process.stderr.write(`${line}\n`)
  }
  if (which === "host") {
    const uri = flags.ws
    if (typeof uri !== "string" || !/^wss?:\/\//.test(uri)) throw new UsageError("conform host: --ws URI is needed (ws:// or wss://)")
    const report = await conformHost({ uri, harness, onPath: (r, i, n) => progress(`[${i + 1}/${n}] ${r.divergences.length === 0 ? "ok" : "✗"} ${r.path.length} steps`) })
    if (typeof flags.junit === "string") writeFileSync(flags.junit, hostJunit(report))
    process.stdout.write(hostSummary(report))
    return report.findings.length === 0 ? 0 : 1
  }
  throw new UsageError(`conform: unknown target ${which} (host)\n${conformUsage}`)
}
