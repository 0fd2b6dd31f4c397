import type { Logger } from "matrix-js-sdk/lib/logger.js"
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js"
import { afterAll, beforeAll, vi } from "vitest"

/** Collects the SDK's warnings and errors instead of printing them, so a failure can show them. */
export const quietLogger = (sink: Array<string>): Logger => {
  const logger: Logger = {
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (...msg: Array<unknown>) => sink.push(`warn: ${msg.map(String).join(" ")}`),
    error: (...msg: Array<unknown>) => sink.push(`error: ${msg.map(String).join(" ")}`),
    getChild: () => logger
  }
  return logger
}

/**
 * For a test file that runs matrix-js-sdk clients: their global and module loggers are silenced
 * and the Rust crypto's tracing (which the SDK sends straight to the console) goes into `sink`,
 * for the file to show when a test fails.
 */
export const silenceJsSdk = (sink: Array<string>): void => {
  type Level = Parameters<typeof sdkGlobalLogger.setLevel>[0]
  const loggers = [sdkGlobalLogger, sdkGlobalLogger.withPrefix("MatrixRTCSessionManager")]
  const consoleMethods = ["log", "debug", "info", "warn"] as const
  let levels: Array<number> = []
  beforeAll(() => {
    levels = loggers.map((l) => l.getLevel())
    for (const l of loggers) l.setLevel("silent", false)
    for (const m of consoleMethods) vi.spyOn(console, m).mockImplementation((...args: Array<unknown>) => void sink.push(`${m}: ${args.map(String).join(" ")}`))
  })
  afterAll(() => {
    loggers.forEach((l, i) => l.setLevel(levels[i] as Level, false))
    vi.restoreAllMocks()
  })
}
