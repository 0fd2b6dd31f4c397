/**
 * The Node end of the port bridge: serves one `HomeserverPort` (typically `connectHomeserver`'s)
 * over HTTP on 127.0.0.1 to a page that runs the engine, in the format `protocol.ts` describes.
 * Any origin may call it (the page is on another origin); it is a test tool on loopback.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { HomeserverError, type HomeserverPort } from "@widgethost/core"
import { Cause, Effect, Exit, Option } from "effect"
import { type BridgedMethod, failureOf, fromWire, isBridgedMethod, toWire } from "./protocol.ts"

export interface BridgedCall {
  readonly method: BridgedMethod
  readonly args: ReadonlyArray<unknown>
  /** What the page was answered: the value, or the failure. */
  readonly outcome: { readonly value: unknown } | { readonly failure: ReturnType<typeof failureOf> }
}

export interface PortBridge {
  readonly url: string
  /** Every call the page made, in the order they were answered. */
  readonly calls: ReadonlyArray<BridgedCall>
  close(): Promise<void>
}

const CORS = { "access-control-allow-origin": "*", "access-control-allow-methods": "GET, POST, OPTIONS", "access-control-allow-headers": "content-type" }

const json = (res: ServerResponse, status: number, body: unknown) => {
  const text = toWire(body)
  res.writeHead(status, { ...CORS, "content-type": "application/json" }).end(text)
}

const readJson = async (req: IncomingMessage): Promise<unknown> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return fromWire(Buffer.concat(chunks).toString("utf8") || "[]")
}

/** Runs one port method with the page's arguments; a throw or defect becomes a HomeserverError. */
const invoke = async (port: HomeserverPort, method: BridgedMethod, args: ReadonlyArray<unknown>) => {
  const fn = port[method] as (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown, HomeserverError>
  const exit = await Effect.runPromiseExit(Effect.suspend(() => fn(...args)))
  // An undefined value (a void method, no account data) leaves `value` out of the JSON.
  if (Exit.isSuccess(exit)) return { value: exit.value }
  const error = Option.getOrUndefined(Cause.findErrorOption(exit.cause))
  return { failure: failureOf(error instanceof HomeserverError ? error : new HomeserverError({ message: `port.${method} died: ${String(exit.cause)}` })) }
}

export const startPortBridge = async (port: HomeserverPort): Promise<PortBridge> => {
  const calls: Array<BridgedCall> = []
  const streams = new Set<ServerResponse>()
  // One subscription for all pages; each update goes to every open stream.
  const unsubscribe = port.subscribe((update) => {
    const frame = `data: ${JSON.stringify(update)}\n\n`
    for (const stream of streams) stream.write(frame)
  })

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://bridge").pathname
    if (req.method === "OPTIONS") return void res.writeHead(204, CORS).end()
    if (req.method === "GET" && path === "/whoami") return json(res, 200, { userId: port.userId, deviceId: port.deviceId })
    if (req.method === "GET" && path === "/updates") {
      res.writeHead(200, { ...CORS, "content-type": "text/event-stream", "cache-control": "no-store" })
      // A first comment flushes the headers, so the page's EventSource opens now.
      res.write(": open\n\n")
      streams.add(res)
      req.on("close", () => streams.delete(res))
      return
    }
    const method = /^\/call\/([A-Za-z]+)$/.exec(path)?.[1]
    if (req.method !== "POST" || method === undefined || !isBridgedMethod(method)) return json(res, 404, { status: 404, errcode: "M_UNRECOGNIZED", error: `no such bridge route: ${req.method} ${path}` })
    readJson(req)
      .then(async (args) => {
        if (!Array.isArray(args)) return json(res, 400, { status: 400, errcode: "M_BAD_JSON", error: "the arguments must be a JSON array" })
        const outcome = await invoke(port, method, args)
        calls.push({ method, args, outcome })
        return "value" in outcome ? json(res, 200, outcome) : json(res, 502, outcome.failure)
      })
      .catch((e: unknown) => json(res, 400, { status: 400, errcode: "M_NOT_JSON", error: String(e) }))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    calls,
    close: async () => {
      unsubscribe()
      for (const stream of streams) stream.end()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
