/**
 * What every homeserver port must do against a real homeserver, as one table of cases that each
 * port's interop test runs on the embedded homeserver: the HTTP port
 * (`homeserver-port-http.test.ts`) and the port over a matrix-js-sdk client
 * (`homeserver-port-js-sdk.test.ts`). A case gets a {@link PortWorld}: the port under test
 * (Effect-native; a Promise port through `fromPromisePort`), signed in as alice and past its
 * first sync, what it delivered so far, alice's raw client-server API, and a second account.
 */
import { expect } from "vitest"
import { HomeserverError } from "@widgethost/core"
import { createEngine } from "@widgethost/engine"
import { approveAll } from "@widgethost/testing"
import * as sdk from "matrix-js-sdk"
import { RealtimeWidget, roomWidget } from "./engine-fixture.ts"
import { bodies, delivered, encryptedRoomWithBob, eventually, failureOf, mediaIdOf, type PortCase, roomEvents, roomOf, run, say, toDevice } from "./homeserver-port-world.ts"
import { fromEffectPort } from "@widgethost/core/effect"

const LIVEKIT = { type: "livekit", livekit_service_url: "http://127.0.0.1:9/jwt" }
const MEMBER = "org.matrix.msc3401.call.member"

export const portCases: ReadonlyArray<PortCase> = [
  {
    name: "readRelations: a parent's children, newest first, paged with the server's tokens",
    run: async (world) => {
      const roomId = await roomOf(world)
      const parent = await say(world, roomId, "parent")
      for (const key of ["a", "b", "c"]) {
        await world.alice.api("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.reaction/r-${key}`, { "m.relates_to": { rel_type: "m.annotation", event_id: parent.eventId, key } })
      }
      const first = await run(world.port.readRelations({ roomId, eventId: parent.eventId!, relType: "m.annotation", eventType: "m.reaction", limit: 2 }))
      expect(first.events.map((e) => (e.content["m.relates_to"] as { key: string }).key)).toEqual(["c", "b"])
      expect(first.nextBatch).toBeDefined()
      const rest = await run(world.port.readRelations({ roomId, eventId: parent.eventId!, relType: "m.annotation", limit: 2, from: first.nextBatch! }))
      expect(rest.events.map((e) => (e.content["m.relates_to"] as { key: string }).key)).toEqual(["a"])
    }
  },
  {
    name: "readRoomAccountData: the content when set, undefined when not",
    run: async (world) => {
      const roomId = await roomOf(world)
      expect(await run(world.port.readRoomAccountData(roomId, "org.example.settings"))).toBeUndefined()
      await world.alice.api("PUT", `/_matrix/client/v3/user/${encodeURIComponent(world.alice.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/org.example.settings`, { theme: "dark" })
      expect(await run(world.port.readRoomAccountData(roomId, "org.example.settings"))).toEqual({ theme: "dark" })
    }
  },
  {
    name: "requestOpenIdToken: a token the server's userinfo resolves to the account",
    run: async (world) => {
      const token = await run(world.port.requestOpenIdToken())
      expect(token).toMatchObject({ token_type: "Bearer", matrix_server_name: "localhost" })
      const info = await fetch(`${world.hs.baseUrl}/_matrix/federation/v1/openid/userinfo?access_token=${encodeURIComponent(token.access_token)}`)
      expect(await info.json()).toEqual({ sub: world.alice.userId })
    }
  },
  {
    name: "rtcTransports: the configured transports as the server sent them",
    homeserver: { rtcTransports: [LIVEKIT] },
    run: async ({ port }) => expect(await run(port.rtcTransports())).toEqual({ rtc_transports: [LIVEKIT] })
  },
  {
    name: "rtcTransports: the server's M_UNRECOGNIZED when it has none",
    run: async ({ port }) => {
      const failure = await failureOf(port.rtcTransports())
      expect(failure).toBeInstanceOf(HomeserverError)
      expect([failure.http?.status, failure.http?.body]).toEqual([404, { errcode: "M_UNRECOGNIZED", error: "No RTC transports are configured on this server." }])
    }
  },
  {
    name: "rtcLivekit (MSC4533): a server without MSC4195 answers the stable path's 404 M_UNRECOGNIZED, for both endpoints",
    run: async ({ port }) => {
      for (const endpoint of ["get_token", "delegate_delayed_leave"] as const) {
        const failure = await failureOf(port.rtcLivekit({ _tag: "RtcLivekit", endpoint, body: { room_id: "!r:localhost", slot_id: "m.call#ROOM", member: { id: "m" } } }))
        expect(failure).toBeInstanceOf(HomeserverError)
        expect([failure.http?.status, (failure.http?.body as { errcode?: string } | undefined)?.errcode]).toEqual([404, "M_UNRECOGNIZED"])
      }
    }
  },
  {
    name: "mediaConfig: the server's upload limit (m.upload.size)",
    homeserver: { maxUploadBytes: 1234 },
    run: async ({ port }) => expect(await run(port.mediaConfig())).toEqual({ "m.upload.size": 1234 })
  },
  {
    name: "uploadFile / downloadFile: bytes and type unchanged both ways, from bytes and from a Blob; the file is the server's",
    run: async ({ port, hs, bob }) => {
      const data = Uint8Array.from({ length: 256 }, (_, i) => i)
      const up = await run(port.uploadFile({ _tag: "UploadFile", file: { body: data, size: data.length, contentType: "image/png" } }))
      const mediaId = mediaIdOf(up.contentUri)
      expect(await run(port.downloadFile({ _tag: "DownloadFile", serverName: "localhost", mediaId, timeoutMs: 5000 }))).toEqual({ data, contentType: "image/png" })
      const blob = new Blob(["hello"], { type: "text/plain" })
      const fromBlob = await run(port.uploadFile({ _tag: "UploadFile", file: { body: blob, size: blob.size, contentType: blob.type } }))
      // Another account reads it through authenticated media: the upload reached the server as sent.
      const res = await fetch(`${hs.baseUrl}/_matrix/client/v1/media/download/localhost/${mediaIdOf(fromBlob.contentUri)}`, { headers: { authorization: `Bearer ${bob.accessToken}` } })
      expect([res.status, res.headers.get("content-type"), await res.text()]).toEqual([200, "text/plain", "hello"])
    }
  },
  {
    name: "uploadFile: the server's 413 M_TOO_LARGE over its limit (the session checks first; the port passes the server's word on)",
    homeserver: { maxUploadBytes: 4 },
    run: async ({ port }) => {
      const data = new Uint8Array(5)
      const failure = await failureOf(port.uploadFile({ _tag: "UploadFile", file: { body: data, size: data.length } }))
      expect([failure.http?.status, failure.http?.body["errcode"]]).toEqual([413, "M_TOO_LARGE"])
    }
  },
  {
    name: "downloadFile: the server's 404 M_NOT_FOUND for media it does not have",
    run: async ({ port }) => {
      const failure = await failureOf(port.downloadFile({ _tag: "DownloadFile", serverName: "localhost", mediaId: "nothing" }))
      expect([failure.http?.status, failure.http?.body["errcode"]]).toEqual([404, "M_NOT_FOUND"])
    }
  },
  {
    name: "userDirectorySearch: the server's answer as it sent it",
    run: async (world) => {
      // The directory shows room-mates and members of public rooms: alice is in one.
      await roomOf(world, { preset: "public_chat" })
      expect(await run(world.port.userDirectorySearch({ _tag: "UserDirectorySearch", searchTerm: "alice" }))).toMatchObject({ limited: false, results: [{ user_id: world.alice.userId }] })
    }
  },
  {
    name: "joinedRooms: the rooms the account is in",
    run: async (world) => {
      const roomId = await roomOf(world)
      expect(await run(world.port.joinedRooms())).toContain(roomId)
    }
  },
  {
    name: "sendEvent: the event id; the account's own events and another user's arrive once each, in timeline order, as the server's copies",
    run: async (world) => {
      const roomId = await roomOf(world, { preset: "public_chat" })
      await world.bob.api("POST", `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {})
      const first = await say(world, roomId, "first")
      expect(first.eventId).toMatch(/^\$/)
      await world.bob.api("PUT", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/b1`, { msgtype: "m.text", body: "from bob" })
      const last = await say(world, roomId, "last")
      await delivered(world, roomId, last.eventId!)
      const messages = roomEvents(world, roomId).filter((e) => e.type === "m.room.message")
      expect(messages.map((e) => [e.sender, e.content["body"]])).toEqual([
        [world.alice.userId, "first"],
        [world.bob.userId, "from bob"],
        [world.alice.userId, "last"]
      ])
      expect(messages[0]!.event_id).toBe(first.eventId)
      expect(messages.every((e) => e.event_id.startsWith("$") && e.room_id === roomId)).toBe(true)
    }
  },
  {
    name: "sendEvent (state) and readState: the room's current state, by type and key",
    run: async (world) => {
      const roomId = await roomOf(world)
      const send = (stateKey: string, n: number) => run(world.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.state", stateKey, content: { n } }))
      await send("a", 1)
      await send("b", 2)
      const third = await send("a", 3)
      // Once its own echo is back, the account has the state (a client reads its synced room state).
      await delivered(world, roomId, third.eventId!)
      const all = await run(world.port.readState(roomId, "org.example.state"))
      expect(all.map((e) => [e.state_key, e.content["n"]]).sort()).toEqual([
        ["a", 3],
        ["b", 2]
      ])
      expect((await run(world.port.readState(roomId, "org.example.state", "a"))).map((e) => [e.event_id, e.content["n"]])).toEqual([[third.eventId, 3]])
      expect(await run(world.port.readState(roomId, "org.example.state", "none"))).toEqual([])
    }
  },
  {
    name: "readState of a room the account is not in: the server's refusal",
    run: async (world) => {
      const { room_id: roomId } = await world.bob.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset: "private_chat" })
      const failure = await failureOf(world.port.readState(roomId, "m.room.create"))
      expect(failure.http?.status).toBe(403)
      expect(failure.http?.body.errcode).toBe("M_FORBIDDEN")
    }
  },
  {
    name: "redact: the redaction's id, and the redaction arrives",
    run: async (world) => {
      const roomId = await roomOf(world)
      const sent = await say(world, roomId, "oops")
      const redaction = await run(world.port.redact({ _tag: "Redact", roomId, eventId: sent.eventId!, reason: "typo" }))
      const event = await delivered(world, roomId, redaction.eventId!)
      expect(event.type).toBe("m.room.redaction")
      expect(event.redacts ?? event.content["redacts"]).toBe(sent.eventId)
    }
  },
  {
    name: "readEvents: newest first in pages, oldest first, filtered by type and msgtype",
    run: async (world) => {
      const roomId = await roomOf(world)
      for (const body of ["m1", "m2", "m3"]) await say(world, roomId, body)
      const notice = await run(world.port.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.notice", body: "n" } }))
      await run(world.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.other", content: { body: "x" } }))
      await delivered(world, roomId, notice.eventId!)
      const pages: Array<ReadonlyArray<unknown>> = []
      let from: string | undefined
      do {
        const page = await run(world.port.readEvents({ roomId, type: "m.room.message", msgtype: "m.text", limit: 2, dir: "b", ...(from === undefined ? {} : { from }) }))
        pages.push(bodies(page.events))
        from = page.end
      } while (from !== undefined && pages.length < 5)
      expect(pages.flat()).toEqual(["m3", "m2", "m1"])
      expect(pages[0]).toEqual(["m3", "m2"])
      const forwards = await run(world.port.readEvents({ roomId, type: "m.room.message", limit: 10, dir: "f" }))
      expect(bodies(forwards.events)).toEqual(["m1", "m2", "m3", "n"])
    }
  },
  {
    name: "sendEvent into a room the account is not in: the server's refusal, as matrix_api_error",
    run: async (world) => {
      const { room_id: roomId } = await world.bob.api<{ room_id: string }>("POST", "/_matrix/client/v3/createRoom", { preset: "private_chat" })
      const failure = await failureOf(world.port.sendEvent({ _tag: "SendEvent", roomId, type: "org.example.state", stateKey: "", content: {} }))
      expect(failure).toBeInstanceOf(HomeserverError)
      expect([failure.http?.status, failure.http?.body.errcode]).toEqual([403, "M_FORBIDDEN"])
    }
  },
  {
    name: "to-device in clear: the port's message reaches bob's device; bob's reaches the port, not encrypted",
    run: async (world) => {
      const first = await world.bob.api<{ next_batch: string }>("GET", "/_matrix/client/v3/sync?timeout=0")
      await run(world.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.ping", encrypted: false, messages: { [world.bob.userId]: { [world.bob.deviceId]: { n: 1 } } } }))
      const next = await world.bob.api<{ to_device?: { events?: Array<Record<string, unknown>> } }>("GET", `/_matrix/client/v3/sync?timeout=5000&since=${first.next_batch}`)
      expect(next.to_device?.events).toEqual([{ type: "org.example.ping", sender: world.alice.userId, content: { n: 1 } }])
      await world.bob.api("PUT", "/_matrix/client/v3/sendToDevice/org.example.pong/t1", { messages: { [world.alice.userId]: { [world.alice.deviceId]: { n: 2 } } } })
      await eventually("bob's to-device message", () => toDevice(world).length > 0)
      expect(toDevice(world)).toEqual([{ type: "org.example.pong", sender: world.bob.userId, content: { n: 2 }, encrypted: false }])
    }
  },
  {
    name: "turnServers: the server's credentials",
    homeserver: { turn: { uris: ["turn:127.0.0.1:3478?transport=udp"], sharedSecret: "s3cret", ttlSeconds: 3_600 } },
    run: async ({ port }) => {
      const turn = await run(port.turnServers())
      expect(turn.uris).toEqual(["turn:127.0.0.1:3478?transport=udp"])
      expect(turn.username).toMatch(/^\d+:@alice:localhost$/)
      expect(turn.password).not.toBe("")
      expect(turn.ttl).toBeGreaterThan(3_500)
      expect(turn.ttl).toBeLessThanOrEqual(3_600)
    }
  },
  {
    name: "delayed events (MSC4140): a delayed state event is scheduled, then cancelled, never sent",
    run: async (world) => {
      const roomId = await roomOf(world)
      const scheduled = async () => (await world.alice.api<{ delayed_events: ReadonlyArray<{ delay_id: string }> }>("GET", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events")).delayed_events.map((d) => d.delay_id)
      const { delayId } = await run(world.port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "_@alice:localhost_D", content: {}, delayMs: 60_000 }))
      expect(delayId).toBeTypeOf("string")
      expect(await scheduled()).toEqual([delayId])
      await run(world.port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: delayId!, action: "restart" }))
      expect(await scheduled()).toEqual([delayId])
      await run(world.port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: delayId!, action: "cancel" }))
      expect(await scheduled()).toEqual([])
      expect((await failureOf(world.port.updateDelayedEvent({ _tag: "UpdateDelayedEvent", delayId: delayId!, action: "send" }))).http?.status).toBe(404)
    }
  },
  {
    name: "delayed events on a server without MSC4140 in /versions: refused, nothing sent",
    before: (hs) => hs.injectFault({ path: /^\/_matrix\/client\/versions$/, times: 1_000, kind: { status: 200, body: { versions: ["v1.11"], unstable_features: {} } } }),
    run: async (world) => {
      const roomId = await roomOf(world)
      const failure = await failureOf(world.port.sendEvent({ _tag: "SendEvent", roomId, type: MEMBER, stateKey: "_@alice:localhost_D", content: {}, delayMs: 60_000 }))
      expect(failure.message).toContain("does not support delayed events")
      expect(failure.http).toBeUndefined()
      const state = await world.alice.api<Array<{ type: string }>>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state`)
      expect(state.filter((e) => e.type === MEMBER)).toEqual([])
    }
  },
  {
    name: "encrypted room: a widget's send arrives encrypted on the server and decrypted at a second client; the client's reaches the widget decrypted",
    run: async (world) => {
      const { bob, roomId } = await encryptedRoomWithBob(world)
      const engine = createEngine({ homeserver: fromEffectPort(world.port), approver: approveAll })
      world.defer(() => engine.stop())
      const widget = new RealtimeWidget({ engine, widget: roomWidget("secret-widget", roomId), capabilities: ["m.send.event:m.room.message", "m.receive.event:m.room.message"] })
      await widget.ready()
      const sent = await widget.call("send_event", { type: "m.room.message", content: { msgtype: "m.text", body: "from the widget" } })
      const eventId = sent["event_id"] as string

      // On the server: ciphertext only.
      const onServer = await world.bob.api<{ type: string; content: Record<string, unknown> }>("GET", `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(eventId)}`)
      expect(onServer.type).toBe("m.room.encrypted")
      expect(onServer.content["ciphertext"]).toBeTypeOf("string")
      expect(JSON.stringify(onServer)).not.toContain("from the widget")
      // At bob's client: decrypted.
      await eventually("bob to decrypt the widget's message", () => bob.getRoom(roomId)?.findEventById(eventId)?.getClearContent()?.["body"] === "from the widget")

      await bob.sendMessage(roomId, { msgtype: sdk.MsgType.Text, body: "from bob" })
      await eventually("the widget to get bob's message", () => widget.events().some((e) => e.content["body"] === "from bob"))
      const atWidget = widget.events().filter((e) => e.type === "m.room.message")
      expect(atWidget.map((e) => e.content["body"])).toEqual(["from the widget", "from bob"])
      expect(widget.events().some((e) => e.type === "m.room.encrypted")).toBe(false)
    }
  },
  {
    name: "encrypted to-device: Olm both ways with a second client, and `encrypted` says so",
    run: async (world) => {
      // Each side needs the other's device keys: a shared encrypted room makes them track each
      // other (matrix-js-sdk 36 encrypts to-device only to devices of users it tracks).
      const { bob } = await encryptedRoomWithBob(world)
      const received: Array<sdk.MatrixEvent> = []
      bob.on(sdk.ClientEvent.ToDeviceEvent, (event) => received.push(event))
      await run(world.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.secret", encrypted: true, messages: { [world.bob.userId]: { "*": { n: 1 } } } }))
      await eventually("bob to decrypt the port's to-device message", () => received.some((e) => e.getType() === "org.example.secret"))
      expect(received.find((e) => e.getType() === "org.example.secret")?.getContent()).toEqual({ n: 1 })

      const batch = await bob.getCrypto()!.encryptToDeviceMessages("org.example.reply", [{ userId: world.alice.userId, deviceId: world.alice.deviceId }], { n: 2 })
      expect(batch.batch).toHaveLength(1)
      await bob.queueToDevice(batch)
      await world.bob.api("PUT", "/_matrix/client/v3/sendToDevice/org.example.plain/t2", { messages: { [world.alice.userId]: { [world.alice.deviceId]: { n: 3 } } } })
      await eventually("both to-device messages at the port", () => toDevice(world).filter((e) => e.type.startsWith("org.example.")).length === 2)
      expect(toDevice(world).filter((e) => e.type.startsWith("org.example.")).sort((a, b) => a.type.localeCompare(b.type))).toEqual([
        { type: "org.example.plain", sender: world.bob.userId, content: { n: 3 }, encrypted: false },
        { type: "org.example.reply", sender: world.bob.userId, content: { n: 2 }, encrypted: true }
      ])
      // The crypto's own traffic (room keys, key requests) never reaches widgets.
      expect(toDevice(world).every((e) => e.type.startsWith("org.example."))).toBe(true)
    }
  },
  {
    name: "encrypted to-device naming a device without keys: refused, and nothing sent to any device",
    run: async (world) => {
      const { bob } = await encryptedRoomWithBob(world)
      const received: Array<sdk.MatrixEvent> = []
      bob.on(sdk.ClientEvent.ToDeviceEvent, (event) => received.push(event))
      const failure = await failureOf(
        world.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.secret", encrypted: true, messages: { [world.bob.userId]: { [world.bob.deviceId]: { n: 1 }, NOSUCHDEVICE: { n: 1 } } } })
      )
      expect(failure).toBeInstanceOf(HomeserverError)
      expect(failure.message).toContain("NOSUCHDEVICE")
      // To-device messages to one device arrive in order: once the next one is in, the refused
      // one would have been before it.
      await run(world.port.sendToDevice({ _tag: "SendToDevice", type: "org.example.secret", encrypted: true, messages: { [world.bob.userId]: { [world.bob.deviceId]: { n: 2 } } } }))
      await eventually("bob to decrypt the second message", () => received.some((e) => e.getType() === "org.example.secret"))
      expect(received.filter((e) => e.getType() === "org.example.secret").map((e) => e.getContent())).toEqual([{ n: 2 }])
    }
  }
]
