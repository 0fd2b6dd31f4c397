/**
 * The reference with its logging on, the way Element Web runs it: its rageshake `ConsoleLogger`
 * (element-web `src/rageshake/rageshake.ts`) replaces `console.log/info/warn/error/debug` with a
 * function that formats every argument into one line (`<ISO time> <level> <args joined by " ">`,
 * objects through `JSON.stringify` with a circular-reference guard, errors as message and stack,
 * access tokens masked) and appends it to an in-memory buffer that is flushed to IndexedDB every
 * 30 s. Here the buffer is bounded instead (emptied when it passes {@link LOG_BUFFER_CHARS}, as a
 * flush would), and the original console function, which a browser's devtools would get, is a
 * no-op as in the logging-off rows.
 *
 * matrix-widget-api logs one line per message its transport sends (a delivery, a reply) and a
 * few per negotiation. The widget side of the end-to-end rows is matrix-widget-api too, but in a
 * browser it runs in the iframe's own realm, whose console Element does not hook: its lines
 * (sent to the host's origin) are dropped before any formatting by `fromOtherRealm`.
 */

/** Rageshake keeps at most 5 MB of logs per flush; the same bound, in characters. */
export const LOG_BUFFER_CHARS = 5 * 1024 * 1024

const LEVELS = { log: "I", info: "I", warn: "W", error: "E", debug: "D" } as const
type Method = keyof typeof LEVELS

/** `JSON.stringify`'s replacer that drops an object it has already seen, as rageshake's does. */
const circularReplacer = () => {
  const seen = new WeakSet<object>()
  return (_key: string, value: unknown) => {
    if (typeof value === "object" && value !== null) {
      if (seen.has(value)) return undefined
      seen.add(value)
    }
    return value
  }
}

const formatArg = (arg: unknown): unknown => {
  if (arg instanceof Error) return arg.message + (arg.stack === undefined ? "" : `\n${arg.stack}`)
  if (typeof arg === "object") return JSON.stringify(arg, circularReplacer())
  return arg
}

export interface ConsoleLog {
  /** Lines formatted since the hook went in (kept across flushes). */
  readonly lines: () => number
  /** What the buffer holds now. */
  readonly buffered: () => string
  /** Puts the hook on the console; returns the function that puts back what was there. */
  readonly install: () => () => void
}

/**
 * A rageshake-style console logger. `fromOtherRealm` sees a call's first argument and says
 * whether the line belongs to another window's console (it is then dropped unformatted).
 */
export const rageshakeConsole = (fromOtherRealm: (first: unknown) => boolean = () => false): ConsoleLog => {
  let buffer = ""
  let lines = 0
  const log = (level: string, args: unknown[]) => {
    const line = `${new Date().toISOString()} ${level} ${args.map(formatArg).join(" ")}\n`.replace(/token=[a-zA-Z0-9-]+/gm, "token=xxxxx")
    buffer = buffer.length + line.length > LOG_BUFFER_CHARS ? line : buffer + line
    lines++
  }
  const hooked = Object.fromEntries(
    (Object.keys(LEVELS) as Method[]).map((method) => [
      method,
      (...args: unknown[]) => {
        if (fromOtherRealm(args[0])) return
        log(LEVELS[method], args)
      }
    ])
  ) as Record<Method, (...args: unknown[]) => void>
  return {
    lines: () => lines,
    buffered: () => buffer,
    install: () => {
      const saved = { log: console.log, info: console.info, warn: console.warn, error: console.error, debug: console.debug }
      Object.assign(console, hooked)
      return () => void Object.assign(console, saved)
    }
  }
}

/** `round` with `logger` on the console for its duration (rounds run one at a time). */
export const withLogging =
  <A>(logger: ConsoleLog, round: () => Promise<A>) =>
  async (): Promise<A> => {
    const restore = logger.install()
    try {
      return await round()
    } finally {
      restore()
    }
  }
