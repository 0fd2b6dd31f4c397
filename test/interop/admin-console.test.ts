/**
 * Interop: the admin console page in headless Chromium, driving a real widget session. The widget
 * is a `ws` client on the real websocket transport (MSC3009: it makes first contact with
 * `content_loaded` and answers the engine's requests); the engine's approver is the approval
 * queue; the console page, served by the admin server, shows the prompt live over its event
 * stream, and a click on Approve reaches the widget as `notify_capabilities`.
 */
import { existsSync } from "node:fs"
import { createEngine, delegateSession, type Engine } from "@widgethost/engine"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it, vi } from "vitest"
import { WebSocket } from "ws"
import { type AdminServer, engineAdminModel, startAdminServer } from "@widgethost/service"
import { MessageLog } from "@widgethost/service"
import { ApprovalQueue } from "@widgethost/service"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import { makeInMemoryHomeserver } from "@widgethost/testing"
import { ROOM, widgetDefinition } from "@widgethost/testing"
import { fromEffectPort } from "@widgethost/core/effect"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const TOKEN = "console-token-0123456789abcdef"
const SEND = "org.matrix.msc2762.send.event:m.room.message"
const READ = "org.matrix.msc2762.receive.event:m.room.message"
const REACT = "org.matrix.msc2762.send.event:m.reaction"
const READ_REACTIONS = "org.matrix.msc2762.receive.event:m.reaction"

type Message = Record<string, unknown> & { readonly api?: string; readonly action?: string; readonly requestId?: string; readonly data?: unknown }

describe.skipIf(!existsSync(CHROMIUM))("admin console in Chromium ↔ approval queue ↔ engine ↔ websocket widget", () => {
  let browser: Browser
  let page: Page
  let engine: Engine
  let transport: WebsocketTransport
  let admin: AdminServer
  let ws: WebSocket
  const approvals = new ApprovalQueue()
  const log = new MessageLog()
  const inbox: Message[] = []
  const problems: string[] = []
  let sessionId = ""

  const sendToHost = (message: Message) => ws.send(JSON.stringify(message))
  const notified = () => inbox.filter((m) => m.action === "notify_capabilities" && !("response" in m)).map((m) => m.data)

  beforeAll(async () => {
    engine = createEngine({ homeserver: fromEffectPort(makeInMemoryHomeserver({ rooms: [ROOM] })), approver: approvals.approver })
    const widget = widgetDefinition({ id: "console-widget", name: "Console widget", waitForIframeLoad: false, transports: ["m.websockets"] })
    const model = engineAdminModel({
      engine,
      widgets: () => [{ id: widget.id, roomId: ROOM, name: "Console widget", transport: "m.websockets", url: widget.url }],
      approvals,
      messages: log
    })
    const notify = model.notify
    transport = await startWebsocketTransport()
    const { uri } = transport.register(widget.id, (send) => {
      const session = engine.openSession({
        widget,
        waitForIframeLoad: false,
        send: (message) => {
          log.record(session.sessionId, "out", message)
          notify({ kind: "message", sessionId: session.sessionId })
          send(message)
        }
      })
      sessionId = session.sessionId
      session.onClose(() => notify({ kind: "sessions" }))
      notify({ kind: "sessions" })
      // what the widget says, for the log; the session itself is fed by the transport
      return delegateSession(session, {
        receive: (raw) => {
          log.record(session.sessionId, "in", raw)
          notify({ kind: "message", sessionId: session.sessionId })
          session.receive(raw)
        }
      })
    })
    admin = await startAdminServer({
      token: TOKEN,
      model
    })

    // The widget: first contact, then answers every toWidget request as matrix-widget-api would.
    ws = new WebSocket(uri)
    ws.on("message", (data) => {
      const message = JSON.parse((data as Buffer).toString()) as Message
      inbox.push(message)
      if (message.api !== "toWidget" || "response" in message) return
      const response =
        message.action === "capabilities" ? { capabilities: [SEND, READ, REACT] } : message.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      sendToHost({ ...message, response })
    })
    await new Promise<void>((resolve, reject) => ws.once("open", () => resolve()).once("error", reject))
    sendToHost({ api: "fromWidget", widgetId: widget.id, requestId: "r0", action: "content_loaded", data: {} })
    await vi.waitFor(() => assert.equal(approvals.size, 1))

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    page = await browser.newPage()
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`)
    })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    ws?.terminate()
    await admin?.close()
    await transport?.close()
    engine?.stop()
  })

  it("without the token the console is refused", async () => {
    const stranger = await browser.newPage() // its failed load is logged, not a problem of the console page
    const response = await stranger.goto(`${admin.url}/`)
    assert.equal(response?.status(), 401)
    assert.equal(((await response?.json()) as { error?: { code?: string } }).error?.code, "Unauthorized")
    await stranger.close()
  })

  it("the console shows the pending prompt, with a ticked box per capability", async () => {
    const response = await page.goto(`${admin.url}/?token=${encodeURIComponent(TOKEN)}`)
    assert.equal(response?.status(), 200)
    await page.locator("#status.live").waitFor()
    const card = page.locator("[data-approval-id]")
    await card.waitFor()
    assert.equal(await card.getAttribute("data-approval-id"), approvals.pending()[0]?.id)
    assert.include(await card.innerText(), "console-widget")
    const boxes = card.locator("input[type=checkbox]")
    assert.deepEqual(await boxes.evaluateAll((inputs) => inputs.map((input) => [(input as HTMLInputElement).value, (input as HTMLInputElement).checked])), [
      [SEND, true],
      [READ, true],
      [REACT, true]
    ])
    await page.locator(`tr[data-session-id="${sessionId}"]`).waitFor()
    assert.include(await page.locator(`tr[data-session-id="${sessionId}"] .state`).innerText(), "negotiating")
  })

  it("untick one, click Approve: the widget gets notify_capabilities with the approved set", async () => {
    const card = page.locator("[data-approval-id]")
    await card.getByRole("checkbox", { name: REACT }).uncheck()
    await card.getByRole("button", { name: "Approve" }).click()
    await vi.waitFor(() => assert.deepEqual(notified(), [{ requested: [SEND, READ, REACT], approved: [SEND, READ] }]), { timeout: 10_000 })
    assert.equal(approvals.size, 0)
    assert.deepEqual(engine.sessions()[0]?.denied, [REACT])
    // the page follows: the card goes, the session is ready with its capabilities
    await page.locator("[data-approval-id]").waitFor({ state: "detached" })
    const row = page.locator(`tr[data-session-id="${sessionId}"]`)
    await vi.waitFor(async () => assert.equal(await row.locator(".state").innerText(), "ready"), { timeout: 10_000 })
    const approvedChips = await row.locator(".chips .approved").allInnerTexts()
    assert.deepEqual(approvedChips, [SEND, READ])
    assert.deepEqual(await row.locator(".chips .denied").allInnerTexts(), [REACT])
  })

  it("the message log of the session shows its traffic, live", async () => {
    await page.locator(`tr[data-session-id="${sessionId}"]`).getByRole("button", { name: "Log" }).click()
    await vi.waitFor(async () => assert.include(await page.locator("#log").innerText(), "toWidget notify_capabilities"), { timeout: 10_000 })
    sendToHost({ api: "fromWidget", widgetId: "console-widget", requestId: "live-1", action: "supported_api_versions", data: {} })
    await vi.waitFor(async () => assert.include(await page.locator("#log").innerText(), '"requestId":"live-1"'), { timeout: 10_000 })
  })

  it("the log hides bodies by default and filters by action, direction, errors and widget", async () => {
    const body = "a body the console must not show"
    sendToHost({ api: "fromWidget", widgetId: "console-widget", requestId: "say-1", action: "send_event", data: { type: "m.room.message", content: { msgtype: "m.text", body } } })
    sendToHost({ api: "fromWidget", widgetId: "console-widget", requestId: "peek-1", action: "read_events", data: { type: "m.room.topic", limit: 1 } })
    const entries = page.locator("#log .entry")
    await vi.waitFor(async () => assert.include(await page.locator("#log").innerText(), '"requestId":"peek-1","action":"read_events","data":{"type":"m.room.topic","limit":1},"response":{"error"'), { timeout: 10_000 })
    assert.notInclude(await page.locator("#log").innerText(), body)
    assert.include(await page.locator("#log").innerText(), '"content":{"io.widgethost.redacted":true')
    assert.isTrue(await page.locator("#log-redacted").isVisible())

    // what the widget sent about send_event: its request, and its answer to the host's echo of the event
    await page.locator("#log-direction").selectOption("in")
    await page.locator("#log-action").fill("send_event")
    const shown = () => entries.evaluateAll((nodes) => nodes.map((n) => `${n.getAttribute("data-direction")} ${n.querySelector("strong")?.textContent ?? ""}`))
    await vi.waitFor(async () => assert.deepEqual(await shown(), ["in fromWidget send_event", "in toWidget send_event response"]), { timeout: 10_000 })
    await page.locator("#log-direction").selectOption("")
    await page.locator("#log-action").fill("")
    await page.locator("#log-errors").check()
    await vi.waitFor(async () => assert.deepEqual(await entries.locator("strong").allInnerTexts(), ["fromWidget read_events error"]), { timeout: 10_000 })
    await page.locator("#log-errors").uncheck()
    await page.locator("#log-widget").selectOption("console-widget")
    await vi.waitFor(async () => assert.include(await page.locator("#log-session").innerText(), "widget console-widget"), { timeout: 10_000 })
    await vi.waitFor(async () => assert.include(await entries.first().innerText(), sessionId), { timeout: 10_000 })
    await page.locator("#log-widget").selectOption("")
  })

  it("a renegotiation prompt appears live; Deny denies it", async () => {
    sendToHost({ api: "fromWidget", widgetId: "console-widget", requestId: "r-more", action: "request_capabilities", data: { capabilities: [READ_REACTIONS] } })
    const card = page.locator("[data-approval-id]")
    await card.waitFor({ timeout: 10_000 })
    assert.include(await card.innerText(), READ_REACTIONS)
    await card.getByRole("button", { name: "Deny" }).click()
    await vi.waitFor(() => assert.deepEqual(notified().at(-1), { requested: [SEND, READ, REACT, READ_REACTIONS], approved: [SEND, READ] }), { timeout: 10_000 })
    await card.waitFor({ state: "detached" })
  })

  it("nothing went wrong in the page (no CSP violation, no script error)", () => {
    assert.deepEqual(problems, [])
  })
})
