/**
 * Serves a directory of static files on 127.0.0.1 (its own origin), with the content types a
 * browser insists on for modules, WebAssembly and workers. Paths outside the directory are 404.
 * `replace` gives some paths other bodies (a deployment's own `config.json`, say).
 */
import { createReadStream } from "node:fs"
import { stat } from "node:fs/promises"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { extname, join, normalize, sep } from "node:path"

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
  ".tflite": "application/octet-stream"
}

export interface StaticFiles {
  readonly url: string
  /** Every path requested, in order (what the page loaded, and what it missed). */
  readonly requested: ReadonlyArray<{ readonly path: string; readonly status: number }>
  close(): Promise<void>
}

export const serveStaticFiles = async (root: string, replace: Readonly<Record<string, string>> = {}): Promise<StaticFiles> => {
  const requested: Array<{ path: string; status: number }> = []
  const base = normalize(root + sep)
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://static").pathname)
    const file = normalize(join(base, path === "/" ? "index.html" : path))
    const refuse = () => {
      requested.push({ path, status: 404 })
      res.writeHead(404, { "content-type": "text/plain" }).end("not found")
    }
    const replacement = replace[path]
    if (replacement !== undefined) {
      requested.push({ path, status: 200 })
      return void res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(replacement)
    }
    if (!file.startsWith(base)) return refuse()
    stat(file).then(
      (info) => {
        if (!info.isFile()) return refuse()
        requested.push({ path, status: 200 })
        res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "content-length": info.size })
        createReadStream(file).pipe(res)
      },
      () => refuse()
    )
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requested,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
