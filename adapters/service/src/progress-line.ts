import type { LoadProgress } from "@widgethost/homeserver-client"

/**
 * The progress line on stderr for the long work of a start (the crypto store's load, the first
 * sync of a large account). On a terminal it is one line rewritten in place (`\r`, then "erase to
 * the end of the line"), never wider than the terminal so it cannot wrap, at most every
 * `intervalMs`; each task ends with its final line and a newline. Log lines written meanwhile go
 * through {@link ProgressLine.interrupt}, which clears the line, writes them, and draws it again.
 * Not on a terminal (a log file, a collector, `--json`) nothing is drawn: `\r` would be noise
 * there; each task's final line goes to `finished` (the service logs it) instead.
 */

/** What the line writes to: `process.stderr`, or a test's recorder. */
export interface ProgressStream {
  readonly isTTY?: boolean
  readonly columns?: number
  write(text: string): unknown
}

const TASK_NAMES: Readonly<Record<LoadProgress["task"], string>> = { "crypto-store": "crypto store", "first-sync": "first sync" }
const BAR_WIDTH = 20
const ERASE_TO_END = "\x1b[K"

export const formatDuration = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`)

const count = (n: number) => n.toLocaleString("en-US")

/** Cut to `columns - 1` characters (the last column would make some terminals wrap), with an ellipsis; uncut when the width is unknown. */
const fit = (line: string, columns: number | undefined): string => {
  if (columns === undefined) return line
  const max = Math.max(10, columns - 1)
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`
}

/**
 * One state of the line, without terminal codes.
 *
 * @example
 * formatProgress({ task: "crypto-store", step: "restoring records", done: 1200, total: 4800, unit: "records", finished: false }, 1234)
 * // "crypto store: restoring records 1,200/4,800 records  25% [#####...............] 1.2 s"
 */
export const formatProgress = (p: LoadProgress, elapsedMs: number, columns?: number): string => {
  const name = TASK_NAMES[p.task]
  if (p.finished) return fit(`${name}: done${p.total > 0 ? `, ${count(p.total)} ${p.unit}` : ""} in ${formatDuration(elapsedMs)}`, columns)
  if (p.total <= 0) return fit(`${name}: ${p.step}… ${formatDuration(elapsedMs)}`, columns)
  const share = Math.min(1, Math.max(0, p.done / p.total))
  const filled = Math.round(share * BAR_WIDTH)
  const percent = `${Math.floor(share * 100)}%`.padStart(4)
  return fit(`${name}: ${p.step} ${count(p.done)}/${count(p.total)} ${p.unit} ${percent} [${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${formatDuration(elapsedMs)}`, columns)
}

export interface ProgressLineOptions {
  readonly now?: () => number
  /** Least time between two redraws of the same task; default 100 ms. */
  readonly intervalMs?: number
  /** Not on a terminal: each task's final line, to log. */
  readonly finished?: (line: string) => void
}

export class ProgressLine {
  private readonly now: () => number
  private readonly intervalMs: number
  private readonly started = new Map<LoadProgress["task"], number>()
  /** The line on screen now (without codes); undefined when none is. */
  private shown: string | undefined
  private last: { readonly progress: LoadProgress; readonly at: number } | undefined

  constructor(
    private readonly stream: ProgressStream,
    private readonly options: ProgressLineOptions = {}
  ) {
    this.now = options.now ?? Date.now
    this.intervalMs = options.intervalMs ?? 100
  }

  get tty(): boolean {
    return this.stream.isTTY === true
  }

  /** For `connectHomeserver`'s `onProgress`. */
  readonly update = (p: LoadProgress): void => {
    const now = this.now()
    const start = this.started.get(p.task) ?? now
    this.started.set(p.task, start)
    // A terminal that does not say its width (0 under some ptys) gets 80: a wrapped line cannot be rewritten.
    const columns = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : 80
    const line = formatProgress(p, now - start, this.tty ? columns : undefined)
    if (p.finished) {
      this.started.delete(p.task)
      this.last = undefined
      if (!this.tty) return this.options.finished?.(line)
      this.stream.write(`\r${line}${ERASE_TO_END}\n`)
      this.shown = undefined
      return
    }
    if (!this.tty) return
    // A new step or task draws at once; counting within one step at most every intervalMs.
    const sameStep = this.last !== undefined && this.last.progress.task === p.task && this.last.progress.step === p.step
    if (sameStep && now - this.last!.at < this.intervalMs) return
    this.last = { progress: p, at: now }
    this.stream.write(`\r${line}${ERASE_TO_END}`)
    this.shown = line
  }

  /** Writes `text` (whole lines) without tearing the progress line: cleared, `text`, drawn again. */
  readonly interrupt = (text: string): void => {
    if (this.shown === undefined) return void this.stream.write(text)
    this.stream.write(`\r${ERASE_TO_END}${text}\r${this.shown}${ERASE_TO_END}`)
  }

  /** Clears a line left unfinished (a start that failed), so what follows starts on a clean line. */
  clear(): void {
    if (this.shown === undefined) return
    this.stream.write(`\r${ERASE_TO_END}`)
    this.shown = undefined
    this.last = undefined
  }
}
