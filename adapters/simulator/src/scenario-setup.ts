/**
 * The main thread's part of a scenario run: the embedded homeserver (with TURN), the fault proxy
 * in front of it, the scenario's accounts and its rooms (created by their first member, joined by
 * the others, over plain HTTP). The accounts' homeserver ports, engines and widgets come after,
 * in this thread or in workers (scenario-host.ts).
 */
import { randomBytes } from "node:crypto"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { startFaultProxy, type FaultProxy } from "./fault-proxy.ts"
import type { Scenario } from "./scenario-file.ts"
import { SimulationError } from "./simulate-options.ts"

/** An account's sign-in, as a port (in any thread) needs it. */
export interface ScenarioAccount {
  readonly name: string
  readonly userId: string
  readonly accessToken: string
  readonly deviceId: string
}

export interface ScenarioServers {
  readonly homeserver: EmbeddedHomeserver
  readonly proxy: FaultProxy
  /** In the scenario's order. */
  readonly accounts: ReadonlyArray<ScenarioAccount>
  /** Room name → room id. */
  readonly roomIds: ReadonlyMap<string, string>
  readonly close: () => Promise<void>
}

export const startScenarioServers = async (scenario: Scenario): Promise<ScenarioServers> => {
  const homeserver = await startEmbeddedHomeserver({ turn: { uris: ["turn:127.0.0.1:3478?transport=udp"], sharedSecret: randomBytes(16).toString("hex"), ttlSeconds: 5 } })
  let proxy: FaultProxy | undefined
  try {
    proxy = await startFaultProxy(homeserver.baseUrl)
    const accounts: Array<ScenarioAccount> = []
    for (const name of scenario.accounts) {
      const session = await homeserver.ensureUser(name, `scenario-${name}`)
      accounts.push({ name, userId: session.userId, accessToken: session.accessToken, deviceId: session.deviceId })
    }
    const token = new Map(accounts.map((a) => [a.name, a.accessToken]))
    const call = async <A>(account: string, path: string, body: unknown): Promise<A> => {
      const response = await fetch(`${homeserver.baseUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${token.get(account)}`, "content-type": "application/json" }, body: JSON.stringify(body) })
      if (!response.ok) throw new SimulationError(`${account} ${path}: ${response.status} ${await response.text()}`)
      return (await response.json()) as A
    }
    const roomIds = new Map<string, string>()
    for (const room of scenario.rooms) {
      const [creator, ...others] = room.members
      const { room_id } = await call<{ room_id: string }>(creator!, "/_matrix/client/v3/createRoom", {
        preset: "public_chat",
        name: room.name,
        initial_state: room.encrypted === true ? [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }] : []
      })
      roomIds.set(room.name, room_id)
      for (const m of others) await call(m, `/_matrix/client/v3/rooms/${encodeURIComponent(room_id)}/join`, {})
    }
    const started = proxy
    return {
      homeserver,
      proxy: started,
      accounts,
      roomIds,
      close: async () => {
        await started.close()
        await homeserver.close()
      }
    }
  } catch (error) {
    await proxy?.close()
    await homeserver.close()
    throw error
  }
}
