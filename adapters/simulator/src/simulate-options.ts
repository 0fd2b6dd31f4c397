/**
 * `widgethost simulate`'s options: their defaults and limits, the report's shape, and the
 * command-line flags that set them. Every bad value is one `UsageError` naming the flag.
 */
import { existsSync, statSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { parseFlags, UsageError } from "./cli-flags.ts"
import type { SecondBucket } from "./run-timeline.ts"


export interface SimulateOptions {
  readonly accounts: number
  /** Widgets per account. */
  readonly widgets: number
  /** Messages per second, over all widgets. */
  readonly rate: number
  /** Send for this long (`rate × seconds` messages) or this many messages. */
  readonly until: { readonly durationSeconds: number } | { readonly events: number }
  /** A state change after every K-th message (0: none). */
  readonly stateEvery: number
  /** A to-device message after every K-th message (0: none; needs two accounts). */
  readonly toDeviceEvery: number
  /** Fraction of the widgets that watch TURN servers. */
  readonly turnWatchers: number
  /** The room has `m.room.encryption`; to-device messages are sent encrypted. */
  readonly encrypted: boolean
  readonly seed: number
  /** How long to wait after the last send for what is still in flight. Default 15 000 ms. */
  readonly drainTimeoutMs?: number
  /** How long accounts and widgets may take to get ready. Default 60 000 ms. */
  readonly setupTimeoutMs?: number
  /** Called about ten times a second while the simulation runs. */
  readonly onProgress?: (progress: Progress) => void
  /** Aborting stops sending early; what was sent is drained and reported. */
  readonly signal?: AbortSignal
}

export const defaultSimulateOptions: SimulateOptions = {
  accounts: 2,
  widgets: 5,
  rate: 20,
  until: { durationSeconds: 10 },
  stateEvery: 10,
  toDeviceEvery: 10,
  turnWatchers: 0.2,
  encrypted: false,
  seed: 1
}

/** Upper bounds that keep one command line from exhausting the machine (sockets, memory). */
const LIMITS = { accounts: 100, widgets: 1000, totalWidgets: 5000, rate: 10_000, durationSeconds: 86_400, events: 10_000_000, deliveries: 10_000_000 }

export interface Progress {
  readonly phase: "setup" | "running" | "draining"
  readonly widgetsReady: number
  readonly widgets: number
  readonly sent: number
  readonly planned: number
  readonly deliveries: number
  readonly expectedDeliveries: number
  readonly elapsedMs: number
}

export interface Report {
  readonly accounts: number
  readonly widgetsPerAccount: number
  readonly widgets: number
  readonly encrypted: boolean
  readonly rate: number
  readonly seed: number
  readonly setupSeconds: number
  /** From the first send to the last message delivery (or the last send, if later). */
  readonly durationSeconds: number
  readonly messagesPlanned: number
  readonly messagesSent: number
  readonly stateChanges: { readonly sent: number; readonly deliveries: number }
  /** `received`: distinct messages that reached the target account; `deliveries`: per widget. */
  readonly toDevice: { readonly sent: number; readonly received: number; readonly deliveries: number }
  readonly turn: { readonly watchers: number; readonly updates: number }
  /** Room events the homeserver ports handed to the engines during the run. */
  readonly eventsRouted: number
  /** Messages received by widgets (`send_event` toWidget), out of `expectedDeliveries`. */
  readonly deliveries: number
  readonly expectedDeliveries: number
  readonly deliveriesPerSecond: number
  /** Send (fromWidget) to receipt (toWidget) of each message by each widget, in ms. */
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null; readonly max: number | null }
  readonly memoryMB: { readonly rss: number; readonly heapUsed: number; readonly peakRss: number }
  /**
   * Share of the run the event loop was busy (0 to 1). Everything (homeserver, ports, engines,
   * widgets) shares this one loop: near 1, latencies measure the queue, not the engine.
   */
  readonly eventLoopUtilization: number
  readonly errors: { readonly total: number; readonly byKind: Readonly<Record<string, number>>; readonly samples: ReadonlyArray<string> }
  /** Receipts per second since the first send, with their latency percentiles. */
  readonly timeline: ReadonlyArray<SecondBucket>
  /** Widgets short of deliveries or with a median latency over twice the run's (at most 20, worst first). */
  readonly outliers: ReadonlyArray<WidgetOutlier>
}

export interface WidgetOutlier {
  readonly widget: string
  readonly deliveries: number
  readonly expected: number
  readonly p50: number | null
  readonly p99: number | null
}

/** The simulation could not get going (or was broken by its own environment); not a usage error. */
export class SimulationError extends Error {
  override readonly name = "SimulationError"
}

// ---- validation and flags -----------------------------------------------------------------------

const isInteger = (n: number) => Number.isSafeInteger(n)

/**
 * Checks options for sense and size; every problem is a {@link UsageError} naming the flag.
 *
 * @example checkOptions({ ...defaultSimulateOptions, accounts: 0 }) // throws UsageError("--accounts must be …")
 */
export const checkOptions = (o: SimulateOptions): void => {
  const need = (ok: boolean, message: string) => {
    if (!ok) throw new UsageError(message)
  }
  need(isInteger(o.accounts) && o.accounts >= 1 && o.accounts <= LIMITS.accounts, `--accounts must be an integer from 1 to ${LIMITS.accounts}`)
  need(isInteger(o.widgets) && o.widgets >= 1 && o.widgets <= LIMITS.widgets, `--widgets must be an integer from 1 to ${LIMITS.widgets}`)
  need(o.accounts * o.widgets <= LIMITS.totalWidgets, `--accounts × --widgets must be at most ${LIMITS.totalWidgets}`)
  need(Number.isFinite(o.rate) && o.rate > 0 && o.rate <= LIMITS.rate, `--rate must be a number above 0 and at most ${LIMITS.rate}`)
  if ("events" in o.until) need(isInteger(o.until.events) && o.until.events >= 1 && o.until.events <= LIMITS.events, `--events must be an integer from 1 to ${LIMITS.events}`)
  else {
    const s = o.until.durationSeconds
    need(Number.isFinite(s) && s > 0 && s <= LIMITS.durationSeconds, `--duration must be a number of seconds above 0 and at most ${LIMITS.durationSeconds}`)
    need(Math.floor(s * o.rate) >= 1, "--duration × --rate must allow at least one message")
  }
  // Every delivery is tracked (a byte per widget and message, a latency sample each): bounded.
  const messages = "events" in o.until ? o.until.events : Math.floor(o.until.durationSeconds * o.rate)
  need(messages * o.accounts * o.widgets <= LIMITS.deliveries, `the run would track ${messages * o.accounts * o.widgets} deliveries (messages × widgets), more than ${LIMITS.deliveries}: lower --events, --duration, --rate or the widgets`)
  need(isInteger(o.stateEvery) && o.stateEvery >= 0, "--state-every must be a non-negative integer (0: no state changes)")
  need(isInteger(o.toDeviceEvery) && o.toDeviceEvery >= 0, "--to-device-every must be a non-negative integer (0: no to-device messages)")
  need(Number.isFinite(o.turnWatchers) && o.turnWatchers >= 0 && o.turnWatchers <= 1, "--turn-watchers must be a fraction from 0 to 1")
  need(isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff, "--seed must be an integer from 0 to 4294967295")
}

export const simulateUsage = `usage: widgethost simulate [options]

A headless simulation on an in-memory embedded homeserver: N accounts, M scripted websocket
widgets each, in one public room; prints a report on stdout. Exit code 0 when every message
reached every widget without errors, 1 when errors were counted, 2 on bad options. Limits:
100 accounts, 1000 widgets per account, 5000 in all, 10 million deliveries (messages × widgets).

options:
  --accounts N          accounts (default 2)
  --widgets M           widgets per account (default 5)
  --rate R              messages per second, over all widgets (default 20)
  --duration SECONDS    send for this long (default 10)
  --events COUNT        or send this many messages
  --state-every K       a state change after every K-th message (default 10; 0: none)
  --to-device-every K   a to-device message to another account after every K-th message (default 10; 0: none)
  --turn-watchers F     fraction of the widgets watching TURN servers (default 0.2)
  --encrypted           the room is encrypted (and so are the to-device messages)
  --seed S              seed of the workload (default 1): same seed, same plan
  --workers N           spread the accounts over N worker threads (one engine per account,
                        the homeserver stays in the main thread); the report merges them
  --workers 1,2 | 1..4  run once per worker count and print the scaling table (throughput
                        and p99 per count)
  --scenario FILE       run a scenario file (YAML or JSON; see the simulator README) instead;
                        only --workers N, --json and --report go with it; exit code 1 when its verdict fails
  --json                the report as one JSON object
  --report FILE         also write the report as a self-contained HTML page (throughput and
                        latency over time, errors by kind, outliers, parameters); one run only
  --help                this help
`

const INT = /^\d+$/
const DECIMAL = /^(\d+(\.\d*)?|\.\d+)$/

const intFlag = (flags: Record<string, string | true>, name: string, fallback: number): number => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  if (typeof raw !== "string" || !INT.test(raw)) throw new UsageError(`--${name} must be a non-negative integer, not ${String(raw)}`)
  return Number(raw)
}

const numberFlag = (flags: Record<string, string | true>, name: string, fallback: number): number => {
  const raw = flags[name]
  if (raw === undefined) return fallback
  if (typeof raw !== "string" || !DECIMAL.test(raw)) throw new UsageError(`--${name} must be a non-negative number, not ${String(raw)}`)
  return Number(raw)
}

/** `--workers`: a count, a list (`1,2,4`) or a range (`1..4`); each from 1 to the accounts. */
const workersFlag = (raw: string | true | undefined, accounts: number): ReadonlyArray<number> | undefined => {
  if (raw === undefined) return undefined
  const text = String(raw)
  const range = /^(\d+)\.\.(\d+)$/.exec(text)
  const counts = range !== null ? Array.from({ length: Math.max(0, Number(range[2]) - Number(range[1]) + 1) }, (_, i) => Number(range[1]) + i) : text.split(",").map((part) => (INT.test(part) ? Number(part) : Number.NaN))
  if (counts.length === 0 || counts.length > 16 || counts.some((n) => !isInteger(n) || n < 1 || n > accounts)) {
    throw new UsageError(`--workers must be a count, a list (1,2) or a range (1..2) of at most 16 counts, each from 1 to --accounts (${accounts}), not ${text}`)
  }
  return counts
}

/** `--report FILE`: the page is written after the run, so a directory that is not there is caught now. */
export const reportFlag = (raw: string | true | undefined): string | undefined => {
  if (raw === undefined) return undefined
  const file = String(raw)
  const dir = dirname(resolve(file))
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--report ${file}: the directory ${dir} does not exist`)
  return file
}

/**
 * Turns the command line into options (validated), or `"help"`.
 *
 * @example parseSimulateArgs(["--accounts", "3", "--events", "100", "--json"]) // { options: {...}, json: true }
 */
export const parseSimulateArgs = (
  args: ReadonlyArray<string>
): { readonly options: SimulateOptions; readonly json: boolean; readonly workers?: ReadonlyArray<number>; readonly report?: string } | "help" => {
  const flags = parseFlags(args, {
    accounts: "value",
    widgets: "value",
    rate: "value",
    duration: "value",
    events: "value",
    "state-every": "value",
    "to-device-every": "value",
    "turn-watchers": "value",
    encrypted: "switch",
    seed: "value",
    workers: "value",
    json: "switch",
    report: "value",
    help: "switch"
  })
  if (flags.help === true) return "help"
  if (flags.duration !== undefined && flags.events !== undefined) throw new UsageError("--duration and --events cannot be combined")
  const d = defaultSimulateOptions
  const options: SimulateOptions = {
    accounts: intFlag(flags, "accounts", d.accounts),
    widgets: intFlag(flags, "widgets", d.widgets),
    rate: numberFlag(flags, "rate", d.rate),
    until: flags.events !== undefined ? { events: intFlag(flags, "events", 0) } : { durationSeconds: numberFlag(flags, "duration", 10) },
    stateEvery: intFlag(flags, "state-every", d.stateEvery),
    toDeviceEvery: intFlag(flags, "to-device-every", d.toDeviceEvery),
    turnWatchers: numberFlag(flags, "turn-watchers", d.turnWatchers),
    encrypted: flags.encrypted === true,
    seed: intFlag(flags, "seed", d.seed)
  }
  checkOptions(options)
  const workers = workersFlag(flags.workers, options.accounts)
  const report = reportFlag(flags.report)
  if (report !== undefined && workers !== undefined && workers.length > 1) throw new UsageError("--report goes with one run: give --workers one count, not a scaling list")
  return { options, json: flags.json === true, ...(workers === undefined ? {} : { workers }), ...(report === undefined ? {} : { report }) }
}
