/**
 * A/B of the websocket transport against another checkout's, in one process: CPU µs per message
 * (process user + system time over a one-connection round, client and both servers included) for a
 * bare `ws` echo, the other checkout's transport and this one's, rounds rotated (harness
 * `interleave`). CPU time, not messages per second, because on a shared machine a wall-clock rate
 * mostly measures the scheduler (quick bench rows of the same code moved 0.45x-0.83x at load 12-18);
 * at 64 in flight the rate is the inverse of this cost once the process gets a core.
 *
 *   git -C /work/main worktree add /tmp/wt-old <commit> && (cd /tmp/wt-old && npm ci)
 *   node --import ./test/bench/loader.mjs test/bench/websocket-ab.ts --other /tmp/wt-old [--rounds 9] [--messages 20000]
 */
import { parseArgs } from "node:util"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { startWebsocketTransport } from "@widgethost/websocket"
import { interleave, median } from "./harness.ts"
import { answeringSession, bareServer, round } from "./websocket-throughput.ts"

const { values } = parseArgs({ options: { other: { type: "string" }, rounds: { type: "string", default: "9" }, messages: { type: "string", default: "20000" } } })
if (values.other === undefined) throw new Error("--other <checkout> is required (a worktree of the commit to compare with, npm ci done)")
const otherEntry = pathToFileURL(resolve(values.other, "adapters/websocket/src/index.ts")).href
const other = (await import(otherEntry)) as { startWebsocketTransport: typeof startWebsocketTransport }

const settings = { messages: Number(values.messages), window: 64 }
/** CPU µs per message of one round (the process's user + system time: load elsewhere mostly drops out). */
const cpuPerMessage = async (url: string) => {
  const before = process.cpuUsage()
  await round(url, settings)
  const spent = process.cpuUsage(before)
  return (spent.user + spent.system) / settings.messages
}

const unlimited = { rateLimit: { messages: Number.MAX_SAFE_INTEGER, perMs: 1000 } }
const bare = await bareServer(false)
const theirs = await other.startWebsocketTransport(unlimited)
const ours = await startWebsocketTransport(unlimited)
try {
  const samples = await interleave({ quick: false, warmup: 3, warmupCap: 3, stableWindow: 3, stableWithin: 0.02, rounds: Number(values.rounds) }, [
    { name: "bare ws echo", round: () => cpuPerMessage(bare.url) },
    { name: "other", round: () => cpuPerMessage(theirs.register("bench", answeringSession).uri) },
    { name: "this", round: () => cpuPerMessage(ours.register("bench", answeringSession).uri) }
  ])
  const floor = median(samples.get("bare ws echo")!)
  for (const [name, xs] of samples) console.log(`${name.padEnd(13)} ${median(xs).toFixed(1)} µs CPU/message (${(median(xs) - floor).toFixed(1)} over bare)  rounds: ${xs.map((x) => x.toFixed(1)).join(" ")}`)
  // Rounds of one cycle ran side by side: their differences pair out slow spells of the machine.
  const theirsXs = samples.get("other")!
  const differences = samples.get("this")!.map((x, i) => x - theirsXs[i]!)
  console.log(`this - other, per cycle: ${differences.map((d) => d.toFixed(1)).join(" ")}; median ${median(differences).toFixed(2)} µs`)
} finally {
  await Promise.all([bare.close(), theirs.close(), ours.close()])
}
