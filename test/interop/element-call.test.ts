/**
 * Interop: the real Element Call (`@element-hq/element-call-embedded`, its published `dist/`) as a
 * widget of our engine, in Chromium. Element Call is served on its own origin and framed by a host
 * page on another, which runs `createEngine` over the postMessage transport; the page's homeserver
 * port is the HTTP port (`connectHomeserver`) on the embedded homeserver, reached over the port
 * bridge. The homeserver's MatrixRTC transport is a fake LiveKit JWT service that checks Element
 * Call's OpenID token at the homeserver, as the real one does. No SFU exists: the call never
 * connects, but everything Matrix-side of joining and leaving does happen, and is checked at the
 * homeserver: the membership state event, its delayed leave (MSC4140, scheduled through
 * `send_event` with `delay`, kept alive with `update_delayed_event` restarts) and the leave.
 *
 * What Element Call asks for, and what it does that we do not serve, are tables (test/src/element-call/expectations.ts): a new
 * Element Call, or a change of ours, that changes them fails here and shows the difference.
 */
import { existsSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it, vi } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import type { HomeserverUpdate } from "@widgethost/core"
import { Effect } from "effect"
import { CHROMIUM, type ElementCallHost, type HostPage, startElementCallHost } from "../src/element-call/host.ts"
import type { HostLogEntry } from "../src/element-call/host-page.ts"
import { WIDGET_FRAME } from "../src/element-call/widget-frame.ts"
import { type FakeLivekitJwtService, startFakeLivekitJwtService } from "../src/fake-livekit-jwt.ts"
import { type PortBridge, startPortBridge } from "../src/port-bridge/server.ts"
import { CAPABILITIES, CLIENT_CALLS, DELAYED_LEAVE, MEMBER, UNSERVED, type DelayedEventsList } from "../src/element-call/expectations.ts"

/** Our answers to Element Call's requests of `action`. */
const answersTo = (log: ReadonlyArray<HostLogEntry>, action: string) => log.filter((e) => e.kind === "answer" && e.action === action)
const errorOf = (e: HostLogEntry) => (e.response as { error?: { code: string; message: string } }).error

describe.skipIf(!existsSync(CHROMIUM))("Element Call 0.26.1 as a widget of our engine, in Chromium", () => {
  const stops: Array<() => Promise<unknown>> = []
  let hs: EmbeddedHomeserver
  let jwt: FakeLivekitJwtService
  let port: MatrixHomeserver
  let bridge: PortBridge
  let host: ElementCallHost
  let roomId: string
  /** What Alice's port reported going wrong (a to-device message it could not encrypt, say). */
  const portErrors: Array<unknown> = []
  /** A second session of the account, to read the homeserver as any client would. */
  let reader: { accessToken: string }

  beforeAll(async () => {
    jwt = await startFakeLivekitJwtService({ homeserver: () => ({ baseUrl: hs.baseUrl, serverName: hs.serverName }) })
    stops.push(() => jwt.close())
    hs = await startEmbeddedHomeserver({ rtcTransports: [{ type: "livekit", livekit_service_url: jwt.url }] })
    stops.push(() => hs.close())
    reader = await hs.ensureUser("alice", "alice-secret")
    const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers: { authorization: `Bearer ${reader.accessToken}` },
      body: JSON.stringify({ name: "Call room", preset: "private_chat" })
    })
    roomId = ((await created.json()) as { room_id: string }).room_id
    port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" }, onError: (e) => portErrors.push(e) })
    stops.push(() => port.stop())
    bridge = await startPortBridge(port)
    stops.push(() => bridge.close())
    // Syncing, as a client is: the widget gets the room's changes (its own membership included).
    const synced = port.nextSync()
    port.start()
    await synced
    host = await startElementCallHost({ bridge: bridge.url, homeserver: hs.baseUrl, config: { matrix_rtc_session: { delayed_leave: DELAYED_LEAVE } } })
    stops.push(() => host.close())
  }, 60_000)

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
  })

  const ownStateKey = () => `_${port.userId}_${port.deviceId}_m.call`
  const expand = (capability: string) => capability.replaceAll("$user", port.userId).replaceAll("$device", port.deviceId).replaceAll("$room", roomId)

  /** Our membership as any client reads it: the room's current state, over HTTP. */
  const membershipState = async (room = roomId) => {
    const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(room)}/state/${MEMBER}/${encodeURIComponent(ownStateKey())}`, {
      headers: { authorization: `Bearer ${reader.accessToken}` }
    })
    return { status: res.status, content: (await res.json()) as Record<string, unknown> }
  }
  const delayedEvents = async () => {
    const res = await fetch(`${hs.baseUrl}/_matrix/client/unstable/org.matrix.msc4140/delayed_events`, { headers: { authorization: `Bearer ${reader.accessToken}` } })
    return (await res.json()) as DelayedEventsList
  }
  /** Element Call's console, so that a failing wait shows what it was doing. */
  const withConsole = (page: HostPage, what: string) => `${what}\n--- the page's console (last 40 lines):\n${page.console.slice(-40).join("\n")}`
  const hostLog = (page: HostPage) => page.host((h) => h.log)

  /** Clicks Join call and waits for the membership at the homeserver and both sends' answers. */
  const joinCall = async (page: HostPage, room = roomId) => {
    await page.frame.getByRole("button", { name: "Join call" }).click()
    const member = await vi.waitFor(
      async () => {
        const state = await membershipState(room)
        assert.equal(state.content["application"], "m.call", withConsole(page, "no membership at the homeserver yet"))
        return state.content
      },
      { timeout: 20_000 }
    )
    // The homeserver may show the join a moment before our answer reaches Element Call.
    const [leave, join] = await vi.waitFor(async () => {
      const sends = answersTo(await hostLog(page), "send_event").filter((e) => (e.data as { type?: string }).type === MEMBER)
      assert.lengthOf(sends, 2)
      return sends as [HostLogEntry, HostLogEntry]
    })
    return { member, leave, join, delayId: (leave.response as { delay_id: string }).delay_id }
  }

  describe("join, stay, hang up", () => {
    let page: HostPage
    let delayId: string
    let scheduledSince: number

    beforeAll(async () => {
      page = await host.open(roomId)
    }, 30_000)

    it("negotiates: Element Call's capabilities, each approved or denied as the table says", async () => {
      const notified = await vi.waitFor(
        async () => {
          const [notify] = (await hostLog(page)).filter((e) => e.kind === "request" && e.action === "notify_capabilities")
          assert.isDefined(notify, withConsole(page, "no notify_capabilities yet"))
          return notify.data as { requested: ReadonlyArray<string>; approved: ReadonlyArray<string> }
        },
        { timeout: 20_000 }
      )
      const [asked] = (await hostLog(page)).filter((e) => e.kind === "reply" && e.action === "capabilities")
      const widgetAsked = (asked?.response as { capabilities?: ReadonlyArray<string> }).capabilities
      const table = CAPABILITIES.map(([capability, decision]) => [expand(capability), decision] as const)
      console.log(["Element Call's capabilities and our decision:", ...table.map(([c, d]) => `  ${d.padEnd(8)} ${c}`)].join("\n"))
      assert.deepEqual(widgetAsked, table.map(([c]) => c), "what Element Call asked for")
      assert.deepEqual(notified.requested, widgetAsked)
      assert.deepEqual(notified.approved, table.filter(([, d]) => d === "approved").map(([c]) => c))
      const info = await page.host((h) => h.info())
      assert.equal(info.phase, "ready")
      assert.sameMembers([...info.denied], table.filter(([, d]) => d === "denied").map(([c]) => c))
      // One prompt, holding what our policy left to the approver (the page approves all of it).
      const prompts = await page.host((h) => h.prompts)
      assert.lengthOf(prompts, 1)
      assert.includeMembers(table.map(([c]) => c), [...prompts[0]!])
    })

    it("update_state: Element Call receives the room's state and acknowledges it", async () => {
      const update = await vi.waitFor(async () => {
        const [first] = (await hostLog(page)).filter((e) => e.kind === "request" && e.action === "update_state")
        assert.isDefined(first, withConsole(page, "no update_state yet"))
        return first
      })
      const state = (update.data as { state: ReadonlyArray<{ type: string; state_key: string; room_id: string }> }).state
      assert.sameMembers(state.map((e) => `${e.type}|${e.state_key}`), ["m.room.create|", `m.room.member|${port.userId}`, "m.room.name|"])
      assert.isTrue(state.every((e) => e.room_id === roomId))
      await vi.waitFor(async () => assert.isTrue((await hostLog(page)).some((e) => e.kind === "reply" && e.action === "update_state")))
    })

    it("shows its lobby with a Join call button", async () => {
      await page.frame.getByRole("button", { name: "Join call" }).waitFor({ timeout: 20_000 })
      assert.isTrue(await page.frame.getByRole("button", { name: "Join call" }).isEnabled())
      assert.equal((await membershipState()).status, 404, "not in the call before joining")
    })

    it("Join call: its delayed leave is scheduled, then its membership is in the room's state", async () => {
      const joined = await joinCall(page)
      delayId = joined.delayId
      assert.deepInclude(joined.member, { application: "m.call", scope: "m.room", device_id: port.deviceId, membershipID: `${port.userId}:${port.deviceId}` })
      assert.deepInclude(joined.member["foci_preferred"] as ReadonlyArray<object>, { type: "livekit", livekit_service_url: jwt.url, livekit_alias: roomId })
      // Sent through us: the delayed leave first (empty content, the same state key, the
      // configured delay), then the join.
      assert.deepEqual(joined.leave.data, { type: MEMBER, state_key: ownStateKey(), content: {}, room_id: roomId, delay: DELAYED_LEAVE.delay_ms })
      assert.isString(delayId)
      assert.deepInclude(joined.join.data as object, { type: MEMBER, state_key: ownStateKey(), room_id: roomId })
      const joinId = (joined.join.response as { event_id?: string }).event_id
      assert.isString(joinId)
      // Its membership comes back to it as a state change (our sync, update_state).
      await vi.waitFor(async () => {
        const updates = (await hostLog(page)).filter((e) => e.kind === "request" && e.action === "update_state")
        const states = updates.flatMap((e) => (e.data as { state: ReadonlyArray<{ event_id: string }> }).state)
        assert.isTrue(states.some((e) => e.event_id === joinId), "the join echoed")
      })
      // And it tells the room that a call started, pointing at its membership.
      const notification = await vi.waitFor(async () => {
        const [sent] = answersTo(await hostLog(page), "send_event").filter((e) => (e.data as { type?: string }).type === "org.matrix.msc4075.rtc.notification")
        assert.isDefined(sent)
        return sent
      })
      assert.deepInclude((notification.data as { content: object }).content, { notification_type: "notification", "m.relates_to": { event_id: joinId, rel_type: "m.reference" } })
      assert.isString((notification.response as { event_id?: string }).event_id)

      // The homeserver holds the leave, due after the delay.
      const scheduled = (await delayedEvents()).scheduled.find((d) => d.delay_id === delayId)
      assert.deepInclude(scheduled, { state_key: ownStateKey(), content: {}, delay: DELAYED_LEAVE.delay_ms })
      scheduledSince = scheduled!.running_since

      // Its LiveKit token: Element Call's OpenID token, from us, checked at the homeserver as alice's.
      const issued = jwt.requests.filter((r) => "user" in r.outcome)
      assert.isNotEmpty(issued)
      assert.deepEqual(issued[0]!.outcome, { user: port.userId, room: roomId })
      assert.isEmpty(jwt.requests.filter((r) => "refused" in r.outcome))
    })

    it("keeps the leave from firing: update_delayed_event restarts it at the homeserver", async () => {
      await vi.waitFor(
        async () => {
          const restarts = answersTo(await hostLog(page), "org.matrix.msc4157.update_delayed_event").filter((e) => (e.data as { action?: string }).action === "restart")
          assert.isNotEmpty(restarts, withConsole(page, "no restart yet"))
          for (const restart of restarts) assert.deepEqual(restart, { kind: "answer", action: "org.matrix.msc4157.update_delayed_event", data: { delay_id: delayId, action: "restart" }, response: {} })
        },
        { timeout: 15_000 }
      )
      // Restarted at the homeserver after the first schedule would have fired: alice is still in.
      await vi.waitFor(
        async () => assert.isAbove((await delayedEvents()).scheduled.find((d) => d.delay_id === delayId)?.running_since ?? 0, scheduledSince + DELAYED_LEAVE.delay_ms),
        { timeout: 20_000 }
      )
      assert.equal((await membershipState()).content["application"], "m.call", "still in the call")
    })

    it("hang up: the leave is sent at once (update_delayed_event send); Element Call asks to be closed, and is", async () => {
      await page.frame.getByRole("button", { name: "End call" }).click()
      await vi.waitFor(async () => assert.deepEqual((await membershipState()).content, {}, withConsole(page, "still a member")), { timeout: 15_000 })
      // The homeserver may show the leave a moment before our answer reaches Element Call.
      await vi.waitFor(async () => {
        const sent = answersTo(await hostLog(page), "org.matrix.msc4157.update_delayed_event").filter((e) => (e.data as { action?: string }).action === "send")
        assert.deepEqual(sent.map((e) => [e.data, e.response]), [[{ delay_id: delayId, action: "send" }, {}]])
      })
      assert.deepInclude((await delayedEvents()).finalised.find((f) => f.delayed_event.delay_id === delayId), { outcome: "send", reason: "action" })
      // Its last word on hanging up: asking the client to close it, which the page does.
      await vi.waitFor(async () => assert.equal((await page.host((h) => h.info())).phase, "closed", withConsole(page, "not closed")), { timeout: 10_000 })
      assert.deepEqual(answersTo(await hostLog(page), "io.element.close").map((e) => e.response), [{}])
      assert.equal(await page.page.locator(`iframe[name=${WIDGET_FRAME}]`).count(), 0, "the frame is gone")
    })

    it("the client's hooks heard what a client hears: its mute state, join, always-on-screen on and off, close", async () => {
      const calls = await page.host((h) => h.clientCalls)
      assert.deepEqual(
        CLIENT_CALLS.map(([hook]) => [hook, calls.filter((c) => c.hook === hook).map((c) => c.data)]),
        CLIENT_CALLS.map(([hook, data]) => [hook, data])
      )
      assert.sameMembers([...new Set(calls.map((c) => c.hook))], CLIENT_CALLS.map(([hook]) => hook), "nothing else")
      assert.deepEqual(answersTo(await hostLog(page), "set_always_on_screen").map((e) => e.response), [{ success: true }, { success: true }])
    })

    it("every request we do not serve is the table's, each answered with an error", async () => {
      const answers = (await hostLog(page)).filter((e) => e.kind === "answer")
      const describeAnswer = (e: HostLogEntry) => {
        const error = errorOf(e)
        return error === undefined ? "served" : `error ${error.code}: ${error.message}`
      }
      const rows = new Map<string, number>()
      for (const e of answers) rows.set(`${e.action}: ${describeAnswer(e)}`, (rows.get(`${e.action}: ${describeAnswer(e)}`) ?? 0) + 1)
      const table = ["Element Call's requests and our answers:", ...[...rows].map(([row, count]) => `  ${row} (×${count})`)].join("\n")
      console.log(table)
      const failed = answers.filter((e) => errorOf(e) !== undefined)
      const unserved = new Map(failed.map((e) => [e.action, errorOf(e)!.code] as const))
      assert.sameDeepMembers([...unserved], UNSERVED.map(([action, code]) => [action, code]), `${table}\n${JSON.stringify(failed, null, 1)}`)
    })

    afterAll(async () => {
      await page.page.close()
    })
  })

  it("closed mid-call: nothing keeps the delayed leave alive, and the homeserver sends it when the delay runs out", async () => {
    const page = await host.open(roomId)
    await page.frame.getByRole("button", { name: "Join call" }).waitFor({ timeout: 20_000 })
    const { delayId } = await joinCall(page)
    await page.host((h) => h.closeWidget())
    assert.equal((await page.host((h) => h.info())).phase, "closed")
    const restartsBefore = answersTo(await hostLog(page), "org.matrix.msc4157.update_delayed_event").length
    await vi.waitFor(async () => assert.deepEqual((await membershipState()).content, {}), { timeout: DELAYED_LEAVE.delay_ms + 10_000, interval: 250 })
    // Sent by the homeserver because the delay ran out, not by anyone's request.
    assert.deepInclude((await delayedEvents()).finalised.find((f) => f.delayed_event.delay_id === delayId), { outcome: "send", reason: "delay" })
    assert.equal(answersTo(await hostLog(page), "org.matrix.msc4157.update_delayed_event").length, restartsBefore, "nothing from the closed widget")
    await page.page.close()
  }, 40_000)

  describe("in an encrypted room, with Bob already in the call", () => {
    const bobErrors: Array<unknown> = []
    const toBob: Array<HomeserverUpdate & { _tag: "ToDevice" }> = []
    let bob: MatrixHomeserver
    let encryptedRoom: string

    beforeAll(async () => {
      await hs.ensureUser("bob", "bob-secret")
      bob = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "bob", password: "bob-secret" }, onError: (e) => bobErrors.push(e) })
      stops.push(() => bob.stop())
      bob.subscribe((update) => void (update._tag === "ToDevice" && toBob.push(update)))
      const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, {
        method: "POST",
        headers: { authorization: `Bearer ${reader.accessToken}` },
        body: JSON.stringify({
          name: "Encrypted call room",
          preset: "private_chat",
          invite: [bob.userId],
          initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
          // Anyone in the room may say they are in its call.
          power_level_content_override: { events: { [MEMBER]: 0 } }
        })
      })
      encryptedRoom = ((await created.json()) as { room_id: string }).room_id
      await bob.http.request({ method: "POST", path: `/_matrix/client/v3/rooms/${encodeURIComponent(encryptedRoom)}/join`, body: {} })
      const synced = bob.nextSync()
      bob.start()
      await synced
      // Bob's membership as Element Call writes one, naming his device (whose keys the homeserver has).
      await Effect.runPromise(
        bob.sendEvent({
          _tag: "SendEvent",
          roomId: encryptedRoom,
          type: MEMBER,
          stateKey: `_${bob.userId}_${bob.deviceId}_m.call`,
          content: {
            application: "m.call",
            call_id: "",
            scope: "m.room",
            device_id: bob.deviceId,
            membershipID: `${bob.userId}:${bob.deviceId}`,
            expires: 14_400_000,
            "m.call.intent": "video",
            focus_active: { type: "livekit", focus_selection: "multi_sfu" },
            foci_preferred: [{ type: "livekit", livekit_service_url: jwt.url, livekit_alias: encryptedRoom }]
          }
        })
      )
      await port.nextSync()
    }, 30_000)

    it("Element Call's media keys reach Bob's device as encrypted to-device messages", async () => {
      const page = await host.open(encryptedRoom)
      await page.frame.getByRole("button", { name: "Join call" }).waitFor({ timeout: 20_000 })
      await joinCall(page, encryptedRoom)
      const keys = await vi.waitFor(
        () => {
          const [first] = toBob.filter((u) => u.event.type === "io.element.call.encryption_keys")
          assert.isDefined(first, withConsole(page, "no key at Bob's yet"))
          return first
        },
        { timeout: 20_000 }
      )
      // Decrypted by Bob's own device: it arrived as m.room.encrypted, from Alice.
      assert.deepInclude(keys.event, { sender: port.userId, encrypted: true })
      const content = keys.event.content as { room_id?: string; keys?: { key?: unknown; index?: unknown }; member?: { claimed_device_id?: string } }
      assert.equal(content.room_id, encryptedRoom)
      assert.isString(content.keys?.key)
      assert.isNumber(content.keys?.index)
      assert.equal(content.member?.claimed_device_id, port.deviceId)
      // Element Call asked us to encrypt it, for Bob's device only.
      // (Bob may have it a moment before our answer reaches Element Call.)
      const sends = await vi.waitFor(async () => {
        const answered = answersTo(await hostLog(page), "send_to_device").filter((e) => (e.data as { type?: string }).type === "io.element.call.encryption_keys")
        assert.isNotEmpty(answered)
        return answered
      })
      for (const send of sends) {
        const data = send.data as { encrypted: boolean; messages: Record<string, Record<string, unknown>> }
        assert.isTrue(data.encrypted)
        assert.deepEqual(Object.keys(data.messages), [bob.userId])
        assert.deepEqual(Object.keys(data.messages[bob.userId]!), [bob.deviceId])
        assert.deepEqual(send.response, {})
      }
      console.log("at Bob's device:", JSON.stringify(keys.event))
      assert.isEmpty(bobErrors)
      assert.isEmpty(portErrors, "Alice's port had every key it needed")
      await page.frame.getByRole("button", { name: "End call" }).click()
      await vi.waitFor(async () => assert.deepEqual((await membershipState(encryptedRoom)).content, {}), { timeout: 15_000 })
      await page.page.close()
    }, 60_000)
  })
})
