/**
 * The `simulate --scenario FILE` format (YAML or JSON): accounts, rooms, widgets with behaviours,
 * and a timeline. Decoded strictly with effect Schema (no unknown keys); a bad file is one
 * `UsageError` naming the file and the path of the bad field. Cross-references (a widget naming
 * an account or room that does not exist) are checked after the shape, with the same kind of path.
 */
import { readFileSync } from "node:fs"
import { Schema } from "effect"
import { parse as parseYaml } from "yaml"
import { UsageError } from "./cli-flags.ts"

const Name = Schema.String.check(Schema.isPattern(/^[a-z][a-z0-9-]{0,31}$/))
const Positive = Schema.Number.check(Schema.isGreaterThan(0))
const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

const Room = Schema.Struct({ name: Name, encrypted: Schema.optional(Schema.Boolean), members: Schema.Array(Name) })

const Widget = Schema.Union([
  Schema.Struct({ name: Name, account: Name, room: Name, behaviour: Schema.Literal("chatty"), rate: Positive }),
  Schema.Struct({ name: Name, account: Name, room: Name, behaviour: Schema.Literal("reader"), pageSize: Count, everySeconds: Positive }),
  Schema.Struct({ name: Name, account: Name, room: Name, behaviour: Schema.Literal("call"), peer: Name, everySeconds: Positive }),
  Schema.Struct({ name: Name, account: Name, room: Name, behaviour: Schema.Literal("misbehaving"), junk: Count, flood: Count })
])

const Step = Schema.Union([
  Schema.Struct({ at: Schema.Number, join: Schema.Struct({ account: Name, room: Name }) }),
  Schema.Struct({ at: Schema.Number, leave: Schema.Struct({ account: Name, room: Name }) }),
  Schema.Struct({ at: Schema.Number, reconnect: Schema.Array(Name) }),
  Schema.Struct({ at: Schema.Number, outage: Schema.Struct({ mode: Schema.Literals(["refuse", "stall"]), seconds: Positive }) })
])

export const Scenario = Schema.Struct({
  durationSeconds: Positive,
  /** Per-socket flood limit of the websocket transport (messages a second). */
  rateLimit: Schema.optional(Count),
  accounts: Schema.Array(Name),
  rooms: Schema.Array(Room),
  widgets: Schema.Array(Widget),
  timeline: Schema.optional(Schema.Array(Step))
})
export type Scenario = typeof Scenario.Type
export type ScenarioWidget = Scenario["widgets"][number]
export type ScenarioStep = NonNullable<Scenario["timeline"]>[number]

/** Checks what the shape cannot: names unique, references resolve, steps inside the run. */
const crossCheck = (s: Scenario): string | undefined => {
  const dup = (names: ReadonlyArray<string>) => names.find((n, i) => names.indexOf(n) !== i)
  const accounts = new Set(s.accounts)
  const rooms = new Map(s.rooms.map((r) => [r.name, r]))
  const widgets = new Map(s.widgets.map((w) => [w.name, w]))
  if (dup(s.accounts) !== undefined) return `at ["accounts"]: ${dup(s.accounts)} is named twice`
  if (dup(s.rooms.map((r) => r.name)) !== undefined) return `at ["rooms"]: room ${dup(s.rooms.map((r) => r.name))} is named twice`
  if (dup(s.widgets.map((w) => w.name)) !== undefined) return `at ["widgets"]: widget ${dup(s.widgets.map((w) => w.name))} is named twice`
  for (const [i, r] of s.rooms.entries()) {
    if (r.members.length === 0) return `at ["rooms"][${i}]["members"]: a room needs a member to create it`
    for (const [j, m] of r.members.entries()) if (!accounts.has(m)) return `at ["rooms"][${i}]["members"][${j}]: no account ${m}`
  }
  for (const [i, w] of s.widgets.entries()) {
    if (!accounts.has(w.account)) return `at ["widgets"][${i}]["account"]: no account ${w.account}`
    if (!rooms.has(w.room)) return `at ["widgets"][${i}]["room"]: no room ${w.room}`
    if (w.behaviour === "call" && (!accounts.has(w.peer) || w.peer === w.account)) return `at ["widgets"][${i}]["peer"]: ${w.peer} is not another account`
  }
  for (const [i, step] of (s.timeline ?? []).entries()) {
    if (step.at < 0 || step.at >= s.durationSeconds) return `at ["timeline"][${i}]["at"]: ${step.at} is outside the run (0 to durationSeconds)`
    const ref = "join" in step ? step.join : "leave" in step ? step.leave : undefined
    if (ref !== undefined && !accounts.has(ref.account)) return `at ["timeline"][${i}]: no account ${ref.account}`
    if (ref !== undefined && !rooms.has(ref.room)) return `at ["timeline"][${i}]: no room ${ref.room}`
    if ("reconnect" in step) for (const [j, n] of step.reconnect.entries()) if (!widgets.has(n)) return `at ["timeline"][${i}]["reconnect"][${j}]: no widget ${n}`
  }
  return undefined
}

/** Decodes a scenario already parsed from its text; `where` names it in the error. */
export const decodeScenario = (raw: unknown, where: string): Scenario => {
  let scenario: Scenario
  try {
    scenario = Schema.decodeUnknownSync(Scenario)(raw, { onExcessProperty: "error", errors: "first" })
  } catch (error) {
    throw new UsageError(`scenario ${where}: ${error instanceof Error ? error.message.replace(/\n\s*/g, " ") : String(error)}`)
  }
  const problem = crossCheck(scenario)
  if (problem !== undefined) throw new UsageError(`scenario ${where}: ${problem}`)
  return scenario
}

/** Reads a scenario file: `.json` as JSON, anything else as YAML (JSON is YAML too). */
export const loadScenario = (file: string): Scenario => {
  let text: string
  try {
    text = readFileSync(file, "utf8")
  } catch (error) {
    throw new UsageError(`scenario ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
  let raw: unknown
  try {
    raw = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text, { strict: true, uniqueKeys: true })
  } catch (error) {
    throw new UsageError(`scenario ${file}: not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`)
  }
  return decodeScenario(raw, file)
}
