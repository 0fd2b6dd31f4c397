/**
 * Interactive verification of this device with another of the account's devices (SAS emoji), as
 * plain data: what a flow looks like to the console (`VerificationView`), the step the host takes
 * by itself at each point (`autoStep`), and whether a person's action fits the phase (`refusal`).
 * No wasm, no clock, no I/O: verification.ts reads the machine's objects into `FlowFacts`, asks
 * here what to do, and does it.
 *
 * Who starts SAS: the side that sent the request, once the other is ready (matrix-js-sdk and
 * Element do the same when the person picks "emoji"). When the other side requested, the host
 * waits for its `m.key.verification.start` and accepts it by itself, because the person already
 * accepted the request; the emoji are then compared and confirmed (or cancelled) by the person.
 *
 * Models: matrix-org/matrix-rust-sdk `crates/matrix-sdk-crypto/src/verification/requests.rs`
 * (`RequestState`), matrix-org/matrix-js-sdk `src/crypto-api/verification.ts` (`VerificationPhase`).
 */

/** The phase a person sees. */
export type VerificationPhase =
  /** Requested; waiting for the other side to be ready (outgoing) or for the person to accept (incoming). */
  | "requested"
  /** Both sides ready; waiting for SAS to start. */
  | "ready"
  /** SAS started; keys being exchanged. */
  | "started"
  /** The emoji are shown: the person compares them with the other device's and confirms or cancels. */
  | "emoji"
  /** The person confirmed; waiting for the other side's confirmation. */
  | "confirmed"
  | "done"
  | "cancelled"

export interface VerificationEmoji {
  readonly symbol: string
  /** The spec's English name of the emoji ("Dog", "Rocket"). */
  readonly name: string
}

/** What the crypto machine says about one flow, read off its objects. */
export interface FlowFacts {
  readonly flowId: string
  /** This device sent the request. */
  readonly weStarted: boolean
  readonly otherDeviceId: string | undefined
  readonly request: "created" | "requested" | "ready" | "transitioned" | "done" | "cancelled"
  /** The SAS of the flow, once one side started it. */
  readonly sas:
    | {
        readonly weStarted: boolean
        readonly accepted: boolean
        readonly weConfirmed: boolean
        readonly done: boolean
        readonly cancelled: boolean
        /** The machine shows them only while keys are exchanged: the edge keeps them after. */
        readonly emoji: ReadonlyArray<VerificationEmoji> | undefined
      }
    | undefined
  readonly cancel: { readonly code: string; readonly reason: string; readonly byUs: boolean } | undefined
}

/** One flow as the console shows it. */
export interface VerificationView {
  readonly flowId: string
  /** `incoming`: the other device asked; `outgoing`: this host asked (Verify). */
  readonly direction: "incoming" | "outgoing"
  readonly otherDeviceId: string | null
  readonly phase: VerificationPhase
  /** The 7 emoji, from phase `emoji` on (the same list the other device shows). */
  readonly emoji: ReadonlyArray<VerificationEmoji> | null
  readonly cancelled: { readonly code: string; readonly reason: string; readonly byUs: boolean } | null
}

export const phaseOf = (facts: FlowFacts): VerificationPhase => {
  const { sas } = facts
  if (facts.request === "cancelled" || sas?.cancelled === true) return "cancelled"
  if (facts.request === "done" || sas?.done === true) return "done"
  if (sas !== undefined) {
    if (sas.weConfirmed) return "confirmed"
    return sas.emoji === undefined ? "started" : "emoji"
  }
  if (facts.request === "ready" || facts.request === "transitioned") return "ready"
  return "requested"
}

export const viewOf = (facts: FlowFacts): VerificationView => {
  const phase = phaseOf(facts)
  return {
    flowId: facts.flowId,
    direction: facts.weStarted ? "outgoing" : "incoming",
    otherDeviceId: facts.otherDeviceId ?? null,
    phase,
    emoji: phase === "emoji" || phase === "confirmed" || phase === "done" ? (facts.sas?.emoji ?? null) : null,
    cancelled: phase === "cancelled" ? (facts.cancel ?? { code: "m.user", reason: "cancelled", byUs: false }) : null
  }
}

export const isFinished = (phase: VerificationPhase): boolean => phase === "done" || phase === "cancelled"

/** What the host does by itself now, if anything (see the header). */
export type AutoStep = "none" | "start-sas" | "accept-sas"

export const autoStep = (facts: FlowFacts): AutoStep => {
  const phase = phaseOf(facts)
  if (phase === "ready" && facts.weStarted && facts.sas === undefined) return "start-sas"
  if (phase === "started" && facts.sas !== undefined && !facts.sas.weStarted && !facts.sas.accepted) return "accept-sas"
  return "none"
}

/** A person's action on the flow. */
export type VerificationAction = "accept" | "confirm" | "cancel"

/** Why `action` does not fit the flow now, or undefined when it does. */
export const refusal = (view: VerificationView, action: VerificationAction): string | undefined => {
  switch (action) {
    case "accept":
      if (view.direction !== "incoming") return "this host sent the request: the other device accepts it"
      return view.phase === "requested" ? undefined : `the request is ${view.phase}, not waiting to be accepted`
    case "confirm":
      return view.phase === "emoji" ? undefined : `there are no emoji to confirm: the verification is ${view.phase}`
    case "cancel":
      return isFinished(view.phase) ? `the verification is already ${view.phase}` : undefined
  }
}

/** Equal views: the console is told only of changes. */
export const sameView = (a: VerificationView | undefined, b: VerificationView | undefined): boolean => JSON.stringify(a) === JSON.stringify(b)
