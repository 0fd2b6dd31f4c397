/**
 * `widgethost users add NAME`: creates an account on the running service's embedded homeserver
 * and joins it to the demo room, so a second person (or a second browser) can talk to the demo
 * widgets at once. It reads where the homeserver listens and its registration token from the
 * data directory's `service.json`, and registers over plain client-server HTTP with the
 * `m.login.registration_token` stage (or `m.login.dummy` with open registration), as any Matrix
 * client would. stdout: one JSON line `{ user_id, access_token, device_id, password, homeserver,
 * joined }`; a sentence on how to sign in goes to stderr.
 */
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join, resolve } from "node:path"
// The flag parser alone: the simulator's barrel would load the homeserver client and its crypto.
import { parseFlags, UsageError } from "@widgethost/simulator/cli-flags"

export const usersUsage = `usage: widgethost users add NAME [--password PASSWORD] [--data-dir DIR]

Creates @NAME on the embedded homeserver of the service running with DIR (default .widgethost)
and joins it to the demo room. Prints { user_id, access_token, device_id, password, homeserver,
joined } as one JSON line.
`

/** The user can fix it: one line on stderr, exit 2. */
export class UsersError extends Error {
  override readonly name = "UsersError"
}

export interface AddedUser {
  readonly user_id: string
  readonly access_token: string
  readonly device_id: string
  readonly password: string
  readonly homeserver: string
  /** The demo room it joined, or null (no demo room in this data directory). */
  readonly joined: string | null
}

interface KeptState {
  readonly homeserverPort?: number
  readonly registrationToken?: string
  readonly demoRoom?: string
}

const readState = (dataDir: string): KeptState => {
  const file = join(resolve(dataDir), "service.json")
  try {
    return JSON.parse(readFileSync(file, "utf8")) as KeptState
  } catch (error) {
    throw new UsersError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? "not JSON"}): start the service with this data directory first (npm start)`)
  }
}

/**
 * Registers `username` and joins the demo room.
 *
 * @example const bob = await addUser({ dataDir: ".widgethost", username: "bob" })
 */
export const addUser = async (options: { readonly dataDir: string; readonly username: string; readonly password?: string }): Promise<AddedUser> => {
  const state = readState(options.dataDir)
  if (state.homeserverPort === undefined) throw new UsersError("this data directory has no embedded homeserver (the service runs with a homeserver of its own): create accounts there")
  const homeserver = `http://127.0.0.1:${state.homeserverPort}`
  const password = options.password ?? randomBytes(18).toString("base64url")
  const call = async (method: string, path: string, body: unknown, accessToken?: string) => {
    let response: Response
    try {
      response = await fetch(`${homeserver}/_matrix/client/v3${path}`, {
        method,
        headers: { "content-type": "application/json", ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }) },
        body: JSON.stringify(body)
      })
    } catch {
      throw new UsersError(`the embedded homeserver at ${homeserver} does not answer: is the service running with this data directory? (npm start)`)
    }
    return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, unknown> }
  }

  // User-interactive auth: the first answer lists the flows; follow the one stage we can do at a time.
  const base = { username: options.username, password, initial_device_display_name: "widgethost users add" }
  let answer = await call("POST", "/register", base)
  for (let round = 0; answer.status === 401 && Array.isArray(answer.body.flows) && round < 3; round++) {
    const completed = new Set(Array.isArray(answer.body.completed) ? (answer.body.completed as Array<string>) : [])
    const stages = (answer.body.flows as Array<{ stages?: Array<string> }>).flatMap((flow) => flow.stages ?? [])
    const stage = stages.find((s) => !completed.has(s) && (s === "m.login.dummy" || (s === "m.login.registration_token" && state.registrationToken !== undefined)))
    if (stage === undefined) throw new UsersError(`the homeserver asks for a registration flow this command cannot follow: ${JSON.stringify(answer.body.flows)}`)
    const session = typeof answer.body.session === "string" ? { session: answer.body.session } : {}
    answer = await call("POST", "/register", { ...base, auth: stage === "m.login.dummy" ? { type: stage, ...session } : { type: stage, token: state.registrationToken, ...session } })
  }
  if (answer.status !== 200) {
    const why = answer.body.errcode === "M_USER_IN_USE" ? `the name ${options.username} is taken` : `${String(answer.body.errcode)}: ${String(answer.body.error)}`
    throw new UsersError(`cannot create ${options.username}: ${why}`)
  }
  const accessToken = String(answer.body.access_token)
  let joined: string | null = null
  if (state.demoRoom !== undefined) {
    const join = await call("POST", `/join/${encodeURIComponent(state.demoRoom)}`, {}, accessToken)
    if (join.status !== 200) throw new UsersError(`created ${String(answer.body.user_id)}, but it could not join the demo room: ${String(join.body.errcode)} ${String(join.body.error)}`)
    joined = state.demoRoom
  }
  return { user_id: String(answer.body.user_id), access_token: accessToken, device_id: String(answer.body.device_id), password, homeserver, joined }
}

/** `widgethost users …`; returns the exit code. */
export const runUsers = async (args: ReadonlyArray<string>): Promise<number> => {
  const [verb, name, ...rest] = args
  if (verb === "--help" || verb === "-h" || verb === "help") {
    process.stdout.write(usersUsage)
    return 0
  }
  if (verb !== "add") throw new UsageError(`users: unknown subcommand ${verb ?? "(none)"}\n${usersUsage}`)
  if (name === undefined || name.startsWith("--")) throw new UsageError(`users add: a NAME is needed\n${usersUsage}`)
  const flags = parseFlags(rest, { password: "value", "data-dir": "value" })
  const user = await addUser({
    dataDir: typeof flags["data-dir"] === "string" ? flags["data-dir"] : ".widgethost",
    username: name,
    ...(typeof flags.password === "string" ? { password: flags.password } : {})
  })
  process.stdout.write(`${JSON.stringify(user)}\n`)
  process.stderr.write(
    `widgethost: created ${user.user_id}${user.joined === null ? "" : " in the demo room"}; sign in with any Matrix client at ${user.homeserver} as ${user.user_id} with that password, or use the access token\n`
  )
  return 0
}
