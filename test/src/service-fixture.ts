/**
 * What the `widgethost serve` end-to-end files share: services and temporary directories that
 * are cleaned up after each test, configuration files, a scripted websocket widget, and plain
 * HTTP calls to the admin API and the embedded homeserver. One module, so that the files split
 * by concept (hosting, accounts, bad input) can run on separate workers without copying setup.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach } from "vitest"
import WebSocket from "ws"
import { type ReadyLine, type ServiceProcess, startService } from "./service-process.ts"

export interface ServiceFixture {
  /** A fresh directory, removed after the test. */
  readonly tempDir: () => string
  /** `startService(args)`, killed (SIGKILL if still running) after the test. */
  readonly start: (args: string[]) => ServiceProcess
  /** Writes `config` as `widgethost.json` in a fresh temporary directory; returns its path. */
  readonly writeConfig: (config: unknown) => string
}

/**
 * Call once at the top of a test file: registers the `afterEach` that kills what the test started
 * and removes its directories.
 *
 * @example const { start, tempDir, writeConfig } = useServiceFixture()
 */
export const useServiceFixture = (): ServiceFixture => {
  const services: ServiceProcess[] = []
  const dirs: string[] = []
  afterEach(async () => {
    for (const service of services.splice(0)) await service.kill()
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), "widgethost-service-"))
    dirs.push(dir)
    return dir
  }
  const start = (args: string[]) => {
    const service = startService(args)
    services.push(service)
    return service
  }
  const writeConfig = (config: unknown) => {
    const file = join(tempDir(), "widgethost.json")
    writeFileSync(file, JSON.stringify(config))
    return file
  }
  return { tempDir, start, writeConfig }
}

/** A scripted websocket widget: answers the host's requests, collects what it is sent. */
export const connectWidget = async (url: string, capabilities: string[]) => {
  const wsUri = decodeURIComponent(/[#&]ws=([^&]+)/.exec(url)![1]!)
  const socket = new WebSocket(wsUri)
  const received: Array<Record<string, unknown>> = []
  const waiters: Array<() => void> = []
  socket.on("message", (data) => {
    // A Buffer: the socket's binaryType is the default, "nodebuffer".
    const message = JSON.parse((data as Buffer).toString()) as Record<string, unknown>
    received.push(message)
    if (message.api === "toWidget" && !("response" in message)) {
      const response = message.action === "capabilities" ? { capabilities } : message.action === "supported_api_versions" ? { supported_versions: ["0.0.2"] } : {}
      socket.send(JSON.stringify({ ...message, response }))
    }
    for (const waiter of waiters.splice(0)) waiter()
  })
  await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)))
  const widgetId = "chat"
  // As matrix-widget-api's WidgetApi does: versions first, then content_loaded, which starts negotiation (MSC3009).
  socket.send(JSON.stringify({ api: "fromWidget", widgetId, requestId: "hello", action: "supported_api_versions", data: {} }))
  socket.send(JSON.stringify({ api: "fromWidget", widgetId, requestId: "loaded", action: "content_loaded", data: {} }))
  const waitFor = async (predicate: (m: Record<string, unknown>) => boolean, ms = 15_000) => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = received.find(predicate)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(received.map((m) => m.action))}`)
      await new Promise<void>((resolve) => {
        waiters.push(resolve)
        setTimeout(resolve, 200)
      })
    }
  }
  return { socket, received, waitFor }
}

/** A call to the service's admin API with the ready line's bearer token. */
export const admin = async (ready: ReadyLine, path: string, init: RequestInit = {}) => {
  const response = await fetch(`${ready.ready.admin_url.replace(/\/?(\?.*)?$/, "")}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ready.ready.admin_token}`, "content-type": "application/json", ...(init.headers ?? {}) }
  })
  return { status: response.status, body: (await response.json()) as unknown }
}

/** A client-server API call (paths without `/_matrix/` are under `/_matrix/client/v3`). */
export const matrixCall = async (base: string, method: string, path: string, body?: unknown, token?: string) => {
  const response = await fetch(`${base}${path.startsWith("/_matrix/") ? "" : "/_matrix/client/v3"}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** `matrixCall`'s body alone. */
export const matrix = async (base: string, method: string, path: string, body?: unknown, token?: string) => (await matrixCall(base, method, path, body, token)).body
