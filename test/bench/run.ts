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
 *   npm run bench -- --max-widgets 100         fan-out, negotiation and heap at most 100 widgets (a loaded machine)
 *   npm run bench -- --runs 3                  every scenario 3 times, in turns; medians of the runs and their (min-max)
 *   npm run bench -- --write-readme            then rewrites README's benchmark section from the JSON
 *   npm run bench -- --write-readme --from test/bench/results/latest.json   the section only, no run
 *
 * Scenarios: fan-out, selective-fan-out, round-trips, negotiation, heap (each engine in its own
 * `node --expose-gc` child), websocket, decryption, account-path, chromium, bundle-size, scale (its own server and widget processes).
 * Each scenario runs in a fresh child process (`--scenario <name>`), both engines side by side in
 * it: what one scenario leaves behind (old-generation garbage, type feedback, timers) would
 * otherwise slow the next one down, and not evenly.
 */
import { spawn } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

/** Children run through the same production-like loader as this process (see loader.mjs). */
const loader = new URL("./loader.mjs", import.meta.url).href
import { parseArgs } from "node:util"
import { measureAccountPath } from "./account-path.ts"
import { browserBench } from "./browser-bench.ts"
import { bundleSize } from "./bundle-size.ts"
import { measureDecryption } from "./decryption.ts"
import { fanOut } from "./fan-out.ts"
import { holds, machineInfo, polyfill, progress, ratioOf, renderTable, type Row, type Settings, settingsFor, silenceConsole } from "./harness.ts"
import { heap } from "./heap.ts"
import { negotiation } from "./negotiation.ts"
import { writeReadme } from "./readme-section.ts"
import { REFERENCE_BUILD_DESCRIPTIONS } from "./reference-names.ts"
import { roundTrips } from "./round-trips.ts"
import { scale } from "./scale.ts"
import { selectiveFanOut } from "./selective-fan-out.ts"
import { combineRuns } from "./spread.ts"
import { budgetLeft, turns } from "./turns.ts"
import { websocket } from "./websocket.ts"

/** One run must stay under this (issue #8: under 10 minutes); scale gets what is left. Each of `--runs N` has its own. */
const RUN_BUDGET_SECONDS = 540

const decryption = async (settings: Settings): Promise<Row[]> => {
  progress("decryption: decrypt-and-route against OlmMachine.decryptRoomEvent")
  // 1000 events (the script's default is 2000): the IndexedDB-store reference runs at ~600/s here.
  const report = await measureDecryption({ events: settings.quick ? 300 : 1000, rounds: settings.rounds, batch: 50 })
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

/** How the two engines are set up, and every way they differ; written into the JSON. */
const SETUP: ReadonlyArray<string> = [
  "Same process, same run; rounds of the contestants interleaved; each contestant warmed until the median of its last 3 rounds stays within 2 % for 3 rounds (capped; the warm-up count is in every row), those rounds discarded; medians.",
  "Transport, both engines: fake windows whose postMessage structured-clones the message and dispatches it in a new task (setImmediate), one host window where every host-side listener hears every widget message, targetOrigin honoured.",
  "Widget side, both engines, end-to-end rows: matrix-widget-api's WidgetApi (requests the same capabilities, acknowledges send_event with preventDefault + transport.reply(request, {})).",
  "Capabilities, both engines: org.matrix.msc2762.send.event:m.room.message and org.matrix.msc2762.receive.event:m.room.message; waitForIframeLoad true; everything approved.",
  "matrix-widget-api: one ClientWidgetApi(widget, iframe, driver) per widget, its babel-compiled lib/ build (what Element Web bundles), a WidgetDriver per widget whose validateCapabilities resolves the requested set and sendEvent resolves at once; setViewedRoomId(widget's room); events fed with feedEvent(raw) to every widget as Element Web's StopGapWidget does (without StopGapWidget's own per-event checks).",
  "matrix-widget-api (src): the same ClientWidgetApi built at bench time from the TypeScript src/ its npm package ships, by esbuild with our settings (ESM, node20, no keepNames; its `events` dependency external): the reference as fairly built as ours. Its rows stand beside the lib/ rows; the widget side is lib/'s WidgetApi for every host.",
  "widgethost: createEngine with an approver that resolves the requested set and a PromiseHomeserverPort (plain async functions, the shape the engine takes) whose sendEvent resolves at once and which publishes only the bench's events (no echo of sent events, like the reference driver); each widget attached with our postMessage adapter (attachPostMessageTransport: one message listener per host window dispatching by event.source to the widget's attachment, source and origin checked).",
  "Console, logging off: console.log/debug/info/warn are no-ops; matrix-widget-api still builds its per-message log line's template string. Logging on (the rows named \"…, logging on\", same host, rounds interleaved with the logging-off ones): Element Web's rageshake ConsoleLogger, each line formatted (ISO time, level, objects through JSON.stringify with a circular guard) and appended to a buffer bounded at 5 M characters; the widget side's own lines (sent to the host's origin) belong to the iframe's console and are dropped unformatted.",
  "Host only (rows \"…, host only\"; fan-out, round trips, negotiation, heap): the same scenario with a scripted widget side instead of WidgetApi: it answers each toWidget request in the listener that receives it and speaks the same messages. Each measured round's time per operation minus that of its floor in the same cycle (fan-out: the transport floor; round trips and negotiation: the scripted widget against a host that answers by hand, \"transport alone\"), both on the process's CPU clock (user + system over the round's wall time), median of the differences: the host's own CPU µs per operation.",
  "Negotiation: the same eight messages with both engines (the widget asks supported_api_versions twice; the host asks capabilities, then notify_capabilities); widgethost asks the widget's versions only when receiving state is granted, which these capabilities do not. Timed from widget start + frame load to WidgetApi's ready (notify_capabilities received).",
  "Transport floor: the same toWidget send_event messages through the same fake windows, a bare echo as widget side (no WidgetApi; it copies with Object.assign, V8's spread of a cloned object being several times slower), one no-op host listener.",
  "Widget side alone (round trips, negotiation): the real WidgetApi against a host that answers each request and runs the capability exchange by hand (advertising 0.0.2 and MSC2871, so the widget waits for notify_capabilities as with both engines), no checks: the ceiling no engine can pass.",
  "Heap: each engine in its own node --expose-gc child; widget sides cut loose before measuring; fake iframe/window objects (same for both) included. Host only: the sessions negotiated by the scripted widget side.",
  "Websocket (ours only): our transport with a stub session that answers at once and its rate limit lifted, against bare ws echo servers in the same process.",
  "Decryption (ours only): the adapter's DecryptingTimeline.push up to the HomeserverPort listener, against OlmMachine.decryptRoomEvent on the same events and store, taking turns batch by batch (the fake-indexeddb store slows as a back-to-back run goes on, for both alike).",
  "Account path (ours only): the embedded homeserver in the same process over real HTTP; Bob sends while Alice is offline, Alice's port reopens on her saved sync position and is timed to the last event reaching the port's subscribers (what the router receives); the idle-sync rows sync with a zero long-poll timeout for 2 s and divide the process's CPU time (client and server) by the syncs made; the live rows run an engine with one ready widget on Alice's port while Bob sends (8 sends in flight), after one message through the whole path. Sizes: 1 warm-up + 3 measured rounds (not the bench's round count), 1000 events a round in the clear room and 300 in the encrypted one (Bob's encrypted sends run at a few hundred a second); medians of the 3.",
  "Bundle size: test/packaging/browser-entry.ts (createEngine, attachPostMessageTransport, the core's widget-definition helpers) and `export { ClientWidgetApi } from \"matrix-widget-api\"`, each bundled by esbuild (minify, platform browser, NODE_ENV production, tree-shaking); gzip level 9.",
  "Chromium (scenario 11): Debian's headless Chromium; the host page on 127.0.0.1 and the widgets on localhost (another site: out-of-process iframes under --site-per-process), real postMessage; each contestant in its own host frame of one page, rounds in turns; the widget page is lib/'s WidgetApi for every host (the floor's is a bare echo), the bench's own talk over a MessagePort off the engines' window; both pages bundled by esbuild (minified, browser, production), the src/ twin by the same build; the same doubles as the Node bench (bench-doubles.ts); logging off.",
  "Scale (ours only): server and widgets in separate processes; latency = publish to the widget's acknowledgement back at the server."
]

/** `--max-widgets`: the largest fan-out, negotiation and heap size (their 1000 costs the reference minutes on a loaded machine). */
const upTo = (max: number, sizes: ReadonlyArray<number>) => sizes.filter((n) => n <= max)

const scenarios: ReadonlyArray<{ readonly name: string; readonly run: (settings: Settings, budgetLeft: number, maxWidgets: number) => Promise<Row[]> }> = [
  { name: "fan-out", run: (s, _, max) => fanOut(s, { sizes: upTo(max, [1, 10, 100, 1000]) }) },
  { name: "selective-fan-out", run: (s) => selectiveFanOut(s) },
  { name: "round-trips", run: (s) => roundTrips(s) },
  { name: "negotiation", run: (s, _, max) => negotiation(s, { sizes: [1, Math.min(1000, max)] }) },
  { name: "heap", run: (s, _, max) => heap(s, { sessions: Math.min(1000, max) }) },
  { name: "websocket", run: (s) => websocket(s) },
  { name: "decryption", run: (s) => decryption(s) },
  { name: "account-path", run: (s) => { progress("account path: /sync through the HTTP adapter to the router, clear and encrypted, homeserver in a child process (and the clear room in this one)"); return measureAccountPath({ events: s.quick ? 300 : 1000, encryptedEvents: s.quick ? 100 : 300, rounds: s.quick ? 1 : 3, idleSeconds: s.quick ? 1 : 2, inFlight: 8, placement: "both", rooms: "both" }) } },
  { name: "chromium", run: (s, _, max) => browserBench(s, { sizes: upTo(max, [1, 10, 100]) }) },
  { name: "bundle-size", run: () => { progress("bundle size: the browser entry against ClientWidgetApi, esbuild-minified"); return bundleSize() } },
  { name: "scale", run: async (s, left) => (await scale(s, s.quick ? {} : { budgetSeconds: Math.max(60, Math.min(240, left)) })).rows }
]

/** In the child: one scenario, its rows sent back to the parent. */
const child = async (name: string, settings: Settings, budgetLeft: number, maxWidgets: number) => {
  const scenario = scenarios.find((s) => s.name === name)
  if (scenario === undefined) throw new Error(`unknown scenario ${name}`)
  polyfill()
  silenceConsole()
  const rows = await scenario.run(settings, budgetLeft, maxWidgets)
  await new Promise<void>((resolve, reject) => process.send!({ rows }, (error: Error | null) => (error === null ? resolve() : reject(error))))
  process.exit(0)
}

/**
 * Runs one scenario in a fresh process and returns its rows. The budget left is never negative
 * (an overrun scenario leaves 0, not a value that parses as a flag) and goes as `--opt=value`.
 */
const inChild = (name: string, quick: boolean, budgetLeft: number, maxWidgets: number) =>
  new Promise<Row[]>((resolve, reject) => {
    const args = ["--import", loader, fileURLToPath(import.meta.url), "--scenario", name, `--budget-left=${Math.max(0, Math.round(budgetLeft))}`, `--max-widgets=${maxWidgets}`, ...(quick ? ["--quick"] : [])]
    const proc = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit", "ipc"] })
    let rows: Row[] | undefined
    proc.on("message", (message) => (rows = (message as { rows: Row[] }).rows))
    proc.on("error", reject)
    proc.on("exit", (code, signal) => (rows !== undefined ? resolve(rows) : reject(new Error(`${name} exited with ${signal ?? code} before reporting`))))
  })

/** What one of the runs gathered: when it started, its rows by scenario, each scenario's seconds, what failed. */
interface RunRecord {
  startedMs: number | undefined
  readonly rows: Map<string, Row[]>
  readonly scenarioSeconds: Record<string, number>
  readonly failures: Record<string, string>
}

const main = async () => {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      out: { type: "string", default: join(dirname(fileURLToPath(import.meta.url)), "results", "latest.json") },
      scenario: { type: "string" },
      "write-readme": { type: "boolean", default: false },
      from: { type: "string" },
      "budget-left": { type: "string" },
      "max-widgets": { type: "string", default: "1000" },
      runs: { type: "string", default: "1" }
    }
  })
  const settings = settingsFor(values.quick)
  const readme = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "README.md")
  if (values.from !== undefined) {
    if (!values["write-readme"]) throw new Error("--from only goes with --write-readme")
    writeReadme(values.from, readme)
    return void process.stdout.write(`README: benchmark section rewritten from ${values.from}\n`)
  }
  const maxWidgets = Number(values["max-widgets"])
  if (!(maxWidgets >= 1)) throw new Error(`--max-widgets wants a positive number, not ${values["max-widgets"]}`)
  if (values.scenario !== undefined) return child(values.scenario, settings, Number(values["budget-left"] ?? RUN_BUDGET_SECONDS), maxWidgets)
  const only = values.only?.split(",").map((s) => s.trim())
  const unknown = only?.filter((name) => !scenarios.some((s) => s.name === name)) ?? []
  if (unknown.length > 0) throw new Error(`unknown scenario(s): ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name).join(", ")}`)

  const runs = Number(values.runs)
  if (!(Number.isInteger(runs) && runs >= 1)) throw new Error(`--runs wants a whole number of at least 1, not ${values.runs}`)

  const machine = { ...machineInfo(), loadAverage: loadavg() }
  progress(`${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, open files limit ${machine.openFilesLimit}, ${values.quick ? "quick" : "full"} settings${runs > 1 ? `, ${runs} runs` : ""}`)
  const selected = scenarios.filter((s) => only === undefined || only.includes(s.name)).map((s) => s.name)
  const started = performance.now()
  const perRun: RunRecord[] = Array.from({ length: runs }, () => ({ startedMs: undefined, rows: new Map(), scenarioSeconds: {}, failures: {} }))
  for (const turn of turns(runs, selected)) {
    const run = perRun[turn.run - 1]!
    const label = runs > 1 ? `${turn.scenario} (run ${turn.run} of ${runs})` : turn.scenario
    const t0 = performance.now()
    run.startedMs ??= t0
    try {
      run.rows.set(turn.scenario, await inChild(turn.scenario, values.quick, budgetLeft(RUN_BUDGET_SECONDS, run.startedMs, t0), maxWidgets))
    } catch (error) {
      run.failures[turn.scenario] = error instanceof Error ? error.message : String(error)
      progress(`${label} failed: ${run.failures[turn.scenario]}`)
    }
    run.scenarioSeconds[turn.scenario] = (performance.now() - t0) / 1000
    progress(`${label}: ${run.scenarioSeconds[turn.scenario]!.toFixed(0)} s`)
  }
  const seconds = (performance.now() - started) / 1000
  // One run: its rows as they are. Several: one row per row of the runs, scenario by scenario in
  // the usual order, with the runs' spread (spread.ts); the runs' own rows stay in the JSON.
  const rows: Row[] = selected.flatMap((name) => (runs === 1 ? (perRun[0]!.rows.get(name) ?? []) : combineRuns(perRun.map((run) => run.rows.get(name) ?? []))))
  const timings = runs === 1 ? perRun[0]!.scenarioSeconds : Object.fromEntries(selected.map((name) => [name, perRun.reduce((sum, run) => sum + (run.scenarioSeconds[name] ?? 0), 0)]))
  const failures = runs === 1 ? perRun[0]!.failures : Object.fromEntries(perRun.flatMap((run, i) => Object.entries(run.failures).map(([name, why]) => [`${name} (run ${i + 1})`, why])))

  const table = renderTable(rows)
  process.stdout.write(`\n${table}\n\n`)
  process.stdout.write(
    `ratio: how many times better widgethost is (a higher rate, or a lower time, latency or heap). ` +
      `warm-up until each contestant's median settles (${settings.warmup}..${settings.warmupCap} rounds, counts in the table), then ${settings.rounds} measured rounds, interleaved, medians; ` +
      `each scenario in a fresh process. ` +
      (runs > 1 ? `${runs} runs, scenarios in turns (each scenario's run 1, then run 2, ...); every value and ratio is the median of the runs, (lowest-highest) of the runs beside it. ` : "") +
      `node ${machine.node}, ${machine.cpus} cpus, ${seconds.toFixed(0)} s.\n`
  )
  mkdirSync(dirname(values.out), { recursive: true })
  writeFileSync(
    values.out,
    `${JSON.stringify(
      {
        machine: { ...machine, loadAverageAfter: loadavg() },
        settings,
        references: REFERENCE_BUILD_DESCRIPTIONS,
        scenarios: selected,
        command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
        durationSeconds: seconds,
        scenarioSeconds: timings,
        failures,
        setup: SETUP,
        rows: rows.map((row) => ({ ...row, ratio: ratioOf(row), holds: holds(row) })),
        // Every run's own rows, details and all, in run order (only with --runs above 1).
        ...(runs === 1
          ? {}
          : {
              runs: perRun.map((run, i) => ({
                run: i + 1,
                scenarioSeconds: run.scenarioSeconds,
                failures: run.failures,
                rows: selected.flatMap((name) => run.rows.get(name) ?? []).map((row) => ({ ...row, ratio: ratioOf(row), holds: holds(row) }))
              }))
            }),
        table
      },
      null,
      2
    )}\n`
  )
  process.stdout.write(`results: ${values.out}\n`)
  if (values["write-readme"]) {
    writeReadme(values.out, readme)
    process.stdout.write(`README: benchmark section rewritten from ${values.out}\n`)
  }
  process.exit(Object.keys(failures).length === 0 ? 0 : 1)
}

await main()
