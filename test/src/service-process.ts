/**
 * `widgethost serve` as a child process for end-to-end tests: started as one node process (not
 * the tsx wrapper, which would leave its child behind when killed), its ready line parsed, its
 * output kept for failure messages. Plus the client-side bits those tests share: registering a
 * user by following the homeserver's interactive-auth flows, and a free port.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { join } from "node:path"
import type { ReadyLine } from "@widgethost/service"

const root = join(import.meta.dirname, "..", "..")

export type { ReadyLine }

export interface ServiceProcess {
  readonly child: ChildProcess
  /** The first stdout line; rejects if the process exits before printing it. */
  readonly ready: Promise<ReadyLine>
  readonly exited: Promise<number | null>
  readonly output: () => { readonly stdout: string; readonly stderr: string }
  /** SIGKILL (if still running) and wait for the exit. */
  readonly kill: () => Promise<void>
}

/**
 * Spawns `node --conditions=@widgethost/source --import tsx adapters/service/src/cli.ts ...args`
 * (the condition makes our packages resolve to their TypeScript sources).
 *
 * @example const service = startService(["serve", "--data-dir", dir]); const { ready } = await service.ready
 */
export const startService = (args: ReadonlyArray<string>): ServiceProcess => {
  const child = spawn(process.execPath, ["--conditions=@widgethost/source", "--import", "tsx", join(root, "adapters/service/src/cli.ts"), ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const ready = new Promise<ReadyLine>((resolve, reject) => {
    const check = () => {
      if (stdout.includes("\n")) resolve(JSON.parse(stdout.split("\n")[0]!) as ReadyLine)
    }
    child.stdout.on("data", check)
    void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  ready.catch(() => {}) // awaited only by tests that expect a start
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL")
      await exited
    }
  }
  return { child, ready, exited, output: () => ({ stdout, stderr }), kill }
}

export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })

/**
 * Registers `localpart` over plain client-server HTTP, following the flow the server offers
 * (`m.login.dummy`, or `m.login.registration_token` when `registrationToken` is given).
 *
 * @example const bob = await registerUser(homeserver, "bob", "bob-secret-1")
 */
export const registerUser = async (
  baseUrl: string,
  localpart: string,
  password: string,
  options: { readonly registrationToken?: string } = {}
): Promise<{ readonly userId: string; readonly accessToken: string; readonly deviceId: string }> => {
  const post = async (body: object) => {
    const response = await fetch(`${baseUrl}/_matrix/client/v3/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }
  const base = { username: localpart, password }
  let answer = await post(base)
  for (let round = 0; answer.status === 401 && round < 3; round++) {
    const session = typeof answer.body.session === "string" ? { session: answer.body.session } : {}
    const flows = (answer.body.flows as Array<{ stages: Array<string> }> | undefined) ?? []
    const completed = new Set((answer.body.completed as Array<string> | undefined) ?? [])
    const stage = flows.flatMap((f) => f.stages).find((s) => !completed.has(s) && (s === "m.login.dummy" || (s === "m.login.registration_token" && options.registrationToken !== undefined)))
    if (stage === undefined) throw new Error(`register ${localpart}: no flow this helper can follow: ${JSON.stringify(flows)}`)
    const auth = stage === "m.login.dummy" ? { type: stage, ...session } : { type: stage, token: options.registrationToken, ...session }
    answer = await post({ ...base, auth })
  }
  if (answer.status !== 200) throw new Error(`register ${localpart}: ${answer.status} ${JSON.stringify(answer.body)}`)
  return { userId: String(answer.body.user_id), accessToken: String(answer.body.access_token), deviceId: String(answer.body.device_id) }
}

/** Runs the widgethost command to its end (as `startService` spawns it) and gives its exit code and output. */
export const runCli = (args: ReadonlyArray<string>): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--conditions=@widgethost/source", "--import", "tsx", join(root, "adapters/service/src/cli.ts"), ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.once("exit", (code) => resolve({ code, stdout, stderr }))
  })
