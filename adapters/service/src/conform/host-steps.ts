/**
 * What the host side does in one step of a `conform widget` path: send the widget one toWidget
 * request out of a fixed catalogue. Every path starts where a host starts, with `capabilities`
 * after first contact; the rest probe the answers a widget owes its host. Steps are data, so a
 * path prints, replays and shrinks.
 */
import type { Harness } from "./harness.ts"

export interface HostStep {
  readonly name: HostRequestName
}

/** What the widget asked for in its `capabilities` answer (events for `send_event` come from it). */
export interface WidgetAsked {
  readonly capabilities: ReadonlyArray<string>
}

/** The event type a widget asked to receive (`m.receive.event:T` or MSC2762's unstable name), if any. */
export const receivedEventType = (asked: WidgetAsked | undefined): string | undefined => {
  for (const capability of asked?.capabilities ?? []) {
    const match = /^(?:m|org\.matrix\.msc2762)\.receive\.event:([^#]+)$/.exec(capability)
    if (match !== null) return match[1]
  }
  return undefined
}

const roomEvent = (harness: Harness, type: string) => ({
  type,
  sender: "@conform:localhost",
  event_id: "$conform-event",
  room_id: harness.roomId,
  origin_server_ts: 0,
  content: type === "m.room.message" ? { msgtype: "m.text", body: "conform" } : {}
})

/**
 * The requests, each named for what it probes, with what a conforming widget answers:
 * `ok` (anything but an error), `error` (MSC2813: unknown actions), or `any` (an answer, of
 * either kind: what a widget makes of data it cannot use is its own business, as long as it
 * answers once).
 */
export const HOST_REQUESTS = {
  capabilities: { action: "capabilities", want: "ok", data: () => ({}) },
  supported_api_versions: { action: "supported_api_versions", want: "ok", data: () => ({}) },
  notify_capabilities: { action: "notify_capabilities", want: "ok", data: (_h: Harness, asked?: WidgetAsked) => ({ requested: asked?.capabilities ?? [], approved: asked?.capabilities ?? [] }) },
  "send_event (a type it asked to receive)": { action: "send_event", want: "ok", data: (h: Harness, asked?: WidgetAsked) => roomEvent(h, receivedEventType(asked) ?? "m.room.message") },
  "send_event (data null)": { action: "send_event", want: "any", data: () => null },
  "unknown action": { action: "org.example.conform.no_such_action", want: "error", data: () => ({}) }
} satisfies Record<string, { readonly action: string; readonly want: "ok" | "error" | "any"; readonly data: (harness: Harness, asked?: WidgetAsked) => unknown }>

export type HostRequestName = keyof typeof HOST_REQUESTS
export const HOST_REQUEST_NAMES = Object.keys(HOST_REQUESTS) as ReadonlyArray<HostRequestName>

/** The `index`th step's request id: unique within a path, readable in a report. */
export const hostRequestIdOf = (index: number): string => `conform-host-${index}`

/** The toWidget request a step sends. */
export const hostStepMessage = (step: HostStep, index: number, harness: Harness, asked: WidgetAsked | undefined) => {
  const entry = HOST_REQUESTS[step.name]
  return { api: "toWidget", widgetId: harness.widgetId, requestId: hostRequestIdOf(index), action: entry.action, data: entry.data(harness, asked) }
}

export const describeHostPath = (path: ReadonlyArray<HostStep>): string => (path.length === 0 ? "(first contact)" : path.map((step) => step.name).join(" → "))

/**
 * Which steps a host may take next: `capabilities` first (a host asks before anything else);
 * `notify_capabilities` once, after it; room events only once approved (a host sends a widget
 * nothing it was not approved for). The rest at any time after the first step.
 */
export const hostStepsFrom = (path: ReadonlyArray<HostStep>): HostStep[] => {
  if (path.length === 0) return [{ name: "capabilities" }]
  const notified = path.some((step) => step.name === "notify_capabilities")
  return HOST_REQUEST_NAMES.filter((name) => {
    if (name === "capabilities") return false
    if (name === "notify_capabilities") return !notified
    if (name.startsWith("send_event")) return notified
    return true
  }).map((name) => ({ name }))
}

/** Whether a host could take every step of `path` in that order (shrinking keeps only these). */
export const isValidHostPath = (path: ReadonlyArray<HostStep>): boolean =>
  path.every((step, index) => hostStepsFrom(path.slice(0, index)).some((next) => next.name === step.name))
