/**
 * What every scenario shares: settings (quick or full), warm-up and measured rounds with the
 * contestants interleaved, medians and percentiles, result rows, the one table, machine info.
 * Nothing here asserts a time: a target that does not hold is printed as "no", never thrown.
 * Model: nodejs/undici `benchmarks/_util/index.js` (`printResults`).
 */
import { spawnSync } from "node:child_process"
import events from "node:events"
import { cpus, totalmem } from "node:os"
import type { Range, Spread, WarmUpRange } from "./spread.ts"

/**
 * How long to measure: `quick` while developing, `full` for `npm run bench`. Warm-up is adaptive
 * (see {@link interleave}): at least `warmup` rounds, then until the rolling median of the last
 * `stableWindow` rounds moves by less than `stableWithin` from one round to the next, at most
 * `warmupCap` rounds.
 */
export interface Settings {
  readonly quick: boolean
  readonly warmup: number
  readonly warmupCap: number
  readonly stableWindow: number
  readonly stableWithin: number
  readonly rounds: number
}

export const settingsFor = (quick: boolean): Settings =>
  quick ? { quick, warmup: 1, warmupCap: 8, stableWindow: 3, stableWithin: 0.02, rounds: 3 } : { quick, warmup: 2, warmupCap: 10, stableWindow: 3, stableWithin: 0.02, rounds: 5 }

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

export interface Contestant {
  readonly name: string
  /** One measured round: returns its sample (a rate, a duration, …). */
  readonly round: () => Promise<number>
}

/** How a contestant was warmed: the rounds discarded, and whether its median had settled by then. */
export interface WarmUp {
  readonly rounds: number
  readonly stable: boolean
}

/** Each contestant's measured samples, by name, in round order; and how each was warmed. */
export class Samples extends Map<string, number[]> {
  readonly warmups = new Map<string, WarmUp>()
}

/**
 * Whether a warm-up has settled: the rolling median of the last `stableWindow` samples, taken at
 * each of the last `stableWindow` rounds, stayed within `stableWithin` (relative) of its latest
 * value. One unchanged step is not enough: windows one round apart share all but one sample, so
 * their medians are often equal however noisy the rounds are.
 */
export const settled = (xs: ReadonlyArray<number>, settings: Pick<Settings, "stableWindow" | "stableWithin">): boolean => {
  const k = settings.stableWindow
  if (xs.length < 2 * k - 1) return false
  const rolling = Array.from({ length: k }, (_, i) => median(xs.slice(xs.length - k - i, xs.length - i)))
  const latest = rolling[0]!
  return rolling.every((m) => Math.abs(m - latest) <= settings.stableWithin * Math.abs(latest))
}

/**
 * Warms every contestant until its rolling median settles (at least `warmup`, at most
 * `warmupCap` rounds; a settled contestant sits out the rest of the warm-up), then runs `rounds`
 * measured rounds of every contestant, interleaved (A B C, B C A, C A B, …) so that load from
 * elsewhere on the machine, GC debt and JIT state hit all of them alike. Warm-up rounds are
 * interleaved the same way. Measured round `r` of every contestant ran in the same cycle, so
 * samples at the same index can be paired (a host-only cost is a round minus its own floor).
 */
export const interleave = async (settings: Settings, contestants: ReadonlyArray<Contestant>): Promise<Samples> => {
  const samples = new Samples(contestants.map((c) => [c.name, [] as number[]]))
  const warm = new Map(contestants.map((c) => [c.name, [] as number[]]))
  const minimum = Math.max(settings.warmup, 0)
  const cap = Math.max(settings.warmupCap, minimum)
  const done = (name: string) => samples.warmups.has(name)
  for (let r = 0; contestants.some((c) => !done(c.name)); r++) {
    for (let i = 0; i < contestants.length; i++) {
      const contestant = contestants[(i + r) % contestants.length]!
      if (done(contestant.name)) continue
      const xs = warm.get(contestant.name)!
      if (xs.length >= cap) {
        samples.warmups.set(contestant.name, { rounds: xs.length, stable: cap === 0 })
        continue
      }
      xs.push(await contestant.round())
      if (xs.length >= minimum && settled(xs, settings)) samples.warmups.set(contestant.name, { rounds: xs.length, stable: true })
    }
  }
  for (let r = 0; r < settings.rounds; r++) {
    for (let i = 0; i < contestants.length; i++) {
      const contestant = contestants[(i + r) % contestants.length]!
      samples.get(contestant.name)!.push(await contestant.round())
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

/** One line of the table: ours against one comparator, with the issue's target when it has one. */
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
  /** Warm-up rounds discarded for ours and for the comparator (see {@link interleave}). */
  readonly warmup?: { readonly ours?: WarmUp; readonly against?: WarmUp }
  /** Free-form details kept in the JSON (samples, settings, percentiles). */
  readonly detail?: Readonly<Record<string, unknown>>
  /** A row combined from several runs (`--runs`, see spread.ts): its values are the runs' medians. */
  readonly spread?: Spread
}

/** The warm-up of the contestants named `ours` and `against` in `samples`, for a row. */
export const warmupOf = (samples: Samples, ours: string, against?: string): NonNullable<Row["warmup"]> => {
  const o = samples.warmups.get(ours)
  const a = against === undefined ? undefined : samples.warmups.get(against)
  return { ...(o === undefined ? {} : { ours: o }), ...(a === undefined ? {} : { against: a }) }
}

/** How many times better ours is; for a row of several runs, the median of the runs' ratios. */
export const ratioOf = (row: Row): number | undefined => {
  if (row.against === undefined) return undefined
  if (row.spread !== undefined) return row.spread.ratio?.median
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
  if (unit === "ms" || unit === "µs") return Math.abs(value) < 10 ? value.toFixed(2) : value.toFixed(1)
  if (Math.abs(value) < 10 && !Number.isInteger(value)) return value.toFixed(2)
  return Math.round(value).toLocaleString("en-US")
}

const warmText = (w: WarmUp | undefined) => (w === undefined ? "-" : `${w.rounds}${w.stable ? "" : "*"}`)

const warmRangeText = (w: WarmUpRange | undefined) => (w === undefined ? "-" : `${w.min === w.max ? w.min : `${w.min}-${w.max}`}${w.stable ? "" : "*"}`)

/**
 * `median (min-max)` over the runs; "to" instead of the dash when a bound is negative (a
 * host-only difference can be), and the count when fewer runs measured the row than were combined.
 */
const rangeText = (median: string, range: Range | null | undefined, show: (x: number) => string, spread: Spread): string => {
  if (range === undefined || range === null) return median
  const [lo, hi] = [show(range.min), show(range.max)]
  const fewer = spread.runs < spread.of ? `, ${spread.runs} of ${spread.of} runs` : ""
  return `${median} (${lo}${lo.startsWith("-") || hi.startsWith("-") ? " to " : "-"}${hi}${fewer})`
}

/**
 * The table: one line per row, columns padded; ratios are "ours is N× better". "warm-up" is the
 * rounds discarded for ours / for the comparator; `*` marks a warm-up that hit its cap unsettled.
 * Rows of several runs show each value and ratio as `median (min-max)` over the runs, and the
 * warm-up as the range of rounds (`*` when any run's hit its cap).
 */
export const renderTable = (rows: ReadonlyArray<Row>): string => {
  const header = ["scenario", "metric", "widgethost", "comparator", "value", "ratio", "target", "holds", "warm-up"]
  const lines = rows.map((row) => {
    const ratio = ratioOf(row)
    const verdict = holds(row)
    const spread = row.spread
    const value = (x: number) => format(x, row.unit)
    const times = (x: number) => `${x.toFixed(2)}x`
    const ranged = (median: string, range: Range | null | undefined) => (spread === undefined ? median : rangeText(median, range, value, spread))
    const warm = spread?.warmup !== undefined ? `${warmRangeText(spread.warmup.ours)}/${warmRangeText(spread.warmup.against)}` : row.warmup === undefined ? "" : `${warmText(row.warmup.ours)}/${warmText(row.warmup.against)}`
    return [
      row.scenario,
      `${row.metric} (${row.unit})`,
      ranged(value(row.ours), spread?.ours),
      row.against?.name ?? "",
      row.against === undefined ? "" : ranged(value(row.against.value), spread?.against),
      ratio === undefined ? "" : spread === undefined ? times(ratio) : rangeText(times(ratio), spread.ratio, (x) => x.toFixed(2), spread),
      row.target?.text ?? "",
      verdict === undefined ? "" : verdict ? "yes" : "NO",
      warm
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
