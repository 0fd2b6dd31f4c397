/**
 * What Effect `Schema` would cost in the core, measured against the core's hand-written decoder
 * (`decodeFromWidget`), for #13's decision on where Schema earns its place. Two costs:
 * - time per message: decoding a `send_event` request (the envelope plus its `data`, with the
 *   event `content` kept opaque, the fastest honest schema), in one process, rounds interleaved;
 * - bytes: the browser entry bundled with and without that schema and its decoder (imported from
 *   `effect/Schema`, the smallest way in), the way bench row 10 bundles it.
 *
 *   node --import ./test/bench/loader.mjs test/bench/schema-cost.ts [--messages 200000] [--rounds 7]
 */
import { parseArgs } from "node:util"
import * as Schema from "effect/Schema"
import { decodeFromWidget } from "@widgethost/core"
import { browserEntry, bundled } from "./bundle-size.ts"
import { decodeSendEventRequest, SendEventRequest } from "./schema-cost-entry.ts"

const { values } = parseArgs({ options: { messages: { type: "string", default: "200000" }, rounds: { type: "string", default: "7" } } })
const messages = Number(values.messages)
const rounds = Number(values.rounds)

const message = (i: number) => ({
  api: "fromWidget",
  widgetId: "w",
  requestId: `r${i}`,
  action: "send_event",
  data: { type: "m.room.message", content: { msgtype: "m.text", body: `hello ${i}` } }
})
const inputs = Array.from({ length: 1024 }, (_, i) => message(i))

const contestants: ReadonlyArray<readonly [string, (input: unknown) => unknown]> = [
  ["core decodeFromWidget (hand-written)", decodeFromWidget],
  ["effect Schema.decodeUnknownResult", decodeSendEventRequest],
  ["effect Schema.is", Schema.is(SendEventRequest)]
]

const nsPerMessage = (decode: (input: unknown) => unknown) => {
  let sink = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < messages; i++) if (decode(inputs[i & 1023]) !== undefined) sink++
  const ns = Number(process.hrtime.bigint() - start) / messages
  if (sink !== messages) throw new Error("a decoder returned nothing")
  return ns
}

for (const [, decode] of contestants) nsPerMessage(decode) // warm-up
const samples = contestants.map(() => [] as number[])
for (let round = 0; round < rounds; round++) contestants.forEach(([, decode], i) => samples[i]!.push(nsPerMessage(decode)))
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (const [i, [name]] of contestants.entries()) console.log(`${name.padEnd(40)} ${(median(samples[i]!) / 1000).toFixed(3)} µs per message (median of ${rounds})`)

const plain = await bundled(browserEntry)
const withSchema = await bundled(`${browserEntry}
export { decodeSendEventRequest } from "./schema-cost-entry.ts"`)
console.log(`browser entry: ${plain.minified.toFixed(1)} KB minified, ${plain.gzipped.toFixed(2)} KB gzipped`)
console.log(`with one Schema decoder: ${withSchema.minified.toFixed(1)} KB minified, ${withSchema.gzipped.toFixed(2)} KB gzipped (+${(withSchema.gzipped - plain.gzipped).toFixed(2)} KB)`)
