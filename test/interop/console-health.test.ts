/**
 * Interop: the console's "Homeserver health" in headless Chromium, over a real connection to the
 * embedded homeserver. Connected, it shows the sync state, the time since the last sync and the
 * backoff-free retry line; with the homeserver stopped it shows "retrying", network errors and
 * a wait counting down, and its long error text fits the window at 1280 and 800 px; restarted on
 * the same port, it shows "connected" again.
 */
import { existsSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { fromEffectPort } from "@widgethost/core/effect"
import { createEngine, type Engine } from "@widgethost/engine"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { type AdminServer, ApprovalQueue, engineAdminModel, HomeserverHealthRecorder, MessageLog, startAdminServer } from "@widgethost/service"
import { approveAll } from "@widgethost/testing"
import { overflowsAt as overflowsIn } from "../src/page-overflow.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const TOKEN = "console-health-token-0123456789"
const PASSWORD = "widgethost-password"

/** Nothing in the page wider than the window, nothing in the health section wider than itself. */
const overflowsAt = (page: Page, width: number) => overflowsIn(page, width, "section, #homeserver dl, #homeserver dd, #homeserver div")

describe.skipIf(!existsSync(CHROMIUM))("console homeserver health in Chromium ↔ admin API ↔ sync loop ↔ embedded homeserver", () => {
  let dataDir: string
  let hs: EmbeddedHomeserver
  let port: number
  let homeserver: MatrixHomeserver
  let engine: Engine
  let admin: AdminServer
  let browser: Browser
  let page: Page
  const problems: string[] = []
  const fact = (term: string) => page.locator(`#sync-health dd[data-fact="${term}"]`)

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "widgethost-console-health-"))
    hs = await startEmbeddedHomeserver({ dataDir: join(dataDir, "hs"), registration: "open" })
    port = Number(new URL(hs.baseUrl).port)
    await hs.createUser("widgethost", PASSWORD)
    const health = new HomeserverHealthRecorder(() => undefined)
    homeserver = await connectHomeserver({
      baseUrl: hs.baseUrl,
      auth: { user: "widgethost", password: PASSWORD },
      dataDir: join(dataDir, "account"),
      retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 40 },
      sync: { timeoutMs: 200, backoffBaseMs: 1_000, backoffMaxMs: 4_000 }
    })
    health.watch(() => homeserver.stats(), () => homeserver.syncHealth())
    engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: approveAll })
    admin = await startAdminServer({ token: TOKEN, model: engineAdminModel({ engine, widgets: () => [], approvals: new ApprovalQueue(), messages: new MessageLog(), homeserver: () => health.health() }) })
    homeserver.start()
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`))
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`)
    })
    await page.goto(`${admin.url}/?token=${encodeURIComponent(TOKEN)}`)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await admin?.close()
    engine?.stop()
    await homeserver?.stop()
    await hs?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  it("connected: the sync state, the last sync's age, no errors, nothing waiting for keys", async () => {
    await page.locator('[data-sync-state="connected"]').waitFor({ timeout: 15_000 })
    assert.match(await fact("Last sync").innerText(), /^\d+(\.\d)? (ms|s) ago$/)
    assert.equal(await fact("Errors").innerText(), "none")
    assert.match(await fact("Retries").innerText(), /^0 after backoff · 0 failed in a row · HTTP retries \d+$/)
    assert.equal(await fact("Waiting for keys").innerText(), "0")
    assert.equal(await page.locator("#undecryptable").innerText(), "Nothing undecryptable.")
  }, 30_000)

  it("the homeserver stopped: retrying, network errors, the wait counting down; it fits at 1280 and 800 px", async () => {
    await hs.close()
    await page.locator('[data-sync-state="retrying"]').waitFor({ timeout: 15_000 })
    await page.locator('#sync-health dd[data-fact="Retries"]', { hasText: "next try in" }).waitFor({ timeout: 15_000 })
    assert.match(await fact("Errors").innerText(), /^network \d+$/)
    assert.match(await fact("Last error").innerText(), /network: network error: GET \/_matrix\/client\/v3\/sync/)
    assert.match(await fact("Retries").innerText(), /\d+ failed in a row · next try in [\d.]+ (ms|s) \(wait [\d.]+ (ms|s)\)/)
    // The lag grows while nothing syncs (the section re-reads every 3 s).
    const ago = async () => Number(/^([\d.]+) s ago$/.exec(await fact("Last sync").innerText())?.[1] ?? "0")
    const before = await ago()
    await page.waitForFunction((b) => Number(/^([\d.]+) s ago$/.exec(document.querySelector('#sync-health dd[data-fact="Last sync"]')?.textContent ?? "")?.[1] ?? "0") > b, before, { timeout: 10_000 })
    for (const width of [1280, 800]) {
      assert.deepEqual(await overflowsAt(page, width), [], `console at ${width} px while retrying`)
      if (process.env["WIDGETHOST_SCREENSHOTS"] !== undefined) await page.screenshot({ path: join(process.env["WIDGETHOST_SCREENSHOTS"], `console-health-retrying-${width}.png`), fullPage: true })
    }
  }, 40_000)

  it("restarted on the same port: connected again, the errors kept as history", async () => {
    hs = await startEmbeddedHomeserver({ dataDir: join(dataDir, "hs"), registration: "open", port })
    await page.locator('[data-sync-state="connected"]').waitFor({ timeout: 20_000 })
    assert.match(await fact("Errors").innerText(), /^network \d+$/)
    assert.match(await fact("Retries").innerText(), /^[1-9]\d* after backoff · 0 failed in a row · HTTP retries \d+$/)
    for (const width of [1280, 800]) assert.deepEqual(await overflowsAt(page, width), [], `console at ${width} px`)
  }, 40_000)

  it("nothing went wrong in the page (no CSP violation, no script error)", () => {
    assert.deepEqual(problems, [])
  })
})
