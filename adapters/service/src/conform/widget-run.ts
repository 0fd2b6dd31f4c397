/**
 * Drives one `conform widget` path, acting as the host: one fresh widget per path (a new
 * connection or a new page), each step's request sent once the previous one was answered (or
 * `replyTimeoutMs` passed), then `settleMs` more to hear what should not come. The widget's own
 * requests are answered as a minimal host does, so a widget waiting on them is not stuck:
 * `content_loaded` and `supported_api_versions` served, everything else refused with an error.
 * Everything the widget sends is kept, with the step during which it arrived, for the checks.
 */
import type { Harness } from "./harness.ts"
import { type HostStep, hostRequestIdOf, hostStepMessage, type WidgetAsked } from "./host-steps.ts"

/** One widget under test, from first contact on (see widget-links.ts). */
export interface WidgetLink {
  send(message: unknown): void
  onMessage(listener: (message: unknown) => void): void
  /** Called once if the widget goes away (its connection closed, its page crashed). */
  onGone(listener: (reason: string) => void): void
  close(): Promise<void>
}

/** Opens a fresh widget and resolves at first contact (connection opened, frame loaded). */
export type ConnectWidget = () => Promise<WidgetLink>

export interface WidgetHeard {
  readonly step: number
  readonly message: unknown
}

export interface WidgetPathRun {
  readonly heard: ReadonlyArray<WidgetHeard>
  /** Set when no widget came, or it went away before the path ended. */
  readonly connection?: string
}

type Envelope = { api?: unknown; requestId?: unknown; action?: unknown; response?: unknown }
export const envelopeOf = (message: unknown): Envelope => (typeof message === "object" && message !== null && !Array.isArray(message) ? message : {})
const isWidgetRequest = (message: unknown) => envelopeOf(message).api === "fromWidget" && !("response" in envelopeOf(message))
export const isAnswerTo = (message: unknown, requestId: string) => envelopeOf(message).api === "toWidget" && envelopeOf(message).requestId === requestId && "response" in envelopeOf(message)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** What the tool answers the widget's own requests with. */
const hostAnswer = (action: unknown, harness: Harness): unknown => {
  if (action === "content_loaded") return {}
  if (action === "supported_api_versions") return { supported_versions: harness.widgetVersions }
  return { error: { message: `conform widget: ${String(action)} is not served by this tool` } }
}

/** The widget's `capabilities` answer, once it came. */
export const askedOf = (heard: ReadonlyArray<WidgetHeard>, path: ReadonlyArray<HostStep>): WidgetAsked | undefined => {
  const index = path.findIndex((step) => step.name === "capabilities")
  if (index < 0) return undefined
  const answer = heard.find((h) => isAnswerTo(h.message, hostRequestIdOf(index)))
  const capabilities = (envelopeOf(answer?.message).response as { capabilities?: unknown } | undefined)?.capabilities
  return Array.isArray(capabilities) ? { capabilities: capabilities.filter((c): c is string => typeof c === "string") } : undefined
}

export const runWidgetPath = async (connect: ConnectWidget, harness: Harness, path: ReadonlyArray<HostStep>): Promise<WidgetPathRun> => {
  const heard: WidgetHeard[] = []
  let step = -1
  let gone: string | undefined
  let wake: (() => void) | undefined
  let link: WidgetLink
  try {
    link = await connect()
  } catch (error) {
    return { heard, connection: error instanceof Error ? error.message : String(error) }
  }
  link.onMessage((message) => {
    heard.push({ step, message })
    if (isWidgetRequest(message) && gone === undefined) link.send({ ...(message as object), response: hostAnswer(envelopeOf(message).action, harness) })
    wake?.()
  })
  link.onGone((reason) => {
    gone ??= reason
    wake?.()
  })
  for (const [index, next] of path.entries()) {
    if (gone !== undefined) break
    step = index
    link.send(hostStepMessage(next, index, harness, askedOf(heard, path)))
    const requestId = hostRequestIdOf(index)
    const deadline = Date.now() + harness.replyTimeoutMs
    while (!heard.some((h) => isAnswerTo(h.message, requestId)) && gone === undefined && Date.now() < deadline) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), sleep(Math.max(1, deadline - Date.now()))])
      wake = undefined
    }
    await sleep(harness.settleMs)
  }
  step = path.length
  await sleep(harness.settleMs)
  const connection = gone
  await link.close()
  return connection === undefined ? { heard } : { heard, connection }
}
