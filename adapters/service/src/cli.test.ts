/**
 * The real `widgethost` command as a user runs it: `simulate` prints one parseable JSON report and
 * exits by itself; a bad flag is one line on stderr and exit code 2. (`serve` is exercised by the
 * interop suite's service-*.test.ts files.)
 */
import { spawn } from "node:child_process"
import { join } from "node:path"
import type { Report } from "@widgethost/simulator"
import { describe, expect, it } from "vitest"

const cli = join(import.meta.dirname, "cli.ts")

describe("widgethost simulate (the real command)", () => {
  const run = (args: ReadonlyArray<string>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      // The source condition: our packages resolve to their TypeScript, as in every dev run.
      const child = spawn(process.execPath, ["--conditions=@widgethost/source", "--import", "tsx", cli, "simulate", ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
      child.once("error", reject)
      child.once("exit", (code) => resolve({ code, stdout, stderr }))
    })

  it("prints one JSON report and exits by itself with 0", async () => {
    const { code, stdout, stderr } = await run(["--accounts", "2", "--widgets", "2", "--events", "20", "--json"])
    expect(stderr).toBe("") // not a terminal: no progress bar
    expect(code).toBe(0)
    const lines = stdout.trim().split("\n")
    expect(lines).toHaveLength(1)
    const report = JSON.parse(lines[0]!) as Report
    expect(report.errors.total).toBe(0)
    expect(report.messagesSent).toBe(20)
    expect(report.deliveries).toBe(80)
    expect(report.toDevice.received).toBe(report.toDevice.sent)
  }, 90_000)

  it("a bad flag: one line on stderr, exit 2, nothing on stdout", async () => {
    const { code, stdout, stderr } = await run(["--accounts", "0"])
    expect(code).toBe(2)
    expect(stdout).toBe("")
    expect(stderr).toBe("widgethost: --accounts must be an integer from 1 to 100\n")
  }, 60_000)
})
