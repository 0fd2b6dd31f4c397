#!/usr/bin/env node
/**
 * The `widgethost` command: `serve` (the main job), `users add` (an account on the embedded
 * homeserver), `simulate` (a headless workload) and `conform` (model-based conformance of other
 * hosts and widgets, `conform/`).
 * Every usage or startup problem is one clear line on stderr and exit code 2, with nothing left
 * half-started; stdout carries only machine-readable output (the ready line, reports).
 */
// Only light modules load up front: each command imports its own (the simulator, the homeserver
// client and its crypto cost seconds), so `--help`, a usage error or `users add` start quickly.
import { parseFlags, UsageError } from "@widgethost/simulator/cli-flags"
import type { ServiceConfig } from "./config.ts"
import { heldLogger, makeLogger } from "./log.ts"
import { ProgressLine } from "./progress-line.ts"

const usage = `usage: widgethost <command> [options]

commands:
  serve       host the widgets of a Matrix account (embedded homeserver when none is configured)
  users add   create an account on the running service's embedded homeserver (in the demo room)
  simulate    run a headless simulation on the embedded homeserver and print a report
  conform     check a Widget API host or widget against widgethost's session chart

serve options:
  --config FILE     configuration file (JSON; see README)
  --data-dir DIR    data directory (default .widgethost; overrides the configuration)
  --json            structured JSON logs on stderr
  --log-content     show message contents and secrets (event bodies, tokens, TURN passwords)
                    in the console's message log and the logs; hidden by default

users options:      see \`widgethost users --help\`
simulate options:   see \`widgethost simulate --help\`
conform options:    see \`widgethost conform --help\`
`

const fail = (message: string): never => {
  process.stderr.write(`widgethost: ${message}\n`)
  process.exit(2)
}

const runServe = async (args: ReadonlyArray<string>) => {
  const flags = parseFlags(args, { config: "value", "data-dir": "value", json: "switch", "log-content": "switch", help: "switch" })
  if (flags.help === true) return void process.stdout.write(usage)
  const { ConfigError, loadConfig } = await import("./config.ts")
  let config: ServiceConfig
  try {
    config = loadConfig(typeof flags.config === "string" ? flags.config : undefined)
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message)
    throw error
  }
  if (typeof flags["data-dir"] === "string") config = { ...config, dataDir: flags["data-dir"] }
  if (flags["log-content"] === true) config = { ...config, logContent: true }
  // The crypto store's load and the first sync draw a progress line on a terminal (progress-line.ts);
  // log lines go around it. Elsewhere each task's final line is logged.
  const progress = new ProgressLine(process.stderr, { finished: (line) => log("info", line) })
  const log = heldLogger(makeLogger({ json: flags.json === true, quiet: true, logContent: config.logContent, write: progress.interrupt }))
  // Signal handlers go in before anything starts: a SIGTERM that arrives while starting (or the
  // instant the ready line is out) must still stop everything cleanly.
  let service: Awaited<ReturnType<typeof import("./serve.ts")["serve"]>> | undefined
  let stopping: string | undefined
  const stop = (signal: string) => {
    if (stopping !== undefined) return
    stopping = signal
    if (service === undefined) return // startup finishes first, then stops
    log("info", "stopping", { signal })
    service.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log("error", "stop failed", { error: String(error) })
        process.exit(1)
      }
    )
  }
  process.on("SIGINT", () => stop("SIGINT"))
  process.on("SIGTERM", () => stop("SIGTERM"))

  const { serve, StartupError } = await import("./serve.ts")
  try {
    service = await serve(config, log, { onProgress: progress.update })
  } catch (error) {
    progress.clear()
    log.discard()
    if (error instanceof StartupError) return fail(error.message)
    throw error
  }
  process.stdout.write(`${JSON.stringify(service.ready)}\n`)
  log.release()
  log("info", "ready", { admin: service.ready.ready.admin_url, widgets: service.ready.ready.widgets.length })
  // The links a new user opens first: the console and the demo widgets (a browser, nothing else
  // needed). They carry secrets (the admin token, widget tokens), so only to a terminal: log files
  // and collectors get the ready line's fields, not the links.
  const { demo, admin_url, admin_token } = service.ready.ready
  if (demo !== undefined && process.stderr.isTTY) {
    log("info", `console: ${admin_url}/?token=${encodeURIComponent(admin_token)}`)
    for (const [name, url] of Object.entries(demo)) log("info", `demo ${name} widget: ${url}`)
  }
  if (stopping !== undefined) {
    const signal = stopping
    stopping = undefined
    stop(signal)
  }
}

const main = async () => {
  const [command, ...rest] = process.argv.slice(2)
  try {
    switch (command) {
      case "serve":
        return await runServe(rest)
      case "users": {
        const { runUsers, UsersError } = await import("./users-cli.ts")
        try {
          process.exitCode = await runUsers(rest)
        } catch (error) {
          if (error instanceof UsersError) return fail(error.message)
          throw error
        }
        return
      }
      case "simulate": {
        const { runSimulate } = await import("@widgethost/simulator")
        return await runSimulate(rest)
      }
      case "conform": {
        const { runConform } = await import("./conform/conform-cli.ts")
        process.exitCode = await runConform(rest)
        return
      }
      case "--help":
      case "-h":
      case "help":
        return void process.stdout.write(usage)
      case undefined:
        return fail(`a command is needed\n${usage}`)
      default:
        return fail(`unknown command ${command}\n${usage}`)
    }
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message)
    throw error
  }
}

void main()
