import { existsSync } from "node:fs"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { dirname, join } from "node:path"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { type Browser, chromium, type Page } from "playwright-core"
import { afterAll, beforeAll, describe, it, vi, assert } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { type PortBridge, startPortBridge } from "../src/port-bridge/server.ts"
import { type FakeLivekitJwtService, startFakeLivekitJwtService } from "../src/fake-livekit-jwt.ts"
import { serveStaticFiles, type StaticFiles } from "../src/static-files.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
const ELEMENT_CALL_DIST = join(dirname(createRequire(import.meta.url).resolve("@element-hq/element-call-embedded/package.json")), "dist")

describe.skipIf(!existsSync(CHROMIUM))("Element Call", () => {
  let browser: Browser
  let page: Page
  let hs: EmbeddedHomeserver
  let port: MatrixHomeserver
  let bridge: PortBridge
  let jwt: FakeLivekitJwtService
  let ec: StaticFiles
  let hostServer: Server
  let roomId: string
  const consoleLines: Array<string> = []

  beforeAll(async () => {
    jwt = await startFakeLivekitJwtService({ homeserver: () => ({ baseUrl: hs.baseUrl, serverName: hs.serverName }) })
    hs = await startEmbeddedHomeserver({ rtcTransports: [{ type: "livekit", livekit_service_url: jwt.url }] })
    const alice = await hs.ensureUser("alice", "alice-secret")
    const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: { authorization: `Bearer ${alice.accessToken}` }, body: JSON.stringify({ name: "Call room", preset: "private_chat" }) })
    roomId = ((await created.json()) as { room_id: string }).room_id
    port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" } })
    bridge = await startPortBridge(port)
    ec = await serveStaticFiles(ELEMENT_CALL_DIST)
    const script = await build({
      entryPoints: [fileURLToPath(new URL("../src/element-call/host-page.ts", import.meta.url))],
      bundle: true, write: false, format: "esm", platform: "browser", target: "es2022",
      conditions: ["@widgethost/source", "module"],
      define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
      logLevel: "silent"
    })
    const html = `<!doctype html><meta charset="utf-8"><body><script type="module">${script.outputFiles[0]!.text.replaceAll("</script", "<\\/script")}</script></body>`
    hostServer = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(html))
    await new Promise<void>((resolve) => hostServer.listen(0, "127.0.0.1", resolve))
    const hostUrl = `http://127.0.0.1:${(hostServer.address() as AddressInfo).port}`
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } })
    page.on("console", (m) => consoleLines.push(`[${m.type()}] ${m.text()}`))
    page.on("pageerror", (e) => consoleLines.push(`[pageerror] ${e.message}`))
    const q = new URLSearchParams({ bridge: bridge.url, widget: `${ec.url}/index.html`, room: roomId, homeserver: hs.baseUrl })
    await page.goto(`${hostUrl}/?${q}`)
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await new Promise((r) => hostServer?.close(r))
    await ec?.close()
    await bridge?.close()
    await port?.stop()
    await hs?.close()
    await jwt?.close()
  })

  it("explore", async () => {
    const frame = page.frameLocator("iframe[name=element-call]")
    try {
      await frame.getByRole("button", { name: "Join call" }).waitFor({ timeout: 30_000 })
    } finally {
      await page.screenshot({ path: "/tmp/ecshots/lobby.png" })
      const hostLog = await page.evaluate(() => (window as any).__host?.log)
      console.log(JSON.stringify(hostLog, null, 1).slice(0, 20000))
      console.log(consoleLines.filter((l) => !l.includes("[debug]")).join("\n").slice(0, 20000))
      console.log(JSON.stringify(ec.requested.filter((r) => r.status !== 200)))
    }
    await frame.getByRole("button", { name: "Join call" }).click()
    await vi.waitFor(() => assert.isAbove(jwt.requests.length, 0), { timeout: 20_000 }).catch(() => {})
    await new Promise((r) => setTimeout(r, 8000))
    await page.screenshot({ path: "/tmp/ecshots/joined.png" })
    const hostLog = await page.evaluate(() => (window as any).__host?.log)
    console.log(JSON.stringify(hostLog.slice(-40), null, 1).slice(0, 20000))
    console.log(JSON.stringify(jwt.requests, null, 1), jwt.otherHits)
  }, 60_000)
})
