/**
 * Interop: `npm start` as a new user runs it, in headless Chromium. The service starts in an empty
 * data directory on free ports; the chat widget's link from its ready line opens in the browser
 * and waits for approval; the console (its link and token from the ready line too) approves the
 * prompt; `widgethost users add bob` makes a second account, whose message appears in the widget;
 * the widget answers, bob reads the answer; the console shows the session's log. Each page is
 * checked for horizontal overflow at 1280 and 800 px, and screenshotted (into the temp data
 * directory, or `WIDGETHOST_SCREENSHOTS=dir` to keep them). The times from `npm start` to the ready
 * line and to bob's message on screen are printed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import type { ReadyLine } from "@widgethost/service"
import { overflowsAt as overflowsIn } from "../src/page-overflow.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const root = join(import.meta.dirname, "..", "..")

/** `npm …` in its own process group, so stopping it stops npm, sh and the service under them. */
const npm = (args: ReadonlyArray<string>) => {
  const child = spawn("npm", args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], detached: true })
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { child, exited, output: () => ({ stdout, stderr }) }
}

const firstLine = (child: ChildProcess, output: () => { stdout: string; stderr: string }, exited: Promise<number | null>) =>
  new Promise<string>((resolve, reject) => {
    const check = () => {
      const { stdout } = output()
      if (stdout.includes("\n")) resolve(stdout.split("\n")[0]!)
    }
    child.stdout!.on("data", check)
    void exited.then((code) => reject(new Error(`npm exited ${code} before its first line: ${output().stderr}`)))
  })

/** Nothing wider than the window: the page does not scroll sideways, and no card or section is wider than itself. */
const overflowsAt = (page: Page, width: number) => overflowsIn(page, width, "section, .card, li, header, form, td, #homeserver dl, #homeserver dd")

describe("npm start → the demo chat widget and the console in Chromium", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "widgethost-demo-"))
  const service = npm(["start", "--silent", "--", "--data-dir", dataDir])
  const started = Date.now()
  let ready: ReadyLine["ready"]
  let readyMs = 0
  let browser: Browser
  let chat: Page
  let consolePage: Page
  const problems: string[] = []

  const watch = (page: Page, name: string) => {
    page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`))
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`${name}: console: ${message.text()}`)
    })
  }

  beforeAll(async () => {
    ready = (JSON.parse(await firstLine(service.child, service.output, service.exited)) as ReadyLine).ready
    readyMs = Date.now() - started
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    // Stop the whole process group (npm, its shell, the service) and wait until none of it is
    // left: npm exits before the service under it has flushed its data directory.
    const groupAlive = () => {
      try {
        process.kill(-service.child.pid!, 0)
        return true
      } catch {
        return false
      }
    }
    const gone = async (ms: number) => {
      for (const until = Date.now() + ms; groupAlive() && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 100))
      return !groupAlive()
    }
    if (groupAlive()) {
      process.kill(-service.child.pid!, "SIGTERM")
      if (!(await gone(15_000))) {
        process.kill(-service.child.pid!, "SIGKILL")
        await gone(5_000)
      }
    }
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 300 })
  }, 30_000)

  it("the ready line links the demo widgets on the widget listener, with their websocket URIs", () => {
    const chatLink = ready.demo?.chat
    assert.match(chatLink ?? "", /^http:\/\/127\.0\.0\.1:\d+\/demo\/chat\.html#ws=ws%3A%2F%2F127\.0\.0\.1%3A\d+%2Fwidget%2F[A-Za-z0-9_-]{43}&widgetId=chat&/)
    assert.match(ready.demo?.call ?? "", /^http:\/\/127\.0\.0\.1:\d+\/demo\/call\.html#ws=/)
    assert.deepEqual(ready.widgets.map((w) => w.id).sort(), ["call", "chat"])
    assert.equal(new URL(chatLink!).port, new URL(decodeURIComponent(/#ws=([^&]+)/.exec(chatLink!)![1]!)).port, "the page is served by the widget listener")
  })

  it("the chat widget opens from its link, waits for approval, and is approved in the console", async () => {
    chat = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    watch(chat, "chat")
    const response = await chat.goto(ready.demo!.chat!)
    assert.equal(response?.status(), 200)
    assert.include(response?.headers()["content-security-policy"] ?? "", "script-src 'self'")
    await chat.locator("#status", { hasText: "waiting for approval" }).waitFor()

    consolePage = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    watch(consolePage, "console")
    await consolePage.goto(`${ready.admin_url}/?token=${encodeURIComponent(ready.admin_token)}`)
    const card = consolePage.locator("[data-approval-id]")
    await card.waitFor()
    // The prompt names the widget, where it comes from (its URL template, no token) and the page's origin.
    assert.equal(await card.locator(".widget-name").innerText(), "Demo chat")
    const pageOrigin = new URL(ready.demo!.chat!).origin
    const shownUrl = await card.locator(".widget-url").innerText()
    assert.isTrue(shownUrl.startsWith(`${pageOrigin}/demo/chat.html#ws=$matrix_websocket_uri&`), shownUrl)
    assert.equal(await card.locator(".widget-origin").innerText(), `origin: ${pageOrigin}`)
    await card.getByRole("button", { name: "Approve" }).click()
    await chat.locator("#status.ok").waitFor()
    assert.sameMembers(await chat.locator("#capabilities li.approved").allInnerTexts(), [
      "org.matrix.msc2762.receive.event:m.room.message",
      "org.matrix.msc2762.send.event:m.room.message"
    ])
  }, 60_000)

  it("bob (widgethost users add) writes in #demo and the widget shows it; the widget answers and bob reads the answer", async () => {
    const added = npm(["run", "--silent", "widgethost", "--", "users", "add", "bob", "--data-dir", dataDir])
    assert.equal(await added.exited, 0, added.output().stderr)
    const bob = JSON.parse(added.output().stdout.trim()) as { user_id: string; access_token: string; joined: string | null }
    assert.equal(bob.user_id, "@bob:localhost")
    assert.equal(bob.joined, ready.rooms[0])
    const room = encodeURIComponent(ready.rooms[0]!)
    const sent = await fetch(`${ready.homeserver}/_matrix/client/v3/rooms/${room}/send/m.room.message/t1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${bob.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ msgtype: "m.text", body: "hello from bob" })
    })
    assert.equal(sent.status, 200)
    const sentAt = Date.now()
    await chat.locator("#messages li", { hasText: "hello from bob" }).waitFor()
    const firstMessageMs = Date.now() - started
    const deliveryMs = Date.now() - sentAt
    assert.include(await chat.locator("#messages li", { hasText: "hello from bob" }).innerText(), "@bob:localhost")

    await chat.locator("#text").fill("hello bob, from the widget")
    await chat.locator("#send").click()
    await chat.locator("#messages li", { hasText: "hello bob, from the widget" }).waitFor()
    let bodies: string[] = []
    for (let i = 0; i < 50 && !bodies.includes("hello bob, from the widget"); i++) {
      const messages = await fetch(`${ready.homeserver}/_matrix/client/v3/rooms/${room}/messages?dir=b&limit=20`, { headers: { authorization: `Bearer ${bob.access_token}` } })
      const { chunk } = (await messages.json()) as { chunk: Array<{ sender: string; content: { body?: string } }> }
      bodies = chunk.filter((e) => e.sender === ready.user_id).map((e) => e.content.body ?? "")
      if (!bodies.includes("hello bob, from the widget")) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.include(bodies, "hello bob, from the widget")
    console.log(`demo timings: npm start → ready line ${readyMs} ms; → bob's message shown in the widget ${firstMessageMs} ms (includes the console approval and users add); bob's send → on screen ${deliveryMs} ms`)
  }, 60_000)

  it("the console shows the chat session's log, with the widget's send_event in it and its body hidden", async () => {
    const row = consolePage.locator("tr[data-session-id]", { hasText: "chat" })
    await row.waitFor()
    await row.getByRole("button", { name: "Log" }).click()
    await consolePage.locator("#log .entry", { hasText: "send_event" }).first().waitFor()
    const log = await consolePage.locator("#log").innerText()
    assert.include(log, '"content":{"io.widgethost.redacted":true')
    assert.notInclude(log, "hello bob, from the widget") // bodies only with --log-content
    assert.isTrue(await consolePage.locator("#log-redacted").isVisible())
  })

  it("the call widget: approved in the console, it sends a to-device ping to the host's own devices and receives it", async () => {
    const call = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    watch(call, "call")
    await call.goto(ready.demo!.call!)
    await call.locator("#status", { hasText: "waiting for approval" }).waitFor()
    const card = consolePage.locator("[data-approval-id]", { hasText: "Demo call" })
    await card.waitFor()
    await card.getByRole("button", { name: "Approve" }).click()
    await call.locator("#status.ok").waitFor()
    await call.locator("#turn", { hasText: "offers no TURN server" }).waitFor() // none configured here
    await call.locator("#device").fill("*")
    await call.locator("#text").fill("ping from the call widget")
    await call.locator("#send").click()
    await call.locator("#sent li", { hasText: "ping from the call widget" }).waitFor()
    await call.locator("#received li", { hasText: "ping from the call widget" }).waitFor()
    assert.include(await call.locator("#received li").first().innerText(), ready.user_id)
    assert.deepEqual(await overflowsAt(call, 800), [])
    await call.close()
  }, 60_000)

  it("nothing overflows at 1280 or 800 px: chat widget and console (with its homeserver health filled in)", async () => {
    // The health section is filled in: the sync connection up, its lag and retries shown.
    await consolePage.locator('#sync-health [data-sync-state="connected"]').waitFor()
    assert.match(await consolePage.locator('#sync-health dd[data-fact="Last sync"]').innerText(), / ago$/)
    assert.match(await consolePage.locator('#sync-health dd[data-fact="Retries"]').innerText(), /after backoff/)
    assert.equal(await consolePage.locator('#sync-health dd[data-fact="Waiting for keys"]').innerText(), "0")
    for (const width of [1280, 800]) {
      for (const [name, page] of [["chat", chat], ["console", consolePage]] as const) {
        assert.deepEqual(await overflowsAt(page, width), [], `${name} at ${width} px`)
        await page.screenshot({ path: join(process.env["WIDGETHOST_SCREENSHOTS"] ?? dataDir, `${name}-${width}.png`), fullPage: true })
      }
    }
    assert.deepEqual(problems, [])
  })

  it("blocking the chat widget in the console closes it, and its URI is refused from then on", async () => {
    consolePage.once("dialog", (dialog) => void dialog.accept())
    await consolePage.locator('[data-widget-id="chat"]').getByRole("button", { name: "Block" }).click()
    await consolePage.locator('[data-widget-id="chat"] .blocked').waitFor()
    await chat.locator("#status.bad").waitFor()
    const uri = decodeURIComponent(/#ws=([^&]+)/.exec(ready.demo!.chat!)![1]!)
    const refused = await chat.evaluate(
      (target) =>
        new Promise<string>((resolve) => {
          const socket = new WebSocket(target)
          socket.onopen = () => resolve("open")
          socket.onerror = () => resolve("refused")
        }),
      uri
    )
    assert.equal(refused, "refused")
  })
})
