/**
 * The embedding client's say on MSC1960 `get_openid`: may this widget learn, verifiably, who the
 * user is? Asked only when the policy has no rule naming `m.openid` for the widget and its
 * document was not told yet. The MSC sets no time limit on the user's choice, so neither does the
 * engine: the prompt stays open until the approver resolves, or the signal aborts because the
 * session closed or its widget loaded a new document (whose answer would then go to nobody).
 * Asked only by an engine given `openIdFeature` (its `openIdPrompt`): one without it bundles none of this.
 */
import { Withdrawable } from "./withdrawable.ts"

/** What an OpenID approver is told. */
export interface OpenIdApprovalRequest {
  readonly sessionId: string
  readonly widgetId: string
  /** The widget's origin, when the session was opened with one. */
  readonly origin: string | undefined
  /** Aborted when the answer is no longer wanted. */
  readonly signal: AbortSignal
}

/**
 * Resolves true to hand the widget an OpenID token, false to refuse. A rejection counts as a
 * refusal (and is reported as an `approver` fault unless the prompt was withdrawn). Either answer
 * holds for the rest of the widget's document: later requests are answered without asking.
 *
 * @example
 * const openIdApprover: OpenIdApprover = ({ widgetId, signal }) => dialog.confirm(`${widgetId} wants to verify your identity`, { signal })
 */
export type OpenIdApprover = (request: OpenIdApprovalRequest) => Promise<boolean>

/** An open OpenID prompt; its signal is made when first read (most approvers never read it). */
export class OpenIdPrompt extends Withdrawable implements OpenIdApprovalRequest {
  constructor(
    readonly sessionId: string,
    readonly widgetId: string,
    readonly origin: string | undefined
  ) {
    super()
  }
}

/**
 * Runs `approver` on `prompt`; `decide` gets its answer (anything but `true` refuses), or false
 * when it throws or rejects, after `fault` heard why.
 */
export const askOpenIdApprover = (approver: OpenIdApprover | undefined, prompt: OpenIdPrompt, decide: (allowed: boolean) => void, fault: (error: unknown) => void): void => {
  if (approver === undefined) return decide(false)
  const refuse = (error: unknown) => {
    fault(error)
    decide(false)
  }
  try {
    approver(prompt).then((allowed) => decide(allowed === true), refuse)
  } catch (error) {
    refuse(error)
  }
}

/**
 * Opens an OpenID prompt for one session, hands it to `keep` (the engine withdraws it when the
 * answer is no longer wanted), then asks `approver` (see {@link askOpenIdApprover}).
 */
export const openIdPrompt = (
  approver: OpenIdApprover | undefined,
  sessionId: string,
  widgetId: string,
  origin: string | undefined,
  keep: (prompt: Withdrawable) => void,
  decide: (allowed: boolean) => void,
  fault: (error: unknown) => void
): void => {
  const prompt = new OpenIdPrompt(sessionId, widgetId, origin)
  keep(prompt)
  askOpenIdApprover(approver, prompt, decide, fault)
}
