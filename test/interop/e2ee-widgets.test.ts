/**
 * End-to-end encryption through the engine and widget sessions (issue #6): two accounts, Alice
 * and Bob, on an in-memory embedded homeserver, each with its own HTTP + E2EE homeserver port
 * (its own OlmMachine) and its own engine, in an encrypted room. Each engine hosts one scripted
 * widget on real timers. What the widgets send is encrypted by the ports; what they receive is
 * decrypted before the engine sees it; the homeserver only ever stores ciphertext.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { MatrixHttp, path } from "@widgethost/homeserver-client"
import { type Engine, createEngine } from "@widgethost/engine"
import { type HoldingProxy, RealtimeWidget, roomWidget, startHoldingProxy, startInEncryptedRoom, waitUntil } from "../src/engine-fixture.ts"
import { approveAll } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"

const fast: Partial<ConnectOptions> = {
  retry: { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 5 },
  sync: { timeoutMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 400 },
  requestTimeoutMs: 20_000,
  // A loaded machine must not turn "the key is late" into "the key is lost": hold for long.
  hold: { maxHoldMs: 120_000 }
}

const PING = "org.example.ping"
const ALICE_CAPS = ["m.send.event:m.room.message", "m.receive.event:m.room.message", "m.send.state_event:m.room.topic", `m.send.to_device:${PING}`, "m.send.to_device:org.example.secret"]
const BOB_CAPS = ["m.receive.event:m.room.message", "m.receive.state_event:m.room.topic", `m.receive.to_device:${PING}`]

let hs: EmbeddedHomeserver
const cleanups: Array<() => Promise<unknown> | void> = []

beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
})
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await (async () => c())().catch(() => undefined)
  await hs.close()
})

interface Side {
  readonly port: MatrixHomeserver
  readonly engine: Engine
  readonly errors: Array<unknown>
  readonly undecryptable: Array<unknown>
}

const side = async (localpart: string, via?: HoldingProxy): Promise<Side> => {
  await hs.ensureUser(localpart, `${localpart}-password`)
  const errors: Array<unknown> = []
  const undecryptable: Array<unknown> = []
  const port = await connectHomeserver({
    baseUrl: via?.baseUrl ?? hs.baseUrl,
    auth: { user: localpart, password: `${localpart}-password` },
    ...fast,
    onError: (e) => errors.push(e),
    onUndecryptable: (r) => undecryptable.push(r)
  })
  cleanups.push(() => port.stop())
  // The engine subscribes to the port on creation: before `start()`, so nothing is missed.
  const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
  cleanups.push(() => engine.stop())
  return { port, engine, errors, undecryptable }
}

/** Alice and Bob with their ports and engines, in an encrypted room, synced, each hosting a ready widget. */
const setup = async (options: { readonly aliceVia?: HoldingProxy } = {}) => {
  const alice = await side("alice", options.aliceVia)
  const bob = await side("bob")
  const roomId = await startInEncryptedRoom(alice.port, bob.port)
  const aliceWidget = new RealtimeWidget({ engine: alice.engine, widget: roomWidget("alice-widget", roomId), capabilities: ALICE_CAPS })
  const bobWidget = new RealtimeWidget({ engine: bob.engine, widget: roomWidget("bob-widget", roomId), capabilities: BOB_CAPS })
  await Promise.all([aliceWidget.ready(), bobWidget.ready()])
  return { alice, bob, roomId, aliceWidget, bobWidget }
}

const message = (body: string, msgtype = "m.text") => ({ type: "m.room.message", content: { msgtype, body } })

/** What the homeserver itself stored, read with a raw client (no decryption), newest first. */
const rawMessages = async (token: string, roomId: string, filter?: object) => {
  const raw = new MatrixHttp({ baseUrl: hs.baseUrl })
  raw.accessToken = token
  try {
    const res = await raw.request<{ chunk: Array<{ type: string; content: Record<string, unknown>; event_id: string }> }>({
      method: "GET",
      path: path`/_matrix/client/v3/rooms/${roomId}/messages`,
      query: { dir: "b", limit: 100, ...(filter === undefined ? {} : { filter: JSON.stringify(filter) }) }
    })
    return res.chunk
  } finally {
    await raw.close()
  }
}

const bodiesOf = (events: ReadonlyArray<{ type: string; content: Record<string, unknown> }>) => events.filter((e) => e.type === "m.room.message").map((e) => e.content["body"])

describe("E2EE through the engine: widgets on two accounts in an encrypted room", { timeout: 120_000 }, () => {
  it("Alice's widget send_event → Bob's widget receives it decrypted; the homeserver stored only ciphertext", async () => {
    const { alice, bob, roomId, aliceWidget, bobWidget } = await setup()
    const sent = await aliceWidget.call("send_event", message("hello bob"))
    expect(sent["room_id"]).toBe(roomId)
    expect(sent["event_id"]).toMatch(/^\$/)
    const eventId = sent["event_id"] as string

    await waitUntil("bob's widget to receive the message", () => bobWidget.events().some((e) => e.event_id === eventId), 30_000, () => bobWidget.received)
    const got = bobWidget.events().filter((e) => e.event_id === eventId)
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ type: "m.room.message", event_id: eventId, room_id: roomId, sender: alice.port.userId, content: { msgtype: "m.text", body: "hello bob" } })
    // Never ciphertext, in any toWidget message.
    expect(bobWidget.events().every((e) => e.type === "m.room.message")).toBe(true)
    expect(JSON.stringify(bobWidget.received)).not.toContain("m.room.encrypted")
    expect(JSON.stringify(bobWidget.received)).not.toContain("megolm")

    // Alice's own widget gets her echo, decrypted, too.
    await waitUntil("alice's echo", () => aliceWidget.events().some((e) => e.event_id === eventId))
    expect(aliceWidget.events().find((e) => e.event_id === eventId)?.content).toEqual({ msgtype: "m.text", body: "hello bob" })

    // The homeserver has the event, as m.room.encrypted, without the plaintext.
    const stored = (await rawMessages(bob.port.http.accessToken!, roomId)).find((e) => e.event_id === eventId)
    expect(stored?.type).toBe("m.room.encrypted")
    expect(stored?.content["algorithm"]).toBe("m.megolm.v1.aes-sha2")
    expect(JSON.stringify(stored)).not.toContain("hello bob")
    expect(bob.undecryptable).toEqual([])
  })

  it("send_to_device: encrypted to Bob's device arrives decrypted with encrypted: true; clear with encrypted: false", async () => {
    const { alice, bob, aliceWidget, bobWidget } = await setup()
    const to = (content: Record<string, unknown>) => ({ [bob.port.userId]: { [bob.port.deviceId]: content } })
    // A type Bob's widget did not ask for goes first: it must not reach the widget.
    expect(await aliceWidget.call("send_to_device", { type: "org.example.secret", encrypted: true, messages: to({ secret: 1 }) })).toEqual({})
    expect(await aliceWidget.call("send_to_device", { type: PING, encrypted: true, messages: to({ n: 1 }) })).toEqual({})
    // A clear message whose payload claims encryption: the flag comes from how it arrived.
    expect(await aliceWidget.call("send_to_device", { type: PING, encrypted: false, messages: to({ n: 2, encrypted: true }) })).toEqual({})

    // `*`: every device of the user (Bob has one), encrypted for each.
    expect(await aliceWidget.call("send_to_device", { type: PING, encrypted: true, messages: { [bob.port.userId]: { "*": { n: 3 } } } })).toEqual({})

    await waitUntil("three to-device messages at bob's widget", () => bobWidget.toDevice().length >= 3, 30_000, () => bobWidget.received)
    // All were sent before this sync: anything more (a duplicate, the unapproved type) would show by now.
    await bob.port.nextSync()
    expect(bobWidget.toDevice()).toEqual([
      { type: PING, sender: alice.port.userId, content: { n: 1 }, encrypted: true },
      { type: PING, sender: alice.port.userId, content: { n: 2, encrypted: true }, encrypted: false },
      { type: PING, sender: alice.port.userId, content: { n: 3 }, encrypted: true }
    ])
    // Olm and room-key traffic stayed inside the crypto machinery.
    expect(JSON.stringify(bobWidget.received)).not.toMatch(/m\.room\.encrypted|m\.room_key|org\.example\.secret/)
  })

  it("late room key: Bob's widget gets the event once, decrypted, after the key arrives, in order with what followed", async () => {
    const proxy = await startHoldingProxy(() => hs.baseUrl)
    cleanups.push(() => proxy.close())
    const { bob, roomId, aliceWidget, bobWidget } = await setup({ aliceVia: proxy })
    // Alice's room-key share to Bob (olm-encrypted to-device) is held in transit.
    proxy.rules.push({ method: "PUT", path: /\/sendToDevice\/m\.room\.encrypted\//, times: 1 })

    const first = (await aliceWidget.call("send_event", message("first")))["event_id"] as string
    expect(proxy.held).toHaveLength(1)
    const topic = (await aliceWidget.call("send_event", { type: "m.room.topic", state_key: "", content: { topic: "in clear, in between" } }))["event_id"] as string
    const second = (await aliceWidget.call("send_event", message("second")))["event_id"] as string

    // Bob's port has all three and holds them behind the undecryptable first one.
    await waitUntil("bob's port holding three events", () => bob.port.stats().held === 3, 30_000, () => bob.port.stats())
    expect(bobWidget.events()).toEqual([])

    await proxy.release()
    await waitUntil("the held events at bob's widget", () => bobWidget.events().length >= 3, 30_000, () => ({ stats: bob.port.stats(), got: bobWidget.events() }))
    // A later event, decryptable at once, comes after them.
    const third = (await aliceWidget.call("send_event", message("third")))["event_id"] as string
    await waitUntil("the later event at bob's widget", () => bobWidget.events().some((e) => e.event_id === third))
    await bob.port.nextSync()

    expect(bobWidget.events().map((e) => [e.event_id, e.type, e.content["body"] ?? e.content["topic"]])).toEqual([
      [first, "m.room.message", "first"],
      [topic, "m.room.topic", "in clear, in between"],
      [second, "m.room.message", "second"],
      [third, "m.room.message", "third"]
    ])
    expect(bobWidget.events().every((e) => e.room_id === roomId)).toBe(true)
    expect(bob.port.stats()).toMatchObject({ held: 0, undecryptable: 0 })
  })

  it("read_events in the encrypted room returns the decrypted matching events (the server's type filter sees only m.room.encrypted)", async () => {
    const { alice, bob, roomId, aliceWidget, bobWidget } = await setup()
    const sent: Array<string> = []
    for (let i = 0; i < 3; i++) {
      sent.push((await aliceWidget.call("send_event", message(`text ${i}`)))["event_id"] as string)
      sent.push((await aliceWidget.call("send_event", message(`notice ${i}`, "m.notice")))["event_id"] as string)
    }
    // Bob's port has the room key once his widget has seen the messages live.
    await waitUntil("the messages at bob's widget", () => bobWidget.events().length >= sent.length, 30_000, () => bobWidget.received)

    const all = await bobWidget.call("read_events", { type: "m.room.message", limit: 10 })
    const events = all["events"] as Array<{ type: string; event_id: string; room_id: string; sender: string; content: Record<string, unknown> }>
    expect(bodiesOf(events)).toEqual(["notice 2", "text 2", "notice 1", "text 1", "notice 0", "text 0"])
    expect(events.map((e) => e.event_id)).toEqual([...sent].reverse())
    for (const e of events) expect(e).toMatchObject({ type: "m.room.message", room_id: roomId, sender: alice.port.userId })

    const notices = await bobWidget.call("read_events", { type: "m.room.message", msgtype: "m.notice", limit: 10, dir: "f" })
    expect(bodiesOf(notices["events"] as Array<{ type: string; content: Record<string, unknown> }>)).toEqual(["notice 0", "notice 1", "notice 2"])

    // Pagination through the widget: two at a time, newest first.
    const page1 = await bobWidget.call("read_events", { type: "m.room.message", msgtype: "m.text", limit: 2 })
    expect(bodiesOf(page1["events"] as Array<{ type: string; content: Record<string, unknown> }>)).toEqual(["text 2", "text 1"])
    expect(typeof page1["end"]).toBe("string")
    const page2 = await bobWidget.call("read_events", { type: "m.room.message", msgtype: "m.text", limit: 2, from: page1["end"] })
    expect(bodiesOf(page2["events"] as Array<{ type: string; content: Record<string, unknown> }>)).toEqual(["text 0"])

    // What the homeserver can filter on: only ciphertext, so its own type filter finds none of them.
    const serverFiltered = await rawMessages(bob.port.http.accessToken!, roomId, { types: ["m.room.message"] })
    expect(serverFiltered.filter((e) => sent.includes(e.event_id))).toEqual([])
    const stored = (await rawMessages(bob.port.http.accessToken!, roomId)).filter((e) => sent.includes(e.event_id))
    expect(stored).toHaveLength(sent.length)
    expect(stored.every((e) => e.type === "m.room.encrypted")).toBe(true)
    expect(JSON.stringify(stored)).not.toMatch(/text \d|notice \d/)
  })
})
