/**
 * What every scenario shares: settings (quick or full), warm-up and measured rounds with the
 * contestants interleaved, medians and percentiles, result rows, the one table, machine info.
 * Nothing here asserts a time: a target that does not hold is printed as "no", never thrown.
 * Model: nodejs/undici `benchmarks/_util/index.js` (`printResults`).
 */
import { spawnSync } from "node:child_process"
import events from "node:events"
import { cpus, totalmem } from "node:os"

/** How long to measure: `quick` while developing, `full` for `npm run bench`. */
export interface Settings {
  readonly quick: boolean
  readonly warmup: number
  readonly rounds: number
}

export const settingsFor = (quick: boolean): Settings => (quick ? { quick, warmup: 1, rounds: 3 } : { quick, warmup: 2, rounds: 5 })

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Nearest-rank percentile, `p` in 0..100. */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

/** Lets pending tasks (setImmediate, I/O callbacks) run; many rounds for promise chains. */
export const settle = async (rounds = 3): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** Resolves with `promise`, or rejects after `ms` with a message saying what did not happen. */
export const within = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export interface Contestant<A> {
  readonly name: string
  /** One measured round: returns its sample (a rate, a duration, …). */
  readonly round: () => Promise<A>
}

/**
 * Runs `warmup` then `rounds` rounds of every contestant, interleaved (A B C, B C A, C A B, …) so
 * that load from elsewhere on the machine, GC debt and JIT state hit all of them alike; returns
 * each contestant's measured samples.
 */
export const interleave = async <A>(settings: Settings, contestants: ReadonlyArray<Contestant<A>>): Promise<Map<string, A[]>> => {
  const samples = new Map(contestants.map((c) => [c.name, [] as A[]]))
  const total = settings.warmup + settings.rounds
  for (let r = 0; r < total; r++) {
    for (let i = 0; i < contestants.length; i++) {
      const contestant = contestants[(i + r) % contestants.length]!
      const sample = await contestant.round()
      if (r >= settings.warmup) samples.get(contestant.name)!.push(sample)
    }
  }
  return samples
}

/**
 * Keeps the contestants named in `names` (all when absent): `--engines widgethost` runs our
 * engine alone, e.g. under `node --cpu-prof`. Missing contestants' medians are NaN ("n/a").
 */
export const pick = <C extends { readonly name: string }>(all: ReadonlyArray<C>, names: ReadonlyArray<string> | undefined): C[] =>
  names === undefined ? [...all] : all.filter((c) => names.includes(c.name))

/** Whether bigger or smaller values are better; the ratio is always "how many times better ours is". */
export type Better = "higher" | "lower"

/** One line of the table: ours against one comparator, with the target when it has one. */
export interface Row {
  readonly scenario: string
  readonly metric: string
  readonly unit: string
  readonly ours: number
  /** The comparator's name and value, measured in the same run. */
  readonly against?: { readonly name: string; readonly value: number }
  readonly better: Better
  /** The target from issue #8: a minimum for the ratio (8 for "at least 8x") or for our value itself. */
  readonly target?:
    | { readonly text: string; readonly minRatio: number }
    | { readonly text: string; readonly minValue: number }
    | { readonly text: string; readonly maxValue: number }
  /** Free-form details kept in the JSON (samples, settings, percentiles). */
  readonly detail?: Readonly<Record<string, unknown>>
}

export const ratioOf = (row: Row): number | undefined => {
  if (row.against === undefined) return undefined
  const ratio = row.better === "higher" ? row.ours / row.against.value : row.against.value / row.ours
  return Number.isFinite(ratio) ? ratio : undefined
}

export const holds = (row: Row): boolean | undefined => {
  if (row.target === undefined) return undefined
  if ("minValue" in row.target) return row.ours >= row.target.minValue
  if ("maxValue" in row.target) return row.ours <= row.target.maxValue
  const ratio = ratioOf(row)
  return ratio === undefined ? undefined : ratio >= row.target.minRatio
}

const format = (value: number, unit: string): string => {
  if (!Number.isFinite(value)) return "n/a"
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(1)
  if (Math.abs(value) < 10 && !Number.isInteger(value)) return value.toFixed(2)
  return Math.round(value).toLocaleString("en-US")
}

/** The table: one line per row, columns padded; ratios are "ours is N× better". */
export const renderTable = (rows: ReadonlyArray<Row>): string => {
  const header = ["scenario", "metric", "widgethost", "comparator", "value", "ratio", "target", "holds"]
  const lines = rows.map((row) => {
    const ratio = ratioOf(row)
    const verdict = holds(row)
    return [
      row.scenario,
      `${row.metric} (${row.unit})`,
      format(row.ours, row.unit),
      row.against?.name ?? "",
      row.against === undefined ? "" : format(row.against.value, row.unit),
      ratio === undefined ? "" : `${ratio.toFixed(2)}x`,
      row.target?.text ?? "",
      verdict === undefined ? "" : verdict ? "yes" : "NO"
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const numeric = new Set([2, 4, 5])
  const render = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join("  ").trimEnd()
  return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(render)].join("\n")
}

/** Where the numbers came from: the machine, and the code measured (commit and uncommitted files). */
export const machineInfo = () => {
  const limit = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).stdout.trim()
  const git = (...args: string[]) => spawnSync("git", args, { encoding: "utf8" }).stdout?.replace(/\n+$/, "") ?? ""
  const list = cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpus: list.length,
    cpuModel: list[0]?.model ?? "unknown",
    memoryBytes: totalmem(),
    openFilesLimit: Number(limit) || limit,
    commit: git("rev-parse", "HEAD"),
    uncommitted: git("status", "--porcelain", "--untracked-files=no")
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => line.slice(3))
  }
}

/** Progress lines go to stderr, so stdout carries only the table. */
export const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`)

/**
 * matrix-widget-api logs every message it sends (`console.log` in `PostmessageTransport`) and
 * every approval. Printing that would measure the terminal, not the engine, so the console is a
 * no-op while the bench runs (the reference still builds each log line's template string). This
 * favours the reference: in a browser every logged object is also kept for the devtools.
 */
export const silenceConsole = (): (() => void) => {
  const saved = { log: console.log, debug: console.debug, info: console.info, warn: console.warn }
  const noop = () => {}
  console.log = noop
  console.debug = noop
  console.info = noop
  console.warn = noop
  return () => Object.assign(console, saved)
}

/**
 * Makes Node look enough like a browser for matrix-widget-api: `Promise.withResolvers` (which
 * Node 20 lacks), and no leak warning when a transport's AbortSignal gets more than 10 listeners
 * (one per request in flight; browsers have no such warning, Node prints one per signal).
 */
export const polyfill = (): void => {
  events.defaultMaxListeners = Number.POSITIVE_INFINITY
  const P = Promise as unknown as { withResolvers?: () => unknown }
  if (typeof P.withResolvers !== "function") {
    P.withResolvers = () => {
      let resolve!: (value: unknown) => void
      let reject!: (reason: unknown) => void
      const promise = new Promise((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  }
}
