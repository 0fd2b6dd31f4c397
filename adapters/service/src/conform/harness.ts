/**
 * What `conform` needs to know about the party under test, beyond its address: the widget id
 * the host expects, the capabilities the widget side asks for, which of them the host is
 * expected to approve, and how long to wait for answers. A harness file (`--harness FILE`) is
 * this object as JSON; every field has a default.
 */
import { readFileSync } from "node:fs"

export interface Harness {
  /** The widget id of the session (envelopes carry it; hosts check it). */
  readonly widgetId: string
  /** The room the host acts in for this widget (the oracle's home room). */
  readonly roomId: string
  /** Asked for in the initial exchange: one to send events with, one to receive them. */
  readonly sendCapability: string
  readonly receiveCapability: string
  /** Asked for mid-session (MSC2974), so paths reach renegotiation. */
  readonly extraCapability: string
  /** An event type the widget never asks to send: sending it must be refused. */
  readonly deniedEventType: string
  /** Capabilities the host is expected to approve when asked (default: every one asked for). */
  readonly approve?: ReadonlyArray<string>
  /** What the widget side says it speaks when the host asks. */
  readonly widgetVersions: ReadonlyArray<string>
  /** How long an answer may take before it counts as missing. */
  readonly replyTimeoutMs: number
  /** How long to keep listening after everything expected arrived (catches double replies). */
  readonly settleMs: number
  /** `transitions`: every event from every reachable state; `states`: one path per state. */
  readonly coverage: "transitions" | "states"
}

export const defaultHarness: Harness = {
  widgetId: "conform",
  roomId: "!conform:localhost",
  sendCapability: "org.matrix.msc2762.send.event:m.room.message",
  receiveCapability: "org.matrix.msc2762.receive.event:m.room.message",
  extraCapability: "org.matrix.msc2762.receive.state_event:m.room.topic",
  deniedEventType: "org.example.conform.denied",
  widgetVersions: ["0.0.1", "0.0.2", "org.matrix.msc2762", "org.matrix.msc2871", "org.matrix.msc2974"],
  replyTimeoutMs: 2_000,
  settleMs: 40,
  coverage: "transitions"
}

export class HarnessError extends Error {}

const stringFields = ["widgetId", "roomId", "sendCapability", "receiveCapability", "extraCapability", "deniedEventType"] as const

/** The defaults, overridden by `overrides`; a wrong field throws one line naming it. */
export const makeHarness = (overrides: Readonly<Record<string, unknown>> = {}): Harness => {
  const known = new Set(Object.keys(defaultHarness).concat("approve"))
  for (const key of Object.keys(overrides)) if (!known.has(key)) throw new HarnessError(`harness: unknown field ${key}`)
  for (const key of stringFields) {
    if (key in overrides && (typeof overrides[key] !== "string" || overrides[key] === "")) throw new HarnessError(`harness: ${key} must be a non-empty string`)
  }
  for (const key of ["approve", "widgetVersions"] as const) {
    const value = overrides[key]
    if (value !== undefined && (!Array.isArray(value) || !value.every((item) => typeof item === "string"))) throw new HarnessError(`harness: ${key} must be a list of strings`)
  }
  for (const key of ["replyTimeoutMs", "settleMs"] as const) {
    const value = overrides[key]
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) throw new HarnessError(`harness: ${key} must be a number of milliseconds`)
  }
  if (overrides["coverage"] !== undefined && overrides["coverage"] !== "transitions" && overrides["coverage"] !== "states") throw new HarnessError(`harness: coverage must be "transitions" or "states"`)
  return { ...defaultHarness, ...(overrides as Partial<Harness>) }
}

/** Reads a harness file (JSON). */
export const loadHarness = (file: string, overrides: Readonly<Record<string, unknown>> = {}): Harness => {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"))
  } catch (error) {
    throw new HarnessError(`harness ${file}: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new HarnessError(`harness ${file}: must be a JSON object`)
  return makeHarness({ ...(parsed as Record<string, unknown>), ...overrides })
}

/** What the host is expected to approve out of `asked`. */
export const expectedApproval = (harness: Harness, asked: ReadonlyArray<string>): ReadonlyArray<string> =>
  harness.approve === undefined ? asked : asked.filter((capability) => harness.approve!.includes(capability))
