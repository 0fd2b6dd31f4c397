/**
 * `widgethost conform host …` and `widgethost conform widget …`: parses the flags, runs the
 * conformance module, writes the JUnit report (`--junit FILE`) and prints the summary on
 * stdout. Exit code 0 when nothing diverged, 1 when something did, 2 for a usage problem
 * (thrown as UsageError).
 */
import { writeFileSync } from "node:fs"
// The flag parser alone: the simulator's barrel would load the homeserver client and its crypto.
import { parseFlags, UsageError } from "@widgethost/simulator/cli-flags"
import { type Harness, HarnessError, loadHarness, makeHarness } from "./harness.ts"
import { hostJunit, hostSummary } from "./host-report.ts"
import type { WidgetSource } from "./widget-links.ts"
import { widgetJunit, widgetSummary } from "./widget-report.ts"

export const conformUsage = `usage: widgethost conform host --ws URI [--harness FILE] [--widget-id ID] [--junit FILE] [--quiet]
       widgethost conform widget URL [--chromium PATH] [options]
       widgethost conform widget --ws-listen HOST:PORT [--exec CMD] [options]

conform host     act as a widget against the Widget API host at URI (MSC3009 websocket), along
                 every path of widgethost's session chart, with the chart as the oracle
conform widget   act as the host of the widget under test, along every path of the host side,
                 and check its answers (capabilities, supported_api_versions, acknowledgements,
                 errors for unknown actions, one answer per request in time); one fresh widget
                 per path: the page at URL in Chromium (over postMessage), or websocket widgets
                 connecting to HOST:PORT (MSC3009), started per path by --exec CMD ({ws} and
                 $WIDGETHOST_CONFORM_WS are the URI), else expected to connect once per path

options:
  --harness FILE   JSON: widgetId, capabilities, approvals, timeouts (see README)
  --widget-id ID   the widget id (overrides the harness)
  --junit FILE     write a JUnit XML report there
  --quiet          no progress on stderr
  --chromium PATH  the Chromium binary (default /usr/bin/chromium); needs playwright-core
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
  const [which, ...afterWhich] = args
  // `conform widget URL`: the URL is the one positional argument.
  const url = which === "widget" && afterWhich[0] !== undefined && !afterWhich[0].startsWith("--") ? afterWhich[0] : undefined
  const rest = url === undefined ? afterWhich : afterWhich.slice(1)
  const flags = parseFlags(rest, { ws: "value", "ws-listen": "value", exec: "value", chromium: "value", harness: "value", "widget-id": "value", junit: "value", quiet: "switch", help: "switch" }) as Record<string, string | boolean | undefined>
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
    // The runners (the session chart, websockets, Chromium) load only once the command line is good.
    const { conformHost } = await import("./conform-host.ts")
    const report = await conformHost({ uri, harness, onPath: (r, i, n) => progress(`[${i + 1}/${n}] ${r.divergences.length === 0 ? "ok" : "✗"} ${r.path.length} steps`) })
    if (typeof flags.junit === "string") writeFileSync(flags.junit, hostJunit(report))
    process.stdout.write(hostSummary(report))
    return report.findings.length === 0 ? 0 : 1
  }
  if (which === "widget") {
    const source = await widgetSource(url, flags, harness)
    progress(`conform widget: ${source.target}`)
    try {
      const { conformWidget } = await import("./conform-widget.ts")
      const report = await conformWidget({ target: source.target, connect: source.connect, harness, onPath: (r, i, n) => progress(`[${i + 1}/${n}] ${r.divergences.length === 0 ? "ok" : "✗"} ${r.path.length} steps`) })
      if (typeof flags.junit === "string") writeFileSync(flags.junit, widgetJunit(report))
      process.stdout.write(widgetSummary(report))
      return report.findings.length === 0 ? 0 : 1
    } finally {
      await source.close()
    }
  }
  throw new UsageError(`conform: unknown target ${which} (host, widget)\n${conformUsage}`)
}

/** How long a widget has for first contact: a page to load, a process to start and connect. */
const CONTACT_TIMEOUT_MS = 15_000

const widgetSource = async (url: string | undefined, flags: Readonly<Record<string, string | boolean | undefined>>, harness: Harness): Promise<WidgetSource> => {
  const listen = flags["ws-listen"]
  if ((url === undefined) === (typeof listen !== "string")) throw new UsageError("conform widget: give either a widget URL or --ws-listen HOST:PORT")
  if (url !== undefined) {
    if (!/^https?:\/\//.test(url)) throw new UsageError("conform widget: URL must be http:// or https://")
    const chromium = typeof flags.chromium === "string" ? flags.chromium : "/usr/bin/chromium"
    const { browserWidgets } = await import("./widget-links.ts")
    return browserWidgets({ url, harness, chromium, contactTimeoutMs: CONTACT_TIMEOUT_MS })
  }
  const match = /^(.+):(\d+)$/.exec(listen as string)
  if (match === null || Number(match[2]) > 65_535) throw new UsageError("conform widget: --ws-listen takes HOST:PORT (port 0: any free port)")
  const exec = typeof flags.exec === "string" ? flags.exec : undefined
  const { websocketWidgets } = await import("./widget-links.ts")
  return websocketWidgets({ host: match[1]!, port: Number(match[2]), contactTimeoutMs: CONTACT_TIMEOUT_MS, ...(exec === undefined ? {} : { exec }) })
}
