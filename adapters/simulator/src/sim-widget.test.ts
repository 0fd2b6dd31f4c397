import { assert, describe, it } from "vitest"
import { acknowledgement } from "./sim-widget.ts"

describe("a simulated widget's acknowledgement", () => {
  it("is the request's own text with response last, as JSON.stringify({ ...request, response }) reads", () => {
    for (const text of [
      '{"api":"toWidget","widgetId":"w1","requestId":"r1","action":"send_event","data":{"type":"m.room.message","content":{"body":"}{\\"x"}}}',
      '{ "api": "toWidget", "action": "notify_capabilities", "data": { "approved": [] } } \n',
      '{"api":"toWidget","data":{}}'
    ]) {
      for (const response of [{}, { capabilities: ["a", "b"] }]) {
        const ack = acknowledgement(text, response)
        assert.deepEqual(JSON.parse(ack), { ...(JSON.parse(text) as object), response })
        assert.deepEqual(Object.keys(JSON.parse(ack) as object).at(-1), "response")
      }
    }
  })
  it("an empty object gets response alone", () => {
    assert.equal(acknowledgement("{}", {}), '{"response":{}}')
  })
})
