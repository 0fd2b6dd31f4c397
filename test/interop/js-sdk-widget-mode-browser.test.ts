/**
 * matrix-js-sdk as a widget in Chromium (issue #20): its embedded client (`createRoomWidgetClient`
 * on matrix-widget-api's `WidgetApi`) in a cross-origin iframe, over real postMessage, hosted by
 * our engine in the host page that also frames Element Call (`../src/element-call/host-page.ts`).
 * The page's homeserver port is our HTTP port on the embedded homeserver, reached over the port
 * bridge. The widget reaches SYNCING, gets the room state through `update_state`, hears a live
 * message another account sends, reads history, sends a message and a state event that the other
 * account sees, exchanges clear to-device messages with it both ways, and watches TURN.
 * The Node twin of this test, over the websocket transport, is `js-sdk-widget-mode.test.ts`.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { CHROMIUM, type ElementCallHost, type HostPage, startWidgetHost } from "../src/element-call/host.ts"
import { WIDGET_FRAME } from "../src/element-call/widget-frame.ts"
import { type PortBridge, startPortBridge } from "../src/port-bridge/server.ts"
import { serveStaticFiles } from "../src/static-files.ts"

/** What the widget page keeps on `window.__widget` (see `widget-page.ts`). */
interface WidgetApi {
  readonly seen: {
    readonly syncStates: ReadonlyArray<string>
    readonly messages: ReadonlyArray<{ sender: string; body: string }>
    readonly toDevice: ReadonlyArray<{ type: string; sender: string; content: unknown }>
    readonly turnServers: ReadonlyArray<{ urls: ReadonlyArray<string>; username?: string }>
  }
  roomName(): string | undefined
  history(): Promise<ReadonlyArray<string | undefined>>
  sendMessage(body: string): Promise<unknown>
  setTopic(topic: string): Promise<unknown>
  ping(to: { userId: string; deviceId: string }, n: number): Promise<unknown>
}

const bundleWidgetPage = async () => {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("../src/js-sdk-widget/widget-page.ts", import.meta.url))],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    logLevel: "silent"
  })
  const script = result.outputFiles[0]?.text ?? ""
  return `<!doctype html><meta charset="utf-8"><title>js-sdk widget</title><body><script type="module">${script.replaceAll("</script", "<\\/script")}</script></body>`
}

const authed = (token: string) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" })
const TURN = { uris: ["turn:turn.example:3478?transport=udp"], sharedSecret: "turn-secret", ttlSeconds: 3600 }

describe.skipIf(!existsSync(CHROMIUM))("matrix-js-sdk in widget mode over postMessage, in Chromium", { timeout: 90_000 }, () => {
  const stops: Array<() => Promise<unknown> | void> = []
  let hs: EmbeddedHomeserver
  let port: MatrixHomeserver
  let bridge: PortBridge
  let host: ElementCallHost
  let page: HostPage
  let roomId: string
  let bob: { userId: string; accessToken: string; deviceId: string }

  beforeAll(async () => {
    hs = await startEmbeddedHomeserver({ registration: "open", turn: TURN })
    stops.push(() => hs.close())
    const alice = await hs.ensureUser("alice", "alice-secret")
    bob = await hs.ensureUser("bob", "bob-secret")
    const created = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: authed(alice.accessToken), body: JSON.stringify({ preset: "public_chat", name: "Widget room" }) })
    roomId = ((await created.json()) as { room_id: string }).room_id
    await fetch(`${hs.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { method: "POST", headers: authed(bob.accessToken), body: "{}" })
    await bobSays("before the widget")

    port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: { user: "alice", password: "alice-secret" }, sync: { timeoutMs: 1000 } })
    stops.push(() => port.stop())
    bridge = await startPortBridge(port)
    stops.push(() => bridge.close())
    const synced = port.nextSync()
    port.start()
    await synced

    const dir = mkdtempSync(join(tmpdir(), "js-sdk-widget-"))
    stops.push(() => rmSync(dir, { recursive: true, force: true }))
    const widget = await serveStaticFiles(dir, { "/index.html": await bundleWidgetPage() })
    host = await startWidgetHost({ bridge: bridge.url, homeserver: hs.baseUrl, widget, widgetPage: "/index.html" })
    stops.push(() => host.close())
    page = await host.open(roomId)
  }, 60_000)

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop()
  })

  const bobSays = (body: string) =>
    fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${Math.random()}`, { method: "PUT", headers: authed(bob.accessToken), body: JSON.stringify({ msgtype: "m.text", body }) })
  /** Runs `fn` on the widget page's `window.__widget` (and `arg`, as JSON); `fn` travels as source. */
  const inWidget = async <A, B = undefined>(fn: (widget: WidgetApi, arg: B) => A | Promise<A>, arg?: B): Promise<A> => {
    const frame = page.page.frame({ name: WIDGET_FRAME })
    if (frame === null) throw new Error("no widget frame")
    await frame.waitForFunction(() => "__widget" in window)
    return frame.evaluate<A>(`(${fn.toString()})(window.__widget, ${JSON.stringify(arg ?? null)})`)
  }
  const eventually = <A>(what: string, fn: () => Promise<A>) =>
    vi.waitFor(fn, { timeout: 20_000, interval: 100 }).catch((e: unknown) => {
      throw new Error(`${what}: ${String(e)}\n--- the page's console (last 30 lines):\n${page.console.slice(-30).join("\n")}`)
    })

  it("reaches SYNCING and gets the room's state through update_state", async () => {
    await eventually("SYNCING", async () => expect(await inWidget((w) => w.seen.syncStates)).toContain("SYNCING"))
    await eventually("the room's name", async () => expect(await inWidget((w) => w.roomName())).toBe("Widget room"))
  })

  it("hears a live message from another account and reads history", async () => {
    await bobSays("live")
    await eventually("bob's live message", async () => expect(await inWidget((w) => w.seen.messages)).toContainEqual({ sender: bob.userId, body: "live" }))
    expect(await inWidget((w) => w.history())).toContain("before the widget")
  })

  it("sends a message and a state event that the other account sees", async () => {
    await inWidget((w) => w.sendMessage("from the js-sdk widget in Chromium"))
    await inWidget((w) => w.setTopic("set by the browser widget"))
    const messages = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=20`, { headers: authed(bob.accessToken) })
    const chunk = ((await messages.json()) as { chunk: Array<{ type: string; sender: string; content: Record<string, unknown> }> }).chunk
    expect(chunk.filter((e) => e.type === "m.room.message" && e.sender === port.userId).map((e) => e.content["body"])).toEqual(["from the js-sdk widget in Chromium"])
    const topic = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic/`, { headers: authed(bob.accessToken) })
    expect(await topic.json()).toEqual({ topic: "set by the browser widget" })
  })

  it("exchanges clear to-device messages with the other account, both ways", async () => {
    await fetch(`${hs.baseUrl}/_matrix/client/v3/sendToDevice/org.example.ping/${Math.random()}`, {
      method: "PUT",
      headers: authed(bob.accessToken),
      body: JSON.stringify({ messages: { [port.userId]: { [port.deviceId]: { n: 1 } } } })
    })
    await eventually("bob's to-device message", async () => expect(await inWidget((w) => w.seen.toDevice)).toEqual([{ type: "org.example.ping", sender: bob.userId, content: { n: 1 } }]))
    const to = { userId: bob.userId, deviceId: bob.deviceId }
    await inWidget((w, bobsDevice) => w.ping(bobsDevice, 2), to)
    const bobSync = await fetch(`${hs.baseUrl}/_matrix/client/v3/sync?timeout=2000`, { headers: authed(bob.accessToken) })
    const events = ((await bobSync.json()) as { to_device?: { events: Array<unknown> } }).to_device?.events ?? []
    expect(events).toEqual([{ type: "org.example.ping", sender: port.userId, content: { n: 2 } }])
  })

  it("watches TURN: the homeserver's servers reach the js-sdk client", async () => {
    await eventually("TURN servers", async () => expect(await inWidget((w) => w.seen.turnServers)).not.toHaveLength(0))
    const [server] = await inWidget((w) => w.seen.turnServers)
    expect(server?.urls).toEqual(TURN.uris)
    // The embedded homeserver's shared-secret scheme: `<expiry>:<user>`.
    expect(server?.username).toMatch(new RegExp(`^\\d+:${port.userId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`))
  })
})
