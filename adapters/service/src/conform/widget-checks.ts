/**
 * Judges one `conform widget` path's run: what a widget owes its host. Each divergence names a
 * rule and the step (or the widget's action) it is about; `rule: subject` is its key, the same
 * wherever on a path it shows, so paths can be compared and shrunk. The rules:
 * - `no-reply`, `double-reply`: every toWidget request is answered exactly once, within
 *   `replyTimeoutMs` (the Widget API's requests time out; MSC2764);
 * - `reply-envelope`: an answer is the request with `response` added (same api, action, widget id);
 * - `error-shape`: an error is `{"error":{"message":…}}` (MSC2813);
 * - `refused`: an error where the widget owes a success: `capabilities`, `supported_api_versions`,
 *   `notify_capabilities` (MSC2871), and a room event of a type it asked to receive (MSC2762);
 * - `accepted`: a success to an action no widget knows (MSC2813 wants an error);
 * - `capabilities-shape`: `capabilities` answers `capabilities`, a list of strings;
 * - `versions-shape`: `supported_api_versions` answers `supported_versions`, a list of strings;
 * - `request-shape`: the widget's own requests carry `api: "fromWidget"`, its widget id, a fresh
 *   string `requestId`, a string `action` and object `data`;
 * - `reply-unknown`: no answer to a request the host never sent;
 * - `connection`: a widget came (first contact) and stayed for the whole path.
 */
import type { Harness } from "./harness.ts"
import { HOST_REQUESTS, type HostStep, hostRequestIdOf, receivedEventType } from "./host-steps.ts"
import { askedOf, envelopeOf, isAnswerTo, type WidgetPathRun } from "./widget-run.ts"

export interface WidgetDivergence {
  readonly rule: string
  /** The host step's name, or the widget's action it concerns. */
  readonly subject: string
  /** Index of the step at which it showed. */
  readonly step: number
  readonly detail: string
}

export const widgetKeyOf = (d: Pick<WidgetDivergence, "rule" | "subject">): string => `${d.rule}: ${d.subject}`

const isError = (response: unknown) => typeof response === "object" && response !== null && "error" in response
const isStringList = (value: unknown) => Array.isArray(value) && value.every((item) => typeof item === "string")
const brief = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 160 ? `${text.slice(0, 157)}...` : text
}

export const checkWidgetRun = (harness: Harness, path: ReadonlyArray<HostStep>, run: WidgetPathRun): WidgetDivergence[] => {
  const out: WidgetDivergence[] = []
  const add = (rule: string, subject: string, step: number, detail: string) => {
    if (!out.some((d) => d.rule === rule && d.subject === subject)) out.push({ rule, subject, step, detail })
  }
  const reached = run.connection === undefined ? path.length - 1 : (run.heard.at(-1)?.step ?? -1)
  if (run.connection !== undefined) add("connection", "widget", Math.max(0, Math.min(path.length - 1, reached)), run.connection)
  const asked = askedOf(run.heard, path)

  const sentIds = new Set<string>()
  path.forEach((step, index) => {
    const requestId = hostRequestIdOf(index)
    sentIds.add(requestId)
    if (run.connection !== undefined && reached < index) return // the widget was gone before this step
    const entry = HOST_REQUESTS[step.name]
    const answers = run.heard.filter((h) => isAnswerTo(h.message, requestId))
    if (answers.length === 0) return add("no-reply", step.name, index, `no answer to ${entry.action} (${requestId}) within ${harness.replyTimeoutMs} ms`)
    if (answers.length > 1) add("double-reply", step.name, index, `${answers.length} answers: ${answers.map((a) => brief(envelopeOf(a.message).response)).join(", ")}`)
    const answer = answers[0]!.message as { action?: unknown; widgetId?: unknown; response?: unknown }
    if (answer.action !== entry.action || answer.widgetId !== harness.widgetId) add("reply-envelope", step.name, index, `answered as ${brief({ action: answer.action, widgetId: answer.widgetId })}`)
    const response = answer.response
    const failed = isError(response)
    if (failed) {
      const error = (response as { error?: unknown }).error
      if (typeof error !== "object" || error === null || typeof (error as { message?: unknown }).message !== "string") add("error-shape", step.name, index, `error not {"message": string}: ${brief(response)}`)
    }
    // A room event is owed an acknowledgement only when the widget asked to receive its type.
    const want = step.name === "send_event (a type it asked to receive)" && receivedEventType(asked) === undefined ? "any" : entry.want
    if (failed && want === "ok") add("refused", step.name, index, `an error where a success is owed: ${brief(response)}`)
    if (!failed && want === "error") add("accepted", step.name, index, `a success to an action no widget knows: ${brief(response)}`)
    if (!failed && step.name === "capabilities" && !isStringList((response as { capabilities?: unknown } | null)?.capabilities)) add("capabilities-shape", step.name, index, `capabilities is not a list of strings: ${brief(response)}`)
    if (!failed && step.name === "supported_api_versions" && !isStringList((response as { supported_versions?: unknown } | null)?.supported_versions)) add("versions-shape", step.name, index, `supported_versions is not a list of strings: ${brief(response)}`)
  })

  const ids = new Set<string>()
  for (const h of run.heard) {
    const e = h.message as { api?: unknown; widgetId?: unknown; requestId?: unknown; action?: unknown; data?: unknown }
    const at = Math.max(0, Math.min(path.length - 1, h.step))
    if (typeof h.message !== "object" || h.message === null || Array.isArray(h.message)) {
      add("request-shape", "not a JSON object", at, `the widget sent ${brief(h.message)}`)
      continue
    }
    if (e.api === "toWidget" && "response" in e) {
      if (!sentIds.has(String(e.requestId))) add("reply-unknown", String(e.action), at, `an answer to a request never sent: ${brief(h.message)}`)
      continue
    }
    const action = typeof e.action === "string" ? e.action : "(no action)"
    if (e.api !== "fromWidget" || e.widgetId !== harness.widgetId || typeof e.requestId !== "string" || typeof e.action !== "string" || typeof e.data !== "object" || e.data === null || Array.isArray(e.data)) {
      add("request-shape", action, at, `malformed fromWidget request: ${brief(h.message)}`)
    } else if (ids.has(e.requestId)) add("request-shape", action, at, `requestId ${e.requestId} used twice`)
    if (typeof e.requestId === "string") ids.add(e.requestId)
  }
  return out
}
