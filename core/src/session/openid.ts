/**
 * MSC1960 `get_openid`: the widget asks for an OpenID token proving who the user is. Every request
 * gets exactly one answer: `{ state: "allowed", ...token }` or `{ state: "blocked" }` when it can
 * be decided at once, else `{ state: "request" }`, followed (once the user decided) by a toWidget
 * `openid_credentials` naming the request in `original_request_id`.
 *
 * Who decides, first that answers: the policy (rules naming `m.openid`), what this document was
 * already told (a refusal: what this session was told), the embedding client's OpenID approver.
 * With no approver, blocked. Requests arriving while a prompt is open wait for that prompt (each
 * answered `request` at once, each told the outcome in its own `openid_credentials`): the user
 * is asked once, however often the widget asks. They share the one token fetched for the prompt.
 * A token the homeserver refuses is the request's error (its `matrix_api_error`) when answered at
 * once; after a prompt `openid_credentials` can only say `blocked`, as matrix-widget-api does.
 */
import type { OpenIdToken } from "../homeserver-port.ts"
import { classifyOpenId } from "../policy.ts"
import { ProtocolError } from "../protocol-error.ts"
import type { Report } from "./command.ts"
import type { CallResult } from "./input.ts"
import type { RawRequest } from "./state.ts"
import { requestIdOf, type Stepper } from "./step.ts"

type Decider = Extract<Report, { _tag: "OpenIdAnswered" }>["by"]

export const getOpenId = (s: Stepper, raw: RawRequest, data: Readonly<Record<string, unknown>>): void => {
  const fields = Object.keys(data)
  if (fields.length > 0) return s.fail(raw, ProtocolError.Malformed({ issue: `get_openid takes no data (MSC1960 defines none), got ${fields.join(", ")}` }))
  const { config, openId } = s.state
  const verdict = classifyOpenId(config.policy, { id: config.widgetId, ...(config.origin === undefined ? {} : { origin: config.origin }) }, s.caches)
  if (verdict._tag === "Approve") return fetchNow(s, raw, "policy")
  if (verdict._tag === "Deny") return blockNow(s, raw, "policy")
  if (openId.decision === "allowed") return fetchNow(s, raw, "remembered")
  if (openId.decision === "blocked") return blockNow(s, raw, "remembered")
  if (config.openIdApprover !== true) return blockNow(s, raw, "no-approver")
  const { prompt } = openId
  if (prompt !== undefined) {
    // Each waiting request costs an openid_credentials later: bounded like calls in flight.
    const limit = config.limits.maxPendingCalls
    if (prompt.waiting.length >= limit) return s.fail(raw, ProtocolError.TooManyPending({ limit }))
    s.set({ openId: { ...openId, prompt: { ...prompt, waiting: [...prompt.waiting, requestIdOf(raw)] } } })
    return s.reply(raw, { state: "request" })
  }
  const ticket = s.nextSeq()
  s.set({ openId: { ...openId, prompt: { ticket, waiting: [requestIdOf(raw)] } } })
  s.reply(raw, { state: "request" })
  s.emit({ _tag: "AskOpenIdApprover", ticket, ...(config.origin === undefined ? {} : { origin: config.origin }) })
}

const fetchNow = (s: Stepper, raw: RawRequest, by: Decider): void => {
  s.report({ _tag: "OpenIdAnswered", state: "allowed", by })
  s.start(raw)
  s.call({ _tag: "RequestOpenIdToken" }, { _tag: "OpenIdToken", raw, waiting: [] })
}

const blockNow = (s: Stepper, raw: RawRequest, by: Decider): void => {
  s.report({ _tag: "OpenIdAnswered", state: "blocked", by })
  s.reply(raw, { state: "blocked" })
}

/** The OpenID approver answered. A stale ticket (the prompt was withdrawn) is ignored. */
export const onOpenIdDecided = (s: Stepper, ticket: number, allowed: boolean): void => {
  const { prompt } = s.state.openId
  if (prompt === undefined || prompt.ticket !== ticket) return
  s.set({ openId: { decision: allowed ? "allowed" : "blocked", prompt: undefined } })
  s.report({ _tag: "OpenIdAnswered", state: allowed ? "allowed" : "blocked", by: "approver" })
  if (allowed) s.call({ _tag: "RequestOpenIdToken" }, { _tag: "OpenIdToken", raw: undefined, waiting: prompt.waiting })
  else for (const requestId of prompt.waiting) sendCredentials(s, requestId, { state: "blocked" })
}

/** The homeserver answered a token request: the immediate reply, or each waiting request's credentials. */
export const onOpenIdToken = (s: Stepper, raw: RawRequest | undefined, waiting: ReadonlyArray<string>, result: CallResult): void => {
  const token = result._tag === "OpenIdToken" ? credentials(result.value) : undefined
  if (raw !== undefined) {
    if (token !== undefined) s.reply(raw, { state: "allowed", ...token })
    else if (result._tag === "Failed") s.fail(raw, ProtocolError.Homeserver({ error: result.error }))
    else s.fail(raw, ProtocolError.Malformed({ issue: `unexpected answer ${result._tag}` }))
  }
  if (waiting.length === 0) return
  if (token === undefined) s.report({ _tag: "CallFailed", request: "RequestOpenIdToken", message: result._tag === "Failed" ? result.error.message : `unexpected answer ${result._tag}` })
  for (const requestId of waiting) sendCredentials(s, requestId, token === undefined ? { state: "blocked" } : { state: "allowed", ...token })
}

/** The token's four fields, and nothing else a port may have added (the widget gets what MSC1960 defines). */
const credentials = (token: OpenIdToken): OpenIdToken => ({
  access_token: token.access_token,
  token_type: token.token_type,
  matrix_server_name: token.matrix_server_name,
  expires_in: token.expires_in
})

/** The follow-up of a `request` answer; the widget's acknowledgement is matched and timed out like any. */
const sendCredentials = (s: Stepper, originalRequestId: string, outcome: { readonly state: "allowed" | "blocked" } & Partial<OpenIdToken>): void => {
  const { state, ...token } = outcome
  s.sendRequest("openid_credentials", { state, original_request_id: originalRequestId, ...token }, "openid")
}
