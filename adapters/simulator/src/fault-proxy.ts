/**
 * A small HTTP proxy on 127.0.0.1 between the homeserver ports and the homeserver, for injecting
 * outages: for a window it refuses every request (the connection is cut, nothing reaches the
 * homeserver) or stalls it (held until the window ends, then forwarded). The test kit's holding
 * proxy (test/src) holds single requests by rule; this one is about time windows, and lives in the
 * simulator because `simulate --scenario` runs outside the test suite.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export type OutageMode = "refuse" | "stall"

export interface FaultProxy {
  readonly baseUrl: string
  /** Starts an outage now, for `ms`; resolves when it is over. */
  readonly outage: (mode: OutageMode, ms: number) => Promise<void>
  readonly counts: { refused: number; stalled: number; forwarded: number }
  readonly close: () => Promise<void>
}

export const startFaultProxy = async (upstream: string): Promise<FaultProxy> => {
  const target = new URL(upstream)
  const counts = { refused: 0, stalled: 0, forwarded: 0 }
  let mode: OutageMode | undefined
  let stalled: Array<() => void> = []
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    counts.forwarded++
    const out = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
        upstreamRes.pipe(res)
      }
    )
    out.on("error", () => req.socket.destroy())
    req.pipe(out)
  }
  const server = createServer((req, res) => {
    if (mode === "refuse") {
      counts.refused++
      req.socket.destroy()
      return
    }
    if (mode === "stall") {
      counts.stalled++
      req.pause()
      stalled.push(() => forward(req, res))
      return
    }
    forward(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    counts,
    outage: async (m, ms) => {
      mode = m
      await new Promise((resolve) => setTimeout(resolve, ms))
      mode = undefined
      const release = stalled
      stalled = []
      for (const go of release) go()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const go of stalled) go()
        stalled = []
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
