/**
 * Counters on one homeserver port's crypto work, for tests and the bench: every call into its
 * OlmMachine (each method wrapped on the instance, so the prototype and other ports are
 * untouched) and its requests to `/keys/*` (device keys, one-time keys, queries, claims).
 * In a clear room with nothing new for the machine, both must stay at 0.
 */
import type { MatrixHomeserver } from "@widgethost/homeserver-client"

export interface CryptoCounters {
  /** OlmMachine calls by method name, since the counters were installed. */
  readonly machineCalls: () => ReadonlyMap<string, number>
  readonly machineCallTotal: () => number
  /** `/keys/*` requests by path, since the counters were installed. */
  readonly keysRequests: () => ReadonlyMap<string, number>
  readonly keysRequestTotal: () => number
}

const methodsOf = (object: object): Set<string> => {
  const names = new Set<string>()
  for (let proto = Object.getPrototypeOf(object) as object | null; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null)
    for (const name of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, name)
      if (name !== "constructor" && typeof d?.value === "function") names.add(name)
    }
  return names
}

const bump = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
const total = (counts: ReadonlyMap<string, number>) => [...counts.values()].reduce((a, b) => a + b, 0)

/** Installs the counters on `port` (its E2ee machine and its HTTP client) and returns them. */
export const countCryptoWork = (port: MatrixHomeserver): CryptoCounters => {
  const calls = new Map<string, number>()
  const machine = port.e2ee.machine as unknown as Record<string, (...args: unknown[]) => unknown>
  for (const name of methodsOf(machine)) {
    const original = machine[name]!
    machine[name] = (...args: unknown[]) => {
      bump(calls, name)
      return original.apply(machine, args)
    }
  }
  const keys = new Map<string, number>()
  const http = port.http as unknown as { request: (req: { readonly path: string }) => Promise<unknown> }
  const request = http.request.bind(http)
  http.request = (req) => {
    if (req.path.startsWith("/_matrix/client/v3/keys/")) bump(keys, req.path)
    return request(req)
  }
  return { machineCalls: () => calls, machineCallTotal: () => total(calls), keysRequests: () => keys, keysRequestTotal: () => total(keys) }
}
