/**
 * What the widget side does in one step of a `conform host` path: send one fromWidget request
 * out of a fixed catalogue, or answer the host's open toWidget request of the capability
 * exchange. Steps are data, so a path prints, replays and shrinks.
 */
import type { WidgetMessage } from "@widgethost/core"
import type { Harness } from "./harness.ts"

export type Step = { readonly kind: "request"; readonly name: RequestName } | { readonly kind: "answer"; readonly action: string }

/**
 * The requests, each named for what it probes. Stable and unstable names both appear wherever a
 * proposal defines both (MSC2974, MSC2876). The unstable name comes first: the walk's shortest
 * paths go through it (most hosts serve it), and the stable one is tried from every state.
 */
export const REQUESTS = {
  content_loaded: { action: "content_loaded", data: () => ({}) },
  supported_api_versions: { action: "supported_api_versions", data: () => ({}) },
  "send_event (approved type)": { action: "send_event", data: (h: Harness) => ({ type: eventTypeOf(h.sendCapability), content: { msgtype: "m.text", body: "conform" } }) },
  "send_event (never requested type)": { action: "send_event", data: (h: Harness) => ({ type: h.deniedEventType, content: { body: "must be refused" } }) },
  "send_event (data null)": { action: "send_event", data: () => null },
  "read_events (org.matrix.msc2876)": { action: "org.matrix.msc2876.read_events", data: (h: Harness) => ({ type: eventTypeOf(h.receiveCapability), limit: 1 }) },
  "read_events (stable)": { action: "read_events", data: (h: Harness) => ({ type: eventTypeOf(h.receiveCapability), limit: 1 }) },
  "request_capabilities (org.matrix.msc2974)": { action: "org.matrix.msc2974.request_capabilities", data: (h: Harness) => ({ capabilities: [h.extraCapability] }) },
  "request_capabilities (stable)": { action: "request_capabilities", data: (h: Harness) => ({ capabilities: [h.extraCapability] }) },
  "unknown action": { action: "org.example.conform.no_such_action", data: () => ({}) }
} satisfies Record<string, { readonly action: string; readonly data: (harness: Harness) => unknown }>

export type RequestName = keyof typeof REQUESTS
export const REQUEST_NAMES = Object.keys(REQUESTS) as ReadonlyArray<RequestName>

/** `org.matrix.msc2762.send.event:m.room.message` → `m.room.message`. */
const eventTypeOf = (capability: string): string => capability.slice(capability.indexOf(":") + 1).split("#")[0]!

/** The `index`th step's request id: unique within a path, readable in a report. */
export const requestIdOf = (index: number): string => `conform-${index}`

/** The fromWidget request a request step sends. */
export const stepMessage = (step: Extract<Step, { kind: "request" }>, index: number, harness: Harness): WidgetMessage => {
  const entry = REQUESTS[step.name]
  return { api: "fromWidget", widgetId: harness.widgetId, requestId: requestIdOf(index), action: entry.action, data: entry.data(harness) } as WidgetMessage
}

export const describeStep = (step: Step): string => (step.kind === "request" ? step.name : `answer ${step.action}`)

export const describePath = (path: ReadonlyArray<Step>): string => (path.length === 0 ? "(connect)" : path.map(describeStep).join(" → "))

export const sameStep = (a: Step, b: Step): boolean => (a.kind === "request" ? b.kind === "request" && a.name === b.name : b.kind === "answer" && a.action === b.action)
