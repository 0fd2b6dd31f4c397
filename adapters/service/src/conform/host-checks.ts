/**
 * Judges one path's run against what the oracle says a conforming host does. Each divergence
 * names a rule and the request (or toWidget action) it is about; `rule: subject` is its key, the
 * same wherever on a path it shows, so paths that show one divergence can be compared and shrunk.
 *
 * The rules (the Widget API's, as our chart keeps them):
 * - `no-reply`, `double-reply`: every fromWidget request is answered exactly once;
 * - `reply-envelope`: an answer is the request with `response` added (same action, widget id);
 * - `error-shape`: an error is `{"error":{"message":…}}` (MSC2813);
 * - `refused`: an error where our chart serves the request (its names, stable and unstable);
 * - `accepted`: a success where our chart refuses (a denial ignored, a malformed request served);
 * - `versions-shape`: `supported_api_versions` answers `supported_versions`, a list of strings;
 * - `missing-request`, `extra-request`: the capability exchange sends `capabilities` and
 *   `notify_capabilities` (MSC2871) when, and as often as, our chart does;
 * - `approved-unrequested`: `notify_capabilities` approves nothing the widget did not ask for;
 * - `approval-differs`: the approved set is the one the harness says the host grants;
 * - `request-shape`: a toWidget request has `api`, the widget's id, a fresh `requestId`, an
 *   `action` and object `data`;
 * - `reply-unknown`: no answer to a request the widget never sent;
 * - `connection`: the host took the connection and kept it for the whole path.
 */
import type { Harness } from "./harness.ts"
import type { Expected } from "./host-oracle.ts"
import { type Heard, isHostRequest, type PathRun } from "./host-run.ts"
import { describeStep, type Step } from "./widget-steps.ts"

export interface Divergence {
  readonly rule: string
  /** The request step's name or the toWidget action it concerns. */
  readonly subject: string
  /** Index of the step at which it showed. */
  readonly step: number
  readonly detail: string
}

export const keyOf = (d: Pick<Divergence, "rule" | "subject">): string => `${d.rule}: ${d.subject}`

type Envelope = { api?: unknown; widgetId?: unknown; requestId?: unknown; action?: unknown; data?: unknown; response?: unknown }
const env = (h: Heard): Envelope => (typeof h.message === "object" && h.message !== null ? (h.message) : {})
const isErrorResponse = (response: unknown) => typeof response === "object" && response !== null && "error" in response
const sameSet = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((x) => b.includes(x))
const brief = (value: unknown) => {
  const text = JSON.stringify(value)
  return text.length > 160 ? `${text.slice(0, 157)}...` : text
}

export const checkRun = (harness: Harness, path: ReadonlyArray<Step>, expected: ReadonlyArray<Expected>, run: PathRun): Divergence[] => {
  const out: Divergence[] = []
  const add = (rule: string, subject: string, step: number, detail: string) => {
    if (!out.some((d) => d.rule === rule && d.subject === subject)) out.push({ rule, subject, step, detail })
  }
  if (run.connection !== undefined) add("connection", "websocket", Math.max(0, Math.min(path.length - 1, run.heard.at(-1)?.step ?? 0)), run.connection)

  // Answers to the widget's requests.
  const sentIds = new Set<string>()
  path.forEach((step, index) => {
    const want = expected[index]?.request
    if (step.kind !== "request" || want === undefined) return
    sentIds.add(want.requestId)
    if (run.connection !== undefined && (run.heard.at(-1)?.step ?? -1) < index) return // never got there
    const replies = run.heard.filter((h) => env(h).api === "fromWidget" && env(h).requestId === want.requestId && "response" in env(h))
    const name = describeStep(step)
    if (replies.length === 0) return add("no-reply", name, index, `no answer to ${want.action} (${want.requestId}) within ${harness.replyTimeoutMs} ms`)
    if (replies.length > 1) add("double-reply", name, index, `${replies.length} answers: ${replies.map((r) => brief(env(r).response)).join(", ")}`)
    const reply = env(replies[0]!)
    if (reply.action !== want.action || reply.widgetId !== harness.widgetId) add("reply-envelope", name, index, `answered as ${brief({ action: reply.action, widgetId: reply.widgetId })}`)
    const response = reply.response
    const failed = isErrorResponse(response)
    if (failed) {
      const error = (response as { error?: unknown }).error
      if (typeof error !== "object" || error === null || typeof (error as { message?: unknown }).message !== "string") add("error-shape", name, index, `error not {"message": string}: ${brief(response)}`)
    }
    if (failed && want.outcome === "ok") add("refused", name, index, `refused where our chart serves it: ${brief(response)}`)
    if (!failed && want.outcome === "error") add("accepted", name, index, `served where our chart refuses it: ${brief(response)}`)
    if (!failed && want.action === "supported_api_versions") {
      const list = (response as { supported_versions?: unknown } | null)?.supported_versions
      if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) add("versions-shape", name, index, `supported_versions is not a list of strings: ${brief(response)}`)
    }
  })
  for (const h of run.heard) {
    const e = env(h)
    if (e.api === "fromWidget" && "response" in e && !sentIds.has(String(e.requestId))) add("reply-unknown", String(e.action), Math.max(0, h.step), `answer to a request never sent: ${brief(h.message)}`)
    if (typeof h.message !== "object" || h.message === null) add("request-shape", "not JSON", Math.max(0, h.step), `a frame that is not a JSON object: ${brief(h.message)}`)
  }

  // The host's own requests: shape, and the capability exchange against the oracle's.
  const hostRequests = run.heard.filter((h) => isHostRequest(h.message))
  const ids = new Set<string>()
  for (const h of hostRequests) {
    const e = env(h)
    const action = typeof e.action === "string" ? e.action : "(no action)"
    if (e.widgetId !== harness.widgetId || typeof e.requestId !== "string" || typeof e.action !== "string" || typeof e.data !== "object" || e.data === null || Array.isArray(e.data)) {
      add("request-shape", action, Math.max(0, h.step), `malformed toWidget request: ${brief(h.message)}`)
    } else if (ids.has(e.requestId)) add("request-shape", action, Math.max(0, h.step), `requestId ${e.requestId} used twice`)
    if (typeof e.requestId === "string") ids.add(e.requestId)
  }
  const lastStep = run.connection === undefined ? path.length - 1 : Math.min(path.length - 1, run.heard.at(-1)?.step ?? -1)
  for (const action of ["capabilities", "notify_capabilities"]) {
    for (let index = 0; index <= lastStep; index++) {
      const want = expected.slice(0, index + 1).reduce((n, e) => n + e.toWidget.filter((t) => t.action === action).length, 0)
      const got = hostRequests.filter((h) => h.step <= index && env(h).action === action).length
      const after = `${action} (after ${describeStep(path[index]!)})`
      if (got < want) {
        add("missing-request", after, index, `${want} ${action} request(s) expected by step ${index + 1}, ${got} sent`)
        break
      }
      if (got > want) {
        add("extra-request", after, index, `${want} ${action} request(s) expected by step ${index + 1}, ${got} sent`)
        break
      }
    }
  }
  const asked = new Set([harness.sendCapability, harness.receiveCapability])
  let hostApproved: ReadonlyArray<string> | undefined
  let oracleApproved: ReadonlyArray<string> | undefined
  for (let index = 0; index <= lastStep; index++) {
    const step = path[index]!
    if (step.kind === "request" && step.name.startsWith("request_capabilities")) asked.add(harness.extraCapability)
    for (const h of hostRequests.filter((r) => r.step === index && env(r).action === "notify_capabilities")) {
      const approved = (env(h).data as { approved?: unknown } | undefined)?.approved
      if (!Array.isArray(approved)) {
        add("request-shape", "notify_capabilities", index, `approved is not a list: ${brief(env(h).data)}`)
        continue
      }
      const beyond = approved.filter((c) => typeof c !== "string" || !asked.has(c))
      if (beyond.length > 0) add("approved-unrequested", "notify_capabilities", index, `approved what the widget never asked for: ${brief(beyond)}`)
      hostApproved = approved as string[]
    }
    for (const t of expected[index]?.toWidget ?? []) if (t.action === "notify_capabilities") oracleApproved = (t.data as { approved: ReadonlyArray<string> }).approved
  }
  if (hostApproved !== undefined && oracleApproved !== undefined && !sameSet(hostApproved, oracleApproved)) {
    add("approval-differs", "notify_capabilities", lastStep, `approved ${brief(hostApproved)}, expected ${brief(oracleApproved)}`)
  }
  return out
}
