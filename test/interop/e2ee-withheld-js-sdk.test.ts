/**
 * No silent drops (issue #18): a matrix-js-sdk peer with Rust crypto that excludes devices not
 * signed by their owner (MSC4153) withholds its room key from an unsigned widgethost device
 * (`m.room_key.withheld`, code `m.unverified`). The engine cannot decrypt the peer's message; it
 * holds it for the late-key bound, then reports it: the homeserver adapter's counter, the
 * service's log line and its console's "Homeserver health" (`GET /api/homeserver`), and the
 * widget's `read_events` answer, whose `io.widgethost.withheld` tells "something happened that
 * we could not decrypt" from "nothing happened". Once the widgethost device is cross-signed the
 * peer shares its key, and new messages are delivered; the old one stays withheld, and says so.
 */
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { WITHHELD_FIELD } from "@widgethost/core"
import { fromEffectPort } from "@widgethost/core/effect"
import { createEngine } from "@widgethost/engine"
import { connectHomeserver, ensureCrossSigned } from "@widgethost/homeserver-client"
import { ApprovalQueue, engineAdminModel, type HomeserverHealth, HomeserverHealthRecorder, MessageLog, startAdminServer } from "@widgethost/service"
import { approveAll } from "@widgethost/testing"
import * as sdk from "matrix-js-sdk"
import { RealtimeWidget, roomWidget } from "../src/engine-fixture.ts"
import { useE2eeWorld } from "../src/e2ee-world.ts"
import { encryptedRoomWith, rustCryptoPeer, waitFor } from "../src/js-sdk-peer.ts"

const world = useE2eeWorld("widgethost-withheld-")

const TOKEN = "withheld-test-admin-token"

describe("an event the engine cannot decrypt is reported, never silently dropped", { timeout: 120_000 }, () => {
  it("a peer withholding its key: counter, log line, console health, and read_events io.widgethost.withheld; after cross-signing, new messages flow", async () => {
    const password = "widgethost-password"
    await world.hs.createUser("widgethost", password)
    const lines: Array<{ level: string; message: string; fields: Readonly<Record<string, unknown>> | undefined }> = []
    const health = new HomeserverHealthRecorder((level, message, fields) => void lines.push({ level, message, fields }))
    const port = await connectHomeserver({
      baseUrl: world.hs.baseUrl,
      auth: { user: "widgethost", password },
      dataDir: join(world.root, "widgethost"),
      sync: { timeoutMs: 1_000 },
      hold: { maxHoldMs: 1_500 },
      onUndecryptable: health.roomEvent,
      onToDeviceUndecryptable: health.toDevice
    })
    world.cleanups.push(() => port.stop())
    health.watch(() => port.stats())
    const engine = createEngine({ homeserver: fromEffectPort(port), approver: approveAll })
    world.cleanups.push(() => engine.stop())
    const admin = await startAdminServer({ token: TOKEN, model: engineAdminModel({ engine, widgets: () => [], approvals: new ApprovalQueue(), messages: new MessageLog(), homeserver: () => health.health() }) })
    world.cleanups.push(() => admin.close())
    const consoleHealth = async () => {
      const res = await fetch(`${admin.url}/api/homeserver`, { headers: { authorization: `Bearer ${TOKEN}` } })
      return ((await res.json()) as { homeserver: HomeserverHealth | null }).homeserver
    }

    const bob = await rustCryptoPeer("bob", world)
    const roomId = await encryptedRoomWith(port, bob)
    const widget = new RealtimeWidget({ engine, widget: roomWidget("reader", roomId), capabilities: ["m.receive.event:m.room.message"] })
    await widget.ready()

    // Nothing happened yet: the answer is MSC2762's own, without the field.
    const quiet = await widget.call("read_events", { type: "m.room.message" })
    expect(quiet).toEqual({ events: [] })

    const { event_id: withheldId } = await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "for signed devices only" })
    await waitFor("the report of bob's withheld message", () => port.stats().undecryptable > 0)
    expect(port.stats()).toMatchObject({ undecryptable: 1, held: 0 })
    expect(widget.events()).toEqual([])
    // The withheld notice travels with (before) the message, so the hold ends at once with its code;
    // had the message come first, the hold bound would end it as held-too-long.
    const report = { roomId, eventId: withheldId, ...(port.stats().lateDelivered === 0 && lines[0]?.fields?.["kind"] === "held-too-long" ? { kind: "held-too-long" } : { kind: "failed", reason: "m.unverified" }) }
    expect(lines).toEqual([{ level: "warn", message: expect.stringMatching(/a room event .*decrypted/) as unknown, fields: expect.objectContaining(report) as unknown }])
    expect(await consoleHealth()).toMatchObject({ undecryptable: 1, recentUndecryptable: [report] })

    // Something happened that could not be decrypted: the widget is told how many, and nothing else of it.
    const told = await widget.call("read_events", { type: "m.room.message" })
    expect(told).toEqual({ events: [], [WITHHELD_FIELD]: 1 })

    // Signed by its owner, the device gets bob's key for what he sends from now on.
    expect((await ensureCrossSigned({ e2ee: port.e2ee, http: port.http, password }))._tag).toBe("Bootstrapped")
    await waitFor("bob seeing the widgethost device as signed by its owner", async () => {
      await bob.getCrypto()!.getUserDeviceInfo([port.userId], true)
      return (await bob.getCrypto()!.getDeviceVerificationStatus(port.userId, port.deviceId))?.signedByOwner === true
    })
    const { event_id: sharedId } = await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "now you can read this" })
    await waitFor("the widget receiving bob's new message", () => widget.events().some((e) => e.event_id === sharedId))
    expect(widget.events().map((e) => e.content["body"])).toEqual(["now you can read this"])

    const after = await widget.call("read_events", { type: "m.room.message" })
    expect((after["events"] as Array<{ event_id: string }>).map((e) => e.event_id)).toEqual([sharedId])
    expect(after[WITHHELD_FIELD]).toBe(1)
    // A stretch of timeline without the withheld event: no field.
    expect(await widget.call("read_events", { type: "m.room.message", limit: 1 })).not.toHaveProperty(WITHHELD_FIELD)
    expect(JSON.stringify(widget.received)).not.toContain("for signed devices only")
  })
})
