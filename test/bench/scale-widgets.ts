/**
 * The scale scenario's widget side: scripted websocket clients, in their own process (the
 * open-files limit is per process) and spread over worker threads, so that no single event loop
 * drives every socket and none of them is the server's. The process's main thread only relays
 * the server's IPC: it hands each batch of widgets round-robin to the threads and sums their
 * counters. A widget is as cheap as a widget can be (it is a script, not WidgetApi): it sends
 * `content_loaded`, answers `supported_api_versions` and `capabilities`, and acknowledges every
 * other toWidget request by echoing it with `response: {}`, as matrix-widget-api does.
 */
import { spawnSync } from "node:child_process"
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads"
import { WebSocket } from "ws"
import { MESSAGE_CAPABILITIES } from "./plan.ts"

export interface WidgetAddress {
  readonly id: string
  readonly uri: string
}
export type ToWidgets = { readonly type: "connect"; readonly widgets: ReadonlyArray<WidgetAddress> } | { readonly type: "stats" }
export interface WidgetCounters {
  readonly opened: number
  readonly errors: number
  readonly closed: number
}
export interface WidgetStats extends WidgetCounters {
  readonly type: "stats"
  /** CPU of the whole widget process, all threads (process.cpuUsage counts the process). */
  readonly cpuMicros: number
  readonly threads: number
  readonly openFilesLimit: number
}

type ToThread = { readonly type: "connect"; readonly widgets: ReadonlyArray<WidgetAddress> } | { readonly type: "counters"; readonly ask: number }
type FromThread = WidgetCounters & { readonly ask: number }

const versions = JSON.stringify({ supported_versions: ["0.0.2", "org.matrix.msc2762", "org.matrix.msc2871"] })
const capabilities = JSON.stringify({ capabilities: MESSAGE_CAPABILITIES })
const empty = "{}"

/** One thread's sockets. `offset` spreads source addresses over 127.0.0.2-9 so ports never run short. */
const driveSockets = (offset: number, report: (counters: WidgetCounters, ask: number) => void) => {
  const queue: WidgetAddress[] = []
  let next = 0
  let connecting = 0
  let opened = 0
  let errors = 0
  let closed = 0

  const connect = () => {
    // A bounded number of handshakes at a time, so the server's accept backlog never overflows.
    while (connecting < 128 && next < queue.length) {
      const { id, uri } = queue[next] as WidgetAddress
      const ws = new WebSocket(uri, { perMessageDeflate: false, localAddress: `127.0.0.${2 + ((offset + next) % 8)}` })
      next++
      connecting++
      ws.on("open", () => {
        connecting--
        opened++
        ws.send(JSON.stringify({ api: "fromWidget", widgetId: id, requestId: "hello", action: "content_loaded", data: {} }))
        connect()
      })
      ws.on("message", (data: Buffer) => {
        // The answer is the request with a `response` spliced in before its closing brace: no
        // re-serialising of the event, which is most of the message.
        const text = data.toString()
        const message = JSON.parse(text) as { api: string; action: string; response?: unknown }
        if (message.api !== "toWidget" || message.response !== undefined) return
        const response = message.action === "capabilities" ? capabilities : message.action === "supported_api_versions" ? versions : empty
        const end = text.lastIndexOf("}")
        ws.send(`${text.slice(0, end)},"response":${response}}`)
      })
      ws.on("error", () => {
        errors++
      })
      ws.on("close", () => {
        closed++
      })
    }
  }
  return (message: ToThread) => {
    if (message.type === "connect") {
      queue.push(...message.widgets)
      connect()
    } else report({ opened, errors, closed }, message.ask)
  }
}

const openFilesLimit = () => Number(spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).stdout.trim())

/** The widget process's main thread: `threads` workers, each running `driveSockets`. */
export const runWidgets = (threads: number) => {
  const workers = Array.from({ length: threads }, (_, t) => new Worker(new URL(import.meta.url), { workerData: { offset: t } }))
  let turn = 0
  let ask = 0
  const pending = new Map<number, { answers: WidgetCounters[]; done: (all: WidgetCounters[]) => void }>()
  for (const worker of workers) {
    worker.on("message", (m: FromThread) => {
      const waiting = pending.get(m.ask)
      if (waiting === undefined) return
      waiting.answers.push(m)
      if (waiting.answers.length === workers.length) {
        pending.delete(m.ask)
        waiting.done(waiting.answers)
      }
    })
    worker.on("error", (error) => {
      process.stderr.write(`scale: a widget thread failed: ${String(error)}\n`)
      process.exit(1)
    })
  }
  const limit = openFilesLimit()
  process.on("message", (message: ToWidgets) => {
    if (message.type === "connect") {
      const shares: WidgetAddress[][] = workers.map(() => [])
      for (const widget of message.widgets) shares[turn++ % workers.length]!.push(widget)
      shares.forEach((widgets, t) => widgets.length > 0 && workers[t]!.postMessage({ type: "connect", widgets } satisfies ToThread))
      return
    }
    const id = ask++
    pending.set(id, {
      answers: [],
      done: (all) => {
        const cpu = process.cpuUsage()
        const sum = (key: keyof WidgetCounters) => all.reduce((total, c) => total + c[key], 0)
        process.send?.({ type: "stats", opened: sum("opened"), errors: sum("errors"), closed: sum("closed"), cpuMicros: cpu.user + cpu.system, threads, openFilesLimit: limit } satisfies WidgetStats)
      }
    })
    for (const worker of workers) worker.postMessage({ type: "counters", ask: id } satisfies ToThread)
  })
  process.on("disconnect", () => process.exit(0))
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort
  const handle = driveSockets((workerData as { offset: number }).offset, (counters, ask) => port.postMessage({ ...counters, ask } satisfies FromThread))
  port.on("message", handle)
}
