import { redactFields } from "./log-redaction.ts"

/**
 * Structured logs on stderr: one JSON object per line with `--json`, readable text otherwise.
 * stdout is reserved for the machine-readable ready line.
 */
export type Level = "debug" | "info" | "warn" | "error"
export type Logger = (level: Level, message: string, fields?: Readonly<Record<string, unknown>>) => void

/**
 * Holds log lines back until `release()`: a start that fails then prints only its one-line error,
 * not the chatter of the half-start before it; `discard()` drops what was held.
 */
export const heldLogger = (inner: Logger): Logger & { release(): void; discard(): void } => {
  let held: Array<Parameters<Logger>> | undefined = []
  const log = ((...args: Parameters<Logger>) => (held === undefined ? inner(...args) : void held.push(args))) as Logger & { release(): void; discard(): void }
  log.release = () => {
    const lines = held ?? []
    held = undefined
    for (const args of lines) inner(...args)
  }
  log.discard = () => {
    held = undefined
  }
  return log
}

/**
 * Fields carry what comes from elsewhere (errors, URLs, messages) and are redacted, their strings
 * scrubbed too; the message is the service's own words, which on a terminal may carry a secret on
 * purpose (the console link with its token, cli.ts), so it is written as it is.
 *
 * `logContent`: keep message contents and secrets in the fields (default false: they are
 * replaced by their size or a marker, log-redaction.ts), since log files travel further than the console.
 */
export const makeLogger = (options: { json: boolean; write?: (line: string) => void; quiet?: boolean; logContent?: boolean }): Logger => {
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  return (level, message, rawFields = {}) => {
    if (options.quiet === true && level === "debug") return
    const fields = options.logContent === true ? rawFields : redactFields(rawFields)

    const time = new Date().toISOString()
    if (options.json) write(`${JSON.stringify({ time, level, message, ...fields })}\n`)
    else {
      const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")
      write(`${time} ${level.padEnd(5)} ${message}${extra === "" ? "" : ` ${extra}`}\n`)
    }
  }
}
