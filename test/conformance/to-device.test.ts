/** Conformance: MSC3819 to-device messages, session side (encryption is the homeserver port's). */
import { describe, expect, it } from "vitest"
import { approveAll, flush, Harness } from "../src/index.ts"
import { stringContaining } from "../src/matchers.ts"

const readyWith = async (capabilities: string[]) => {
  const h = new Harness({ approver: approveAll })
  await h.ready(capabilities)
  h.take()
  return h
}
const messages = { "@target:example.org": { DEVICEID: { example_content: "put your real message here" } } }

describe("fromWidget send_to_device", () => {
  it.each(["m.send.to_device:m.call.invite", "org.matrix.msc3819.send.to_device:m.call.invite"])("%s: sends through the port and answers {}", async (capability) => {
    const h = await readyWith([capability])
    const request = { api: "fromWidget", widgetId: "w1", requestid: "generated-id-1234", action: "send_to_device", data: { type: "m.call.invite", encrypted: true, messages } }
    h.session.receive(request)
    await flush()
    expect(h.take()).toEqual([{ ...request, response: {} }])
    expect(h.homeserver.toDeviceSent).toEqual([{ type: "m.call.invite", encrypted: true, messages }])
  })

  it("encrypts by default when the widget says nothing (MSC3819: MUST encrypt by default)", async () => {
    const h = await readyWith(["m.send.to_device:m.call.invite"])
    h.request("send_to_device", { type: "m.call.invite", messages })
    await flush()
    expect(h.homeserver.toDeviceSent).toEqual([{ type: "m.call.invite", encrypted: true, messages }])
  })

  it("the MSC's literal example carries no type: refused with an error, nothing sent", async () => {
    const h = await readyWith(["m.send.to_device:m.call.invite"])
    const id = h.request("send_to_device", messages)
    expect(h.responseTo(id)).toMatchObject({ error: { message: stringContaining("type") } })
    await flush()
    expect(h.homeserver.toDeviceSent).toEqual([])
  })

  it.each([
    [{ type: "m.call.hangup", encrypted: false, messages }, "Not allowed"],
    [{ type: "m.room_key", encrypted: true, messages }, "Not allowed"],
    [{ type: "m.call.invite", encrypted: "yes", messages }, "encrypted must be a boolean"],
    [{ type: "m.call.invite", messages: { "@u:hs": "not an object" } }, "messages must map"],
    [{ type: "m.call.invite", messages: [] }, "messages must map"]
  ])("refuses %j: %s", async (data, message) => {
    const h = await readyWith(["m.send.to_device:m.call.invite", "m.send.to_device:m.room_key"])
    const id = h.request("send_to_device", data)
    expect(h.responseTo(id)).toMatchObject({ error: { message: stringContaining(message) } })
    await flush()
    expect(h.homeserver.toDeviceSent).toEqual([])
  })
})

describe("toWidget send_to_device", () => {
  it("MSC3819 example: pushes matching messages with type, sender, encrypted, content", async () => {
    const h = await readyWith(["m.receive.to_device:m.call.invite"])
    h.homeserver.injectToDevice({ type: "m.call.invite", sender: "@source:example.org", encrypted: true, content: { call_id: "c" } })
    h.homeserver.injectToDevice({ type: "m.call.hangup", sender: "@source:example.org", encrypted: true, content: {} })
    const pushed = Harness.requests(h.take())
    expect(pushed.map((m) => [m.action, m.data])).toEqual([["send_to_device", { type: "m.call.invite", sender: "@source:example.org", encrypted: true, content: { call_id: "c" } }]])
  })

  it("the encrypted flag is the port's, passed through as it says", async () => {
    const h = await readyWith(["m.receive.to_device:m.call.invite"])
    h.homeserver.injectToDevice({ type: "m.call.invite", sender: "@s:hs", encrypted: false, content: { encrypted: true } })
    expect(Harness.requests(h.take())[0]?.data).toMatchObject({ encrypted: false })
  })

  it("crypto-internal types are never delivered and never approved, whatever is requested", async () => {
    const h = await readyWith(["m.receive.to_device:m.room_key", "m.receive.to_device:m.secret.send", "m.receive.to_device:m.call.invite"])
    expect(h.session.info().approved).toEqual(["m.receive.to_device:m.call.invite"])
    for (const type of ["m.room_key", "m.secret.send", "m.key.verification.start", "m.dummy"]) {
      h.homeserver.injectToDevice({ type, sender: "@s:hs", encrypted: true, content: {} })
    }
    expect(Harness.requests(h.take())).toEqual([])
  })

  it("nothing before the session is established", async () => {
    const h = new Harness({ approver: approveAll })
    h.homeserver.injectToDevice({ type: "m.call.invite", sender: "@s:hs", encrypted: true, content: {} })
    expect(h.take()).toEqual([])
  })
})
