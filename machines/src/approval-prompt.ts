/**
 * A capability prompt as the embedding client's approver gets it: who asks (the widget's
 * definition and origin), what it asks for, each capability as the widget wrote it beside its
 * canonical form and its meaning in words, and a signal for when the prompt is no longer wanted.
 */
import { type CapabilityDescriptions, describeCapabilityWith, formatCapability, parseCapability, Result, type WidgetDefinition, Withdrawable } from "@widgethost/core"

/** One capability of a prompt. */
export interface RequestedCapability {
  /** As the widget wrote it (what approving grants, and what the approver answers with). */
  readonly requested: string
  /** The canonical stable form (`m.` names, escapes normalised); an invalid one stays as written. */
  readonly canonical: string
  /** What approving it grants, in words, for the person asked. */
  readonly meaning: string
}

/** A capability prompt for the embedding client (a UI dialog, a rule engine, a test script). */
export interface ApprovalRequest {
  readonly sessionId: string
  readonly widgetId: string
  /** The widget asking: its name, URL template, type, kind and room (for a room widget). */
  readonly widget: WidgetDefinition
  /** The origin the widget's messages come from, when the transport knows it. */
  readonly origin: string | undefined
  /** Only capabilities not already approved and not decided by the policy. */
  readonly requested: ReadonlyArray<string>
  /** Each of `requested`, in the same order, with its canonical form and meaning. */
  readonly capabilities: ReadonlyArray<RequestedCapability>
  readonly alreadyApproved: ReadonlyArray<string>
  /** Aborted when the prompt is no longer wanted (session closed, prompt timed out). */
  readonly signal: AbortSignal
}

/** Resolves with the capabilities to approve (a subset of `requested`; anything else is ignored). */
export type Approver = (request: ApprovalRequest) => Promise<ReadonlyArray<string>>

const described = (requested: string, descriptions: CapabilityDescriptions): RequestedCapability => {
  const parsed = parseCapability(requested)
  return { requested, canonical: Result.isSuccess(parsed) ? formatCapability(parsed.success) : requested, meaning: describeCapabilityWith(requested, descriptions) }
}

/**
 * The approval request an approver gets. Its `signal` and `capabilities` are made when first read
 * (prototype getters: destructure or read them; a spread copy has neither): most approvers
 * answer from `requested` alone.
 */
export class Prompt extends Withdrawable implements ApprovalRequest {
  private details: ReadonlyArray<RequestedCapability> | undefined

  constructor(
    readonly sessionId: string,
    readonly widget: WidgetDefinition,
    readonly origin: string | undefined,
    readonly requested: ReadonlyArray<string>,
    readonly alreadyApproved: ReadonlyArray<string>,
    /** The engine's features' (`FeatureTable.descriptions`): only what it serves is ever asked about. */
    private readonly descriptions: CapabilityDescriptions
  ) {
    super()
  }

  get widgetId(): string {
    return this.widget.id
  }

  get capabilities(): ReadonlyArray<RequestedCapability> {
    return (this.details ??= this.requested.map((requested) => described(requested, this.descriptions)))
  }
}
