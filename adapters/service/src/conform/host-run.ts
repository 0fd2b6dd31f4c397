/**
 * Drives one path against a live host over the websocket transport (MSC3009), acting as the
 * widget: one fresh connection per path, each step sent, then a wait until what the oracle
 * expects has arrived (or `replyTimeoutMs`), then `settleMs` more to hear what should not come.
 * Everything the host sends is kept, with the step during which it arrived, for the checks.
 */
import WebSocket from "ws"
import type { Harness } from "./harness.ts"
import { type Expected, STEERED_ACTIONS, widgetAnswer } from "./host-oracle.ts"
import { type Step, stepMessage } from "./widget-steps.ts"

/** A message the host sent (`message` is the parsed JSON, or the text when it was not JSON). */
export interface Heard {
  readonly step: number
  readonly message: unknown
}

export interface PathRun {
  readonly heard: ReadonlyArray<Heard>
  /** Set when the connection could not be opened, or the host closed it before the path ended. */
  readonly connection?: string
  /** For each answer step: whether the host had a request of that action open to answer. */
  readonly answered: ReadonlyArray<boolean | undefined>
}

type Envelope = { api?: unknown; requestId?: unknown; action?: unknown; response?: unknown }
const envelope = (message: unknown): Envelope => (typeof message === "object" && message !== null ? (message) : {})
export const isHostRequest = (message: unknown): boolean => envelope(message).api === "toWidget" && !("response" in envelope(message))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const runPath = async (uri: string, harness: Harness, path: ReadonlyArray<Step>, expected: ReadonlyArray<Expected>): Promise<PathRun> => {
  const heard: Heard[] = []
  const answered: Array<boolean | undefined> = []
  let step = -1
  let wake: (() => void) | undefined
  let closed: string | undefined
  const socket = new WebSocket(uri)
  socket.on("message", (data) => {
    const text = (data as Buffer).toString()
    let message: unknown = text
    try {
      message = JSON.parse(text)
    } catch {
      // kept as text: the checks report it
    }
    heard.push({ step, message })
    const m = envelope(message)
    // Requests outside the capability exchange are acknowledged at once, as a widget does.
    if (isHostRequest(message) && typeof m.action === "string" && !STEERED_ACTIONS.has(m.action) && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ ...(message as object), response: widgetAnswer(m.action, harness) }))
    }
    wake?.()
  })
  const opened = await new Promise<string | undefined>((resolve) => {
    socket.once("open", () => resolve(undefined))
    socket.once("error", (error) => resolve(`could not connect: ${error.message}`))
    socket.once("close", (code, reason) => resolve(`closed before opening (${code} ${String(reason)})`))
  })
  if (opened !== undefined) return { heard, connection: opened, answered }
  socket.on("close", (code, reason) => {
    closed ??= `the host closed the connection (${code}${String(reason) ? ` ${String(reason)}` : ""})`
    wake?.()
  })
  socket.on("error", () => undefined)

  const answeredIds = new Set<string>()
  const steeredCount = (action: string) => heard.filter((h) => isHostRequest(h.message) && envelope(h.message).action === action).length
  const expectedCount = (action: string, upTo: number) => expected.slice(0, upTo + 1).reduce((n, e) => n + e.toWidget.filter((t) => t.action === action).length, 0)
  // What a step waits for: its request's answer, and the exchange's requests it brings. A request
  // missing since an earlier step is not waited for again (that step already reported it).
  const satisfied = (index: number, before: ReadonlyMap<string, number>) => {
    const want = expected[index]
    if (want?.request !== undefined && !heard.some((h) => envelope(h.message).api === "fromWidget" && envelope(h.message).requestId === want.request!.requestId && "response" in envelope(h.message))) return false
    return [...STEERED_ACTIONS].every((action) => {
      const brought = expected[index]?.toWidget.filter((t) => t.action === action).length ?? 0
      return steeredCount(action) >= Math.min(expectedCount(action, index), before.get(action)! + brought)
    })
  }

  for (const [index, next] of path.entries()) {
    if (closed !== undefined) break
    step = index
    const before = new Map([...STEERED_ACTIONS].map((action) => [action, steeredCount(action)]))
    if (next.kind === "request") {
      socket.send(JSON.stringify(stepMessage(next, index, harness)))
    } else {
      const open = heard.filter((h) => isHostRequest(h.message) && envelope(h.message).action === next.action && !answeredIds.has(String(envelope(h.message).requestId))).at(-1)
      answered[index] = open !== undefined
      if (open !== undefined) {
        answeredIds.add(String(envelope(open.message).requestId))
        socket.send(JSON.stringify({ ...(open.message as object), response: widgetAnswer(next.action, harness) }))
      }
    }
    const deadline = Date.now() + harness.replyTimeoutMs
    while (!satisfied(index, before) && closed === undefined && Date.now() < deadline) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(Math.max(1, deadline - Date.now()))])
      wake = undefined
    }
    await sleep(harness.settleMs)
  }
  step = path.length
  await sleep(harness.settleMs)
  const connection = closed
  if (socket.readyState === WebSocket.OPEN) {
    const gone = new Promise<void>((resolve) => socket.once("close", () => resolve()))
    // 1000: the widget is done, so a host that resumes sessions ends this one (the next path starts afresh).
    socket.close(1000, "conform: path done")
    await Promise.race([gone, sleep(1_000)])
    // Read again after the wait (the close may have come meanwhile).
    if ((socket.readyState as number) !== WebSocket.CLOSED) socket.terminate()
  }
  return connection === undefined ? { heard, answered } : { heard, connection, answered }
}
