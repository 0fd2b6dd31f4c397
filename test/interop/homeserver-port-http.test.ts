/**
 * The HTTP homeserver port (`connectHomeserver`, with its own E2EE) against the embedded
 * homeserver over real HTTP: every case of the shared port table (`test/src/homeserver-port-cases.ts`),
 * which the port over a matrix-js-sdk client runs too.
 */
import { afterEach, describe, it } from "vitest"
import type { HomeserverUpdate } from "@widgethost/core"
import { startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { portCases } from "../src/homeserver-port-cases.ts"
import { clientApi, eventually, type PortCase, type PortWorld } from "../src/homeserver-port-world.ts"
import { silenceJsSdk } from "../src/js-sdk-logger.ts"

const cleanups: Array<() => unknown> = []
const logs: Array<string> = []
silenceJsSdk(logs)
afterEach(async (context) => {
  for (const cleanup of cleanups.splice(0).reverse()) await Promise.resolve(cleanup()).catch(() => undefined)
  if (context.task.result?.state === "fail") process.stderr.write(`${logs.slice(-100).join("\n")}\n`)
  logs.length = 0
})

const world = async (c: PortCase): Promise<PortWorld> => {
  const hs = await startEmbeddedHomeserver(c.homeserver)
  cleanups.push(() => hs.close())
  c.before?.(hs)
  const alice = await hs.createUser("alice", "alice-secret")
  const bob = await hs.createUser("bob", "bob-secret")
  const port = await connectHomeserver({ baseUrl: hs.baseUrl, auth: alice, sync: { timeoutMs: 1_000 }, hold: { maxHoldMs: 5_000 } })
  cleanups.push(() => port.stop())
  const updates: Array<HomeserverUpdate> = []
  port.subscribe((update) => updates.push(update))
  const synced = port.nextSync()
  port.start()
  await synced
  return {
    hs,
    port,
    updates,
    alice: { ...alice, api: clientApi(hs.baseUrl, alice.accessToken) },
    bob: { ...bob, api: clientApi(hs.baseUrl, bob.accessToken) },
    joined: (roomId) => eventually(`alice in ${roomId}`, async () => (await clientApi(hs.baseUrl, alice.accessToken)<{ joined_rooms: Array<string> }>("GET", "/_matrix/client/v3/joined_rooms")).joined_rooms.includes(roomId)),
    defer: (cleanup) => void cleanups.push(cleanup),
    logs
  }
}

describe("the HTTP homeserver port on the embedded homeserver", { timeout: 60_000 }, () => {
  it.each(portCases)("$name", async (c) => c.run(await world(c)))
})
