/**
 * What the drop-in method tests share: a loaded, negotiated widget pair (stopped after each
 * test), answer readers, a room event, and waiting helpers.
 */
import { afterEach, assert, beforeAll, vi } from "vitest"
import { type PairOptions, polyfillForWidgetApi, settle, WidgetPair } from "./widget-pair.ts"

export const pairs: WidgetPair[] = []
/** Quiets the reference's console output and stops every pair a test loaded (register once per test file). */
export const useDropInPairs = () => {
  beforeAll(() => {
    polyfillForWidgetApi()
    for (const level of ["log", "warn", "error", "debug"] as const) vi.spyOn(console, level).mockImplementation(() => undefined)
  })
  afterEach(() => {
    for (const pair of pairs.splice(0)) pair.stop()
  })
}

/** A drop-in host with the widget loaded and negotiated. */
export const loaded = async (options: PairOptions = {}): Promise<WidgetPair> => {
  const pair = new WidgetPair("drop-in", options)
  pairs.push(pair)
  await pair.load()
  return pair
}

export const isError = (answer: unknown): boolean => typeof answer === "object" && answer !== null && "error" in answer
export const errorMessage = (answer: unknown): string => String((answer as { error: { message: string } }).error.message)
export const response = (answer: unknown): unknown => (answer as { response: unknown }).response

export const roomEvent = (overrides: Record<string, unknown> = {}) => ({
  type: "m.room.message",
  sender: "user-id",
  content: {},
  origin_server_ts: 0,
  event_id: "id-0",
  room_id: "!room-id",
  unsigned: {},
  ...overrides
})

export const assertRejects = async (promise: Promise<unknown>, pattern: RegExp): Promise<void> => {
  try {
    await promise
  } catch (error) {
    assert.match(String((error as Error).message), pattern)
    return
  }
  assert.fail(`expected a rejection matching ${pattern}`)
}

export const waitFor = async (condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 100 && !condition(); i++) await settle(1)
  assert.isTrue(condition())
}
