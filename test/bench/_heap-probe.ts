// temporary: where does widgethost's per-session heap go? (deleted after use)
import { polyfill, silenceConsole } from "./harness.ts"
import { hostFor, MESSAGE_CAPABILITIES, openReady, ROOM } from "./hosts.ts"
import { createActor } from "xstate"
import { sessionMachine } from "@widgethost/machines"
import { initialState, compilePermissions, emptyPolicy, defaultLimits } from "@widgethost/core"
polyfill(); silenceConsole(); const out = (...a: unknown[]) => process.stdout.write(a.join(" ") + "\n")
const gc = (globalThis as any).gc as () => void
const used = async () => { for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)) } return process.memoryUsage().heapUsed }
const N = 1000
const cfg = (i: number) => ({ widgetId: `w${i}`, kind: "room" as const, homeRoom: ROOM, waitForIframeLoad: true, policy: emptyPolicy, limits: defaultLimits })
const keep: unknown[] = []
let b = await used()
for (let i = 0; i < N; i++) keep.push(initialState(cfg(i)))
out("initialState", ((await used()) - b) / N)
b = await used()
for (let i = 0; i < N; i++) keep.push(compilePermissions(MESSAGE_CAPABILITIES))
out("compilePermissions(2 caps)", ((await used()) - b) / N)
b = await used()
for (let i = 0; i < N; i++) { const a = createActor(sessionMachine, { input: cfg(i) }); a.start(); keep.push(a) }
out("session actor (started, loading)", ((await used()) - b) / N)
for (const engine of ["widgethost", "matrix-widget-api"] as const) {
  const host = hostFor(engine)
  await openReady(host, Array.from({ length: 20 }, (_, i) => ({ id: `warm${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES })))
  b = await used()
  const ws = await openReady(host, Array.from({ length: N }, (_, i) => ({ id: `x${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES })))
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r))
  for (const w of ws) w.detach()
  ws.length = 0
  out(engine, "per ready session (host side)", ((await used()) - b) / N)
  keep.push(host)
}
process.exit(0)
