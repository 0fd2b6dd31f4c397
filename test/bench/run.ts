/**
 * `npm run bench`: every scenario of issue #8, one table on stdout, one JSON file
 * (`test/bench/results/latest.json`, git-ignored) with the machine, the settings and every
 * round. Progress goes to stderr. Nothing asserts a time: a target that does not hold is a "NO"
 * in the table, and the exit code is 0 unless a scenario failed to run.
 *
 *   npm run bench                              the full run (under 10 minutes on 2 cores)
 *   npm run bench -- --quick                   short settings, for development
 *   npm run bench -- --only fan-out,heap       some scenarios
 *   npm run bench -- --out /tmp/bench.json
 *
 * Scenarios: fan-out, selective-fan-out, round-trips, negotiation, heap (each engine in its own
 * `node --expose-gc` child), websocket, decryption, scale (its own server and widget processes).
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { measureDecryption } from "./decryption.ts"
import { fanOut } from "./fan-out.ts"
import { holds, machineInfo, polyfill, progress, ratioOf, renderTable, type Row, type Settings, settingsFor, silenceConsole } from "./harness.ts"
import { heap } from "./heap.ts"
import { negotiation } from "./negotiation.ts"
import { roundTrips } from "./round-trips.ts"
import { scale } from "./scale.ts"
import { selectiveFanOut } from "./selective-fan-out.ts"
import { websocket } from "./websocket.ts"

/** The whole run must stay under this (issue #8: under 10 minutes); scale gets what is left. */
const RUN_BUDGET_SECONDS = 540

const decryption = async (settings: Settings): Promise<Row[]> => {
  progress("decryption: decrypt-and-route against OlmMachine.decryptRoomEvent")
  const report = await measureDecryption({ events: settings.quick ? 300 : 2000, rounds: settings.rounds, batch: 50 })
  const [reference, adapter, memory] = report.rows as unknown as [R, R, R]
  type R = { readonly scenario: string; readonly eventsPerSecond: number }
  const detail = { ...report }
  return [
    {
      scenario: "7 decryption, encrypted sync to router",
      metric: "events/s",
      unit: "1/s",
      ours: adapter.eventsPerSecond,
      against: { name: "OlmMachine alone", value: reference.eventsPerSecond },
      better: "higher",
      target: { text: ">= 0.9x", minRatio: 0.9 },
      detail
    },
    {
      scenario: "7 decryption, encrypted sync to router",
      metric: "events/s",
      unit: "1/s",
      ours: adapter.eventsPerSecond,
      against: { name: "OlmMachine, memory store", value: memory.eventsPerSecond },
      better: "higher"
    }
  ]
}

const scenarios: ReadonlyArray<{ readonly name: string; readonly run: (settings: Settings, budgetLeft: number) => Promise<Row[]> }> = [
  { name: "fan-out", run: (s) => fanOut(s) },
  { name: "selective-fan-out", run: (s) => selectiveFanOut(s) },
  { name: "round-trips", run: (s) => roundTrips(s) },
  { name: "negotiation", run: (s) => negotiation(s) },
  { name: "heap", run: (s) => heap(s) },
  { name: "websocket", run: (s) => websocket(s) },
  { name: "decryption", run: (s) => decryption(s) },
  { name: "scale", run: async (s, left) => (await scale(s, s.quick ? {} : { budgetSeconds: Math.max(60, Math.min(240, left)) })).rows }
]

const main = async () => {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string", default: join(dirname(fileURLToPath(import.meta.url)), "results", "latest.json") }
    }
  })
  const settings = settingsFor(values.quick)
  const only = values.only?.split(",").map((s) => s.trim())
  const unknown = only?.filter((name) => !scenarios.some((s) => s.name === name)) ?? []
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name).join(", ")}`)

  polyfill()
  const restoreConsole = silenceConsole()
  const machine = machineInfo()
  progress(`${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, open files limit ${machine.openFilesLimit}, ${values.quick ? "quick" : "full"} settings`)
  const started = performance.now()
  const rows: Row[] = []
  const timings: Record<string, number> = {}
  const failures: Record<string, string> = {}
  for (const scenario of scenarios) {
    if (only !== undefined && !only.includes(scenario.name)) continue
    const t0 = performance.now()
    const left = RUN_BUDGET_SECONDS - (t0 - started) / 1000
    try {
      rows.push(...(await scenario.run(settings, left)))
    } catch (error) {
      failures[scenario.name] = error instanceof Error ? (error.stack ?? error.message) : String(error)
      progress(`${scenario.name} failed: ${failures[scenario.name]}`)
    }
    timings[scenario.name] = (performance.now() - t0) / 1000
    progress(`${scenario.name}: ${timings[scenario.name].toFixed(0)} s`)
  }
  const seconds = (performance.now() - started) / 1000
  restoreConsole()

  const table = renderTable(rows)
  process.stdout.write(`\n${table}\n\n`)
  process.stdout.write(
    `ratio: how many times better widgethost is (a higher rate, or a lower time, latency or heap). ` +
      `${settings.warmup} warm-up + ${settings.rounds} measured rounds per contestant, interleaved, medians. ` +
      `node ${machine.node}, ${machine.cpus} cpus, ${seconds.toFixed(0)} s.\n`
  )
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(
    values.out,
    `${JSON.stringify(
      {
        machine,
        settings,
        command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
        durationSeconds: seconds,
        scenarioSeconds: timings,
        failures,
        rows: rows.map((row) => ({ ...row, ratio: ratioOf(row), holds: holds(row) })),
        table
      },
      null,
      2
    )}\n`
  )
  process.stdout.write(`results: ${values.out}\n`)
  // Nothing to wait for: child processes are gone; open handles (if any) must not hold the run.
  process.exit(Object.keys(failures).length === 0 ? 0 : 1)
}

await main()
