import type { Server } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * Starts `server` listening and resolves with the bound port and the `host:port` authority for
 * URLs (IPv6 hosts bracketed); rejects with the listen error (EADDRINUSE, EACCES…).
 *
 * @example const { authority } = await listen(server, 0, "127.0.0.1") // "127.0.0.1:40123"
 */
export const listen = async (server: Server, port: number, host: string): Promise<{ readonly port: number; readonly authority: string }> => {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const bound = (server.address() as AddressInfo).port
  return { port: bound, authority: `${host.includes(":") ? `[${host}]` : host}:${bound}` }
}
