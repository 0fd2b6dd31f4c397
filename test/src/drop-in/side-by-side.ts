/**
 * How the drop-in and the reference are run side by side: a scenario (a scripted widget session
 * yielding named observations), answers normalised for comparing, the fixtures scenarios share,
 * and running one scenario against one host.
 */
import { afterEach, beforeAll, vi } from "vitest"
import { type Answer, type HostKind, type PairOptions, VIEWED_ROOM, WidgetPair } from "./widget-pair.ts"
import { polyfillForWidgetApi } from "./widget-pair.ts"
import type { DifferenceId } from "./intended-differences.ts"

export type Observations = Record<string, unknown>

export interface Scenario {
  readonly name: string
  readonly options?: PairOptions
  readonly run: (pair: WidgetPair) => Promise<Observations>
  /** Observations where the drop-in intentionally differs: which difference, and what it yields instead. */
  readonly intended?: Readonly<Record<string, { readonly id: DifferenceId; readonly dropIn: unknown }>>
}

/** An answer as compared: the response, or that it was an error (with its `matrix_api_error`, if any). */
export const shape = (answer: Answer): unknown => {
  if (answer === "no answer") return "no answer"
  if ("response" in answer) return { response: answer.response }
  const detail = answer.error["matrix_api_error"]
  return detail === undefined ? "error" : { error: { matrix_api_error: detail } }
}

export const ask = async (pair: WidgetPair, action: string, data: Record<string, unknown>) => shape(await pair.ask(action, data))

/** How one of the host's own calls ended: its value, or that it rejected (wording aside). */
export const hostCall = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    (value) => ({ resolved: value ?? null }),
    () => "rejected"
  )

/** A download's answer with a Blob `file` read out (JSON shows a Blob as `{}`), to compare its bytes. */
export const withFileRead = async (answer: unknown): Promise<unknown> => {
  const file = (answer as { response?: { file?: unknown } }).response?.file
  return file instanceof Blob ? { response: { file: { blob: await file.text(), type: file.type } } } : answer
}

/** toWidget requests by action, each action's in order (data only). */
export const toWidgetByAction = (pair: WidgetPair): Record<string, unknown[]> => {
  const out: Record<string, unknown[]> = {}
  for (const [action, data] of pair.toWidget()) if (action !== "supported_api_versions") (out[action] ??= []).push(data)
  return out
}

export const ROOM = "!room:example.org"
export const sendMessage = "org.matrix.msc2762.send.event:m.room.message"
export const receiveMessage = "org.matrix.msc2762.receive.event:m.room.message"
export const event = (overrides: Record<string, unknown> = {}) => ({
  type: "m.room.message",
  sender: "@bob:example.org",
  content: { msgtype: "m.text", body: "hi" },
  origin_server_ts: 1,
  event_id: "$e1",
  room_id: VIEWED_ROOM,
  unsigned: {},
  ...overrides
})
export const topic = (id: string) => ({ type: "m.room.topic", sender: "@bob:example.org", content: { topic: id }, origin_server_ts: 2, event_id: id, room_id: VIEWED_ROOM, state_key: "", unsigned: {} })


export const runScenario = async (kind: HostKind, scenario: Scenario): Promise<Observations> => {
  // Every widget asks for something (see "no-empty-prompt" for one that asks for nothing).
  const pair = new WidgetPair(kind, { handles: ["theme_change"], capabilities: ["io.element.requires_client"], ...scenario.options })
  pairs.push(pair)
  await pair.load()
  const observed = await scenario.run(pair)
  await pair.settle()
  return { ...observed, toWidget: toWidgetByAction(pair), replies: pair.repliesPerRequest(), driver: pair.driver.calls }
}

export const pairs: WidgetPair[] = []
/** Quiets the reference's console output and stops every pair a scenario loaded (register once per test file). */
export const useSideBySidePairs = () => {
  beforeAll(() => {
    polyfillForWidgetApi()
    // matrix-widget-api logs every capability grant and many refusals.
    for (const level of ["log", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(() => undefined)
  })
  afterEach(() => {
    for (const pair of pairs.splice(0)) pair.stop()
  })
}
