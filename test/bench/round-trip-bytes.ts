/**
 * Bytes the engine allocates per `send_event` round trip, ours only: the heap's growth over a
 * stretch of round trips during which no garbage collection runs. Unlike a time, this barely
 * moves on a loaded machine, so it can tell apart two commits that a timed A/B on a shared
 * machine cannot. The widget is played by code that answers at once (as in engine-only.ts); its
 * requests are built before the stretch, so what grows is the engine's, plus the few bytes the
 * driving loop itself allocates (the same for every commit).
 *
 *   node --expose-gc --min-semi-space-size=512 --max-semi-space-size=512 \
 *     --import ./test/bench/loader.mjs test/bench/round-trip-bytes.ts [--sequential] [--count 5000]
 *
 * `--sequential` waits for each reply before the next request (every round trip alone, two
 * chart steps each); without it, requests follow one per microtask, as a busy widget sends them.
 * Prints bytes per round trip, or says that a collection ran (enlarge the semi-space, or lower
 * --count). A diagnostic: nothing is compared or asserted.
 */
import { getHeapStatistics } from "node:v8"
import { PerformanceObserver } from "node:perf_hooks"
import { parseArgs } from "node:util"
import type { WidgetMessage } from "@widgethost/core"
import { createEngine, type EngineSession } from "@widgethost/engine"
import { polyfill, silenceConsole } from "./harness.ts"
import { benchHomeserver, definitionOf, MESSAGE_CAPABILITIES, ROOM, WIDGET_ORIGIN } from "./hosts.ts"

const isRequest = (message: WidgetMessage) => message.api === "toWidget" && !("response" in message)
const answerTo = (message: WidgetMessage) => Object.assign({}, message, { response: message.action === "capabilities" ? { capabilities: MESSAGE_CAPABILITIES } : {} })

const requestsOf = (count: number) =>
  Array.from({ length: count }, (_, i) =>
    structuredClone({ api: "fromWidget", widgetId: "w0", requestId: `r${i}`, action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body: `round trip ${i}` } } })
  )

/** One ready session whose replies land in `replies`. */
const ready = async () => {
  const engine = createEngine({ homeserver: benchHomeserver(), approver: ({ requested }) => Promise.resolve(requested) })
  const replies: WidgetMessage[] = []
  const holder: { session?: EngineSession } = {}
  const session = engine.openSession({
    widget: definitionOf({ id: "w0", roomId: ROOM, capabilities: [] }),
    origin: WIDGET_ORIGIN,
    send: (message) => (isRequest(message) ? holder.session!.receive(structuredClone(answerTo(message))) : replies.push(message))
  })
  holder.session = session
  session.frameLoaded()
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
  if (session.info().phase !== "ready") throw new Error("the session is not ready")
  replies.length = 0
  return { engine, session, replies }
}

const drive = async (session: EngineSession, replies: WidgetMessage[], requests: ReadonlyArray<unknown>, sequential: boolean) => {
  for (let i = 0; i < requests.length; i++) {
    session.receive(requests[i])
    if (sequential) while (replies.length <= i) await Promise.resolve()
    else await Promise.resolve()
  }
  for (let turn = 0; turn < 100 && replies.length < requests.length; turn++) await new Promise((resolve) => setImmediate(resolve))
  if (replies.length !== requests.length) throw new Error(`${replies.length} replies for ${requests.length} requests`)
}

const main = async () => {
  const { values } = parseArgs({ options: { sequential: { type: "boolean", default: false }, count: { type: "string", default: "5000" } } })
  const count = Number(values.count)
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("run with --expose-gc (see the header)")
  polyfill()
  const restore = silenceConsole()
  // Warm: the same work, so that what is measured runs optimised code.
  for (let round = 0; round < 3; round++) {
    const warm = await ready()
    await drive(warm.session, warm.replies, requestsOf(20_000), values.sequential)
    warm.engine.stop()
  }
  const { engine, session, replies } = await ready()
  const requests = requestsOf(count)
  // Collections are told by the gc performance entries, which arrive later: those that started within the stretch.
  const starts: number[] = []
  const observer = new PerformanceObserver((list) => void starts.push(...list.getEntries().map((entry) => entry.startTime)))
  observer.observe({ entryTypes: ["gc"] })
  gc()
  await new Promise((resolve) => setImmediate(resolve))
  const from = performance.now()
  const before = getHeapStatistics().used_heap_size
  await drive(session, replies, requests, values.sequential)
  const grown = getHeapStatistics().used_heap_size - before
  const to = performance.now()
  await new Promise((resolve) => setTimeout(resolve, 10))
  observer.disconnect()
  const collected = starts.some((start) => start >= from && start <= to)
  engine.stop()
  restore()
  console.log(collected ? "a collection ran during the stretch: no figure" : `${(grown / count).toFixed(0)} bytes per send_event round trip${values.sequential ? " (sequential)" : ""}`)
}

if (process.argv[1] === import.meta.filename) await main()
