import { createEngine } from "@widgethost/machines"
import { makeInMemoryHomeserver, widgetDefinition } from "../src/index.ts"
import v8 from "node:v8"
const N = Number(process.argv[2])
const hs = makeInMemoryHomeserver()
const engine = createEngine({ homeserver: hs, approver: async (r) => r.requested, subscribe: false })
const keep: any[] = []
for (let i = 0; i < N; i++) {
  const box: any = {}
  const s = engine.openSession({ widget: widgetDefinition({ id: `w${i}` }), send: (m: any) => {
    if (m.api === "toWidget" && !("response" in m)) {
      const response = m.action === "capabilities" ? { capabilities: ["m.receive.event:m.room.message", "m.send.event:m.room.message"] } : m.action === "supported_api_versions" ? { supported_versions: [] } : {}
      queueMicrotask(() => box.s.receive({ ...m, response }))
    }
  } })
  box.s = s; keep.push(s); s.frameLoaded()
}
await new Promise((r) => setTimeout(r, 300))
engine.flush()
v8.writeHeapSnapshot(`/tmp/pb/heap-${N}.heapsnapshot`)
