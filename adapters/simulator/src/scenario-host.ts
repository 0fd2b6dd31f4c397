/**
 * The accounts' side of a scenario run, for all accounts (one process) or a worker's share of
 * them: a homeserver port per account (through the fault proxy), an engine per account, one
 * websocket transport, and a kit widget per scenario widget of those accounts. It also carries
 * out the timeline steps that concern its accounts (join, the widgets' part of a leave, reconnect).
 */
import { type Engine } from "@widgethost/engine"
import { path, type MatrixHomeserver } from "@widgethost/homeserver-client"
import { startWebsocketTransport, type WebsocketTransport } from "@widgethost/websocket"
import type { Scenario } from "./scenario-file.ts"
import type { ScenarioAccount } from "./scenario-setup.ts"
import { ScenarioWidgetRunner, type ScenarioLedger } from "./scenario-widget.ts"
import { SimulationError } from "./simulate-options.ts"
import { approvingEngine, connectSimAccount, registerSimWidget, startSyncing } from "./sim-account.ts"

export interface ScenarioHostInput {
  /** The fault proxy's URL: every homeserver request of the ports goes through it. */
  readonly baseUrl: string
  /** The accounts this host owns. */
  readonly accounts: ReadonlyArray<ScenarioAccount>
  readonly roomIds: ReadonlyMap<string, string>
  /** Every account's user id (call widgets send to peers that may live elsewhere). */
  readonly userIds: ReadonlyMap<string, string>
  readonly ledger: ScenarioLedger
}

export interface ScenarioHost {
  /** This host's widgets, by name. */
  readonly runners: ReadonlyMap<string, ScenarioWidgetRunner>
  /** `RequestTimedOut` reports of the engines, by widget name. */
  readonly timedOut: ReadonlyMap<string, number>
  readonly transport: WebsocketTransport
  /** Joins the room and starts the account's widgets in it. */
  readonly join: (account: string, room: string) => Promise<void>
  /** Stops the account's widgets in the room (they stop counting sends from now on) and returns them. */
  readonly stopWidgets: (account: string, room: string) => ReadonlyArray<ScenarioWidgetRunner>
  /** Closes the widgets and leaves the room. */
  readonly leave: (account: string, room: string) => Promise<void>
  readonly reconnect: (widgets: ReadonlyArray<string>) => Promise<void>
  readonly close: () => Promise<void>
}

const get = <K, V>(map: ReadonlyMap<K, V>, key: K, what: string): V => {
  const value = map.get(key)
  if (value === undefined) throw new SimulationError(`no ${what} ${String(key)} here`)
  return value
}

/** Connects the accounts, starts their engines and widgets (those of the rooms they are in), and returns once all are ready. */
export const startScenarioHost = async (scenario: Scenario, input: ScenarioHostInput): Promise<ScenarioHost> => {
  const { ledger } = input
  const ports = new Map<string, MatrixHomeserver>()
  const engines: Array<Engine> = []
  const runners = new Map<string, ScenarioWidgetRunner>()
  const timedOut = new Map<string, number>()
  let transport: WebsocketTransport | undefined
  const close = async () => {
    for (const r of runners.values()) r.close()
    for (const e of engines) e.stop()
    await transport?.close()
    await Promise.all([...ports.values()].map((p) => p.stop().catch(() => undefined)))
  }
  try {
    for (const account of input.accounts) ports.set(account.name, await connectSimAccount(input.baseUrl, account, 5_000, (message) => ledger.error("homeserver", `${account.name}: ${message}`)))
    await startSyncing(ports.values())

    transport = await startWebsocketTransport({ rateLimit: { messages: scenario.rateLimit ?? 200, perMs: 1000 }, resumeGraceMs: 15_000 })
    const ws = transport
    const engineOf = new Map<string, Engine>()
    for (const [name, port] of ports) {
      const engine = approvingEngine(port, (widgetId, action) => {
        ledger.error("timeouts", `${widgetId}: ${action}`)
        timedOut.set(widgetId, (timedOut.get(widgetId) ?? 0) + 1)
      })
      engines.push(engine)
      engineOf.set(name, engine)
    }
    for (const spec of scenario.widgets) {
      const engine = engineOf.get(spec.account)
      if (engine === undefined) continue // another host's account
      const uri = registerSimWidget(ws, engine, { id: spec.name, roomId: get(input.roomIds, spec.room, "room"), name: spec.name, page: "scenario" })
      const encrypted = scenario.rooms.find((r) => r.name === spec.room)?.encrypted === true
      const peer = spec.behaviour === "call" ? get(input.userIds, spec.peer, "account") : undefined
      runners.set(spec.name, new ScenarioWidgetRunner(spec, uri, ledger, encrypted, peer))
    }
    const startWidgets = (account: string, room: string) =>
      Promise.all([...runners.values()].filter((r) => r.spec.account === account && r.spec.room === room && Number.isNaN(r.readyAt)).map((r) => r.start()))
    for (const room of scenario.rooms) for (const account of room.members) if (ports.has(account)) await startWidgets(account, room.name)

    const inRoom = (account: string, room: string) => [...runners.values()].filter((r) => r.spec.account === account && r.spec.room === room)
    return {
      runners,
      timedOut,
      transport: ws,
      join: async (account, room) => {
        const port = get(ports, account, "account")
        await port.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${get(input.roomIds, room, "room")}/join`, body: {} })
        await port.nextSync()
        await startWidgets(account, room)
      },
      stopWidgets: (account, room) => {
        const leaving = inRoom(account, room)
        for (const r of leaving) r.stop()
        return leaving
      },
      leave: async (account, room) => {
        for (const r of inRoom(account, room)) r.close()
        await get(ports, account, "account").http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${get(input.roomIds, room, "room")}/leave`, body: {} })
      },
      reconnect: async (widgets) => {
        await Promise.all(widgets.map((n) => get(runners, n, "widget").reconnect()))
      },
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}
