/**
 * The browser end of the port bridge: a `HomeserverPort` for an engine running in a page, each
 * method one request to the Node end (`server.ts`), which runs the real port. Failures come back
 * as the same `HomeserverError` the Node port produced (`matrix_api_error` included); a bridge
 * that cannot be reached fails the call with a HomeserverError without `http`.
 */
import { HomeserverError, type HomeserverPort, HomeserverPortTypeId, type HomeserverUpdate } from "@widgethost/core"
import { Effect } from "effect"
import { BRIDGED_METHODS, type BridgedMethod, type BridgeFailure, type BridgeIdentity, fromWire, toWire } from "./protocol.ts"

/** An upload's Blob read into bytes, so the arguments are JSON (see `toWire`). */
const wireArgs = async (method: BridgedMethod, args: ReadonlyArray<unknown>): Promise<ReadonlyArray<unknown>> => {
  if (method !== "uploadFile") return args
  const request = args[0] as { file: { body: Uint8Array | Blob } }
  const body = request.file.body
  return body instanceof Uint8Array ? args : [{ ...request, file: { ...request.file, body: new Uint8Array(await body.arrayBuffer()) } }]
}

const call = (base: string, method: BridgedMethod, args: ReadonlyArray<unknown>): Effect.Effect<unknown, HomeserverError> =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(`${base}/call/${method}`, { method: "POST", body: toWire(await wireArgs(method, args)), headers: { "content-type": "application/json" }, signal })
      return { ok: res.ok, body: fromWire(await res.text()) as { value?: unknown } & Partial<BridgeFailure> }
    },
    catch: (e) => new HomeserverError({ message: `port bridge unreachable: ${String(e)}` })
  }).pipe(
    Effect.flatMap(({ ok, body }) =>
      ok
        ? Effect.succeed(body.value)
        : Effect.fail(new HomeserverError({ message: body.error ?? `port bridge answered without an error`, ...(body.http === undefined ? {} : { http: body.http }) }))
    )
  )

/** JSON turns an `undefined` argument into `null`; an omitted optional one must stay omitted. */
const withoutTrailingUndefined = (args: Array<unknown>): Array<unknown> => {
  let end = args.length
  while (end > 0 && args[end - 1] === undefined) end--
  return args.slice(0, end)
}

/**
 * Connects to the bridge at `base`; resolves once the update stream is open, so no update the
 * Node port delivers after that is missed. `EventSourceImpl`: the browser's by default (Node 20
 * has none; its tests pass undici's).
 */
export const connectPortBridge = async (base: string, EventSourceImpl: typeof EventSource = EventSource): Promise<HomeserverPort & { close(): void }> => {
  const identity = (await (await fetch(`${base}/whoami`)).json()) as BridgeIdentity
  const listeners = new Set<(update: HomeserverUpdate) => void>()
  const updates = new EventSourceImpl(`${base}/updates`)
  updates.onmessage = (message: MessageEvent<string>) => {
    const update = JSON.parse(message.data) as HomeserverUpdate
    for (const listener of listeners) listener(update)
  }
  await new Promise<void>((resolve, reject) => {
    updates.onopen = () => resolve()
    updates.onerror = () => reject(new Error(`port bridge update stream at ${base} failed`))
  })
  const methods = Object.fromEntries(BRIDGED_METHODS.map((method) => [method, (...args: Array<unknown>) => call(base, method, withoutTrailingUndefined(args))]))
  return {
    ...(methods as unknown as Pick<HomeserverPort, BridgedMethod>),
    [HomeserverPortTypeId]: HomeserverPortTypeId,
    userId: identity.userId,
    deviceId: identity.deviceId,
    subscribe: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close: () => updates.close()
  }
}
