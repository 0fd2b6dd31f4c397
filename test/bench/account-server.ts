/**
 * The account path's homeserver and Bob in their own process (`account-world.ts`, placement
 * "child process"): sets the world up, says `ready` with what Alice needs to connect, then sends
 * as the measuring process asks, until `close`.
 *
 * Run by `account-world.ts` only: `node --import ./test/bench/loader.mjs test/bench/account-server.ts '{"encrypted":false,"root":"/tmp/…"}'`.
 */
import { setUpHere, type FromServer, type ToServer } from "./account-world.ts"

const say = (m: FromServer) => process.send?.(m)

const { encrypted, root } = JSON.parse(process.argv[2] ?? "{}") as { encrypted: boolean; root: string }
try {
  const world = await setUpHere(encrypted, root)
  process.on("message", (m: ToServer) => {
    if (m.type === "send") void world.sendMany(m.prefix, m.count, m.inFlight).then((at) => say({ type: "sent", id: m.id, at }), (e: unknown) => say({ type: "failed", message: String(e) }))
    else if (m.type === "cpu") void world.serverCpuMicros().then((micros) => say({ type: "cpu", id: m.id, micros }))
    // Exit once the answer is out: a keep-alive socket of Bob's must not hold the process.
    else void world.close().then(() => process.send?.({ type: "closed", id: m.id } satisfies FromServer, () => process.exit(0)))
  })
  say({ type: "ready", world: { baseUrl: world.baseUrl, root: world.root, roomId: world.roomId, aliceUser: world.aliceUser, encrypted: world.encrypted } })
} catch (e) {
  say({ type: "failed", message: e instanceof Error ? (e.stack ?? e.message) : String(e) })
  process.exitCode = 1
  process.disconnect()
}
