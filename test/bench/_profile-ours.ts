// temporary: profile our engine alone (deleted after use)
import { polyfill, silenceConsole } from "./harness.ts"
import { deliver, MESSAGE_CAPABILITIES, openReady, ROOM, roomMessage, widgethostHost, referenceHost } from "./hosts.ts"
import { sendMany } from "./round-trips.ts"
import { negotiate } from "./negotiation.ts"
polyfill(); silenceConsole()
const which = process.argv[2] ?? "fanout"
const engine = process.argv[3] ?? "ours"
const make = engine === "ours" ? widgethostHost : referenceHost
if (which === "fanout") {
  const n = Number(process.argv[4] ?? 100)
  const host = make()
  await openReady(host, Array.from({ length: n }, (_, i) => ({ id: `w${i}`, roomId: ROOM, capabilities: MESSAGE_CAPABILITIES })))
  for (let i = 0; i < 10; i++) await deliver(host, { events: Math.round(20000 / n), perEvent: n, window: 16, make: () => roomMessage() })
} else if (which === "rt") {
  const host = make()
  const [w] = await openReady(host, [{ id: "s", roomId: ROOM, capabilities: MESSAGE_CAPABILITIES }])
  for (let i = 0; i < 10; i++) await sendMany(w!, 3000, Number(process.argv[4] ?? 1))
} else if (which === "neg") {
  for (let i = 0; i < 2000; i++) await negotiate(engine === "ours" ? "widgethost" : "matrix-widget-api", 1)
}
process.exit(0)
