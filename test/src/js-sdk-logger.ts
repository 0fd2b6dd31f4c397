import type { Logger } from "matrix-js-sdk/lib/logger.js"

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
