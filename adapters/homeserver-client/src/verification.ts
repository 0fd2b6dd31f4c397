import * as sdk from "@matrix-org/matrix-sdk-crypto-wasm"
import type { E2ee, OutgoingRequest, VerificationEventSeen } from "./crypto.ts"
import { autoStep, type FlowFacts, isFinished, refusal, sameView, type VerificationAction, type VerificationEmoji, type VerificationView, viewOf } from "./verification-flow.ts"

/**
 * Interactive SAS verification of this device by another of the account's devices, for an account
 * whose recovery key the host does not have: the other device (which holds the cross-signing
 * keys) compares 7 emoji with the ones the console shows, both sides confirm, and the other
 * device signs this one. The crypto machine does the protocol (its `VerificationRequest` and
 * `Sas`); the steps are in verification-flow.ts; this file is the thin edge between them: which
 * flow is followed, the requests the machine hands back (sent at once, under the crypto lock),
 * a timeout, and whether the device is now signed by its owner.
 *
 * - Incoming: an `m.key.verification.request` from another device of this account becomes the
 *   flow, one at a time (see `replaceable`); `accept` answers it.
 * - Outgoing: `request` asks every other device of the account; the first to be ready gets SAS.
 * - Input from the other device is the machine's to judge: a malformed or out-of-order step
 *   cancels the flow there, never throws here. Errors of the edge go to `onError`.
 *
 * Models: matrix-org/matrix-js-sdk `src/rust-crypto/verification.ts` (`RustVerificationRequest`,
 * `RustSASVerifier`).
 */

export interface VerificationOptions {
  readonly e2ee: E2ee
  /** A flow not finished by then is cancelled with `m.timeout`. Default 10 minutes (the spec's request timeout). */
  readonly timeoutMs?: number
  /** How long after `done` to wait for the other device's signature to reach the server. Default 30 s. */
  readonly signatureWaitMs?: number
  readonly onError?: (error: unknown) => void
}

/** What the console shows: whether this device is signed by its owner, and the flow in hand. */
export interface VerificationStatus {
  readonly deviceSigned: boolean
  readonly flow: VerificationView | null
}

export type VerificationAnswer =
  | { readonly _tag: "Ok"; readonly verification: VerificationView }
  | { readonly _tag: "NotFound"; readonly message: string }
  | { readonly _tag: "Refused"; readonly message: string }

const SAS_ONLY = [sdk.VerificationMethod.SasV1]

const requestPhases: Record<sdk.VerificationRequestPhase, FlowFacts["request"]> = {
  [sdk.VerificationRequestPhase.Created]: "created",
  [sdk.VerificationRequestPhase.Requested]: "requested",
  [sdk.VerificationRequestPhase.Ready]: "ready",
  [sdk.VerificationRequestPhase.Transitioned]: "transitioned",
  [sdk.VerificationRequestPhase.Done]: "done",
  [sdk.VerificationRequestPhase.Cancelled]: "cancelled"
}

/** Reads the machine's objects into plain data (every wasm handle made here is freed here). */
const factsOf = (request: sdk.VerificationRequest, shown: { emoji?: ReadonlyArray<VerificationEmoji> }): FlowFacts => {
  const verification = request.getVerification()
  let sas: FlowFacts["sas"]
  let sasCancel: sdk.CancelInfo | undefined
  if (verification instanceof sdk.Sas) {
    const emoji = verification.emoji()?.map((e) => {
      const out = { symbol: e.symbol, name: e.description }
      e.free()
      return out
    })
    // Past the key exchange the machine no longer gives the emoji; the ones shown stay shown.
    if (emoji !== undefined) shown.emoji = emoji
    sas = {
      weStarted: verification.weStarted(),
      accepted: verification.hasBeenAccepted(),
      weConfirmed: verification.haveWeConfirmed(),
      done: verification.isDone(),
      cancelled: verification.isCancelled(),
      emoji: shown.emoji
    }
    sasCancel = verification.cancelInfo()
  }
  verification?.free()
  const info = request.cancelInfo ?? sasCancel
  const cancel = info === undefined ? undefined : { code: info.cancelCode(), reason: info.reason(), byUs: info.cancelledbyUs() }
  info?.free()
  const other = request.otherDeviceId
  const facts: FlowFacts = {
    flowId: request.flowId,
    weStarted: request.weStarted(),
    otherDeviceId: other?.toString(),
    request: requestPhases[request.phase()],
    sas,
    cancel
  }
  other?.free()
  return facts
}

/** The flow followed: the machine's request, its timeout, and the emoji once shown. */
interface Flow {
  readonly request: sdk.VerificationRequest
  timer: NodeJS.Timeout | undefined
  emoji?: ReadonlyArray<VerificationEmoji>
}

export class DeviceVerification {
  private flow: Flow | undefined
  private view: VerificationView | undefined
  private deviceSigned: boolean
  private readonly listeners = new Set<() => void>()
  private readonly unsubscribe: () => void
  private readonly timers = new Set<NodeJS.Timeout>()
  private closed = false

  private constructor(
    private readonly options: VerificationOptions,
    signed: boolean
  ) {
    this.deviceSigned = signed
    this.unsubscribe = options.e2ee.onVerificationEvents((events) => void this.seen(events).catch((e: unknown) => this.options.onError?.(e)))
  }

  /**
   * Follows verification flows of `e2ee`'s device from now on.
   *
   * @example
   * const verification = await DeviceVerification.open({ e2ee: hs.e2ee })
   * verification.onChange(() => console.log(verification.status()))
   */
  static async open(options: VerificationOptions): Promise<DeviceVerification> {
    // Not knowing (the keys query failed) is "unverified": the console then offers Verify.
    const signed = await options.e2ee.exclusive((machine, send) => ownDeviceSigned(machine, send, options.e2ee)).catch((e: unknown) => {
      options.onError?.(e)
      return false
    })
    return new DeviceVerification(options, signed)
  }

  status(): VerificationStatus {
    return { deviceSigned: this.deviceSigned, flow: this.view ?? null }
  }

  /** Called after every change of `status()`. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => void this.listeners.delete(listener)
  }

  /** Asks the account's other devices to verify this one (the console's Verify). */
  request(): Promise<VerificationAnswer> {
    const { e2ee } = this.options
    return e2ee.exclusive(async (machine, send): Promise<VerificationAnswer> => {
      if (this.view !== undefined && !isFinished(this.view.phase)) return { _tag: "Refused", message: `a verification is already ${this.view.phase}; cancel it first` }
      await send(machine.queryKeysForUsers([new sdk.UserId(e2ee.userId)]))
      const identity = await machine.getIdentity(new sdk.UserId(e2ee.userId))
      if (!(identity instanceof sdk.OwnUserIdentity)) {
        identity?.free()
        return { _tag: "Refused", message: "the account has no cross-signing identity: there is nothing another device could verify this one with" }
      }
      try {
        const [request, outgoing] = await identity.requestVerification(SAS_ONLY)
        await send(outgoing)
        this.follow(request)
      } finally {
        identity.free()
      }
      return this.step(send)
    })
  }

  /** The person accepts the other device's request. */
  accept(flowId: string): Promise<VerificationAnswer> {
    return this.act(flowId, "accept", (request) => request.acceptWithMethods(SAS_ONLY))
  }

  /** The person says the emoji match the other device's. */
  confirm(flowId: string): Promise<VerificationAnswer> {
    return this.act(flowId, "confirm", async (request) => {
      const sas = request.getVerification()
      try {
        return sas instanceof sdk.Sas ? await sas.confirm() : []
      } finally {
        sas?.free()
      }
    })
  }

  /** The person cancels (the emoji differ, or they changed their mind). */
  cancel(flowId: string): Promise<VerificationAnswer> {
    return this.act(flowId, "cancel", (request) => request.cancel())
  }

  /** Stops following flows (the flow in hand is left to the machine). */
  close(): void {
    this.closed = true
    this.unsubscribe()
    for (const t of this.timers) clearTimeout(t)
    if (this.flow?.timer !== undefined) clearTimeout(this.flow.timer)
    this.flow?.request.free()
    this.flow = undefined
    this.listeners.clear()
  }

  private act(
    flowId: string,
    action: VerificationAction,
    run: (request: sdk.VerificationRequest) => Promise<OutgoingRequest | ReadonlyArray<OutgoingRequest> | undefined> | OutgoingRequest | undefined
  ): Promise<VerificationAnswer> {
    return this.options.e2ee.exclusive(async (_machine, send): Promise<VerificationAnswer> => {
      const flow = this.flow
      if (flow === undefined || this.view === undefined || this.view.flowId !== flowId) return { _tag: "NotFound", message: `no verification ${JSON.stringify(flowId)}` }
      // The machine may have moved since the last look (a cancel from the other side).
      const now = viewOf(factsOf(flow.request, flow))
      const why = refusal(now, action)
      if (why !== undefined) {
        this.publish(now)
        return { _tag: "Refused", message: why }
      }
      const out = await run(flow.request)
      const requests: ReadonlyArray<OutgoingRequest> = out === undefined ? [] : isRequestList(out) ? out : [out]
      for (const r of requests) await send(r)
      return this.step(send)
    })
  }

  /** The flows the machine just processed events of (under the crypto lock of that sync: scheduled after it). */
  private async seen(events: ReadonlyArray<VerificationEventSeen>): Promise<void> {
    const { e2ee } = this.options
    const own = events.filter((e) => e.sender === e2ee.userId)
    if (own.length === 0 || this.closed) return
    await e2ee.exclusive(async (machine, send) => {
      if (this.closed) return
      const incoming = this.replaceable() ? own.findLast((e) => e.type === "m.key.verification.request" && e.flowId !== this.view?.flowId) : undefined
      if (incoming !== undefined) {
        const request = machine.getVerificationRequest(new sdk.UserId(e2ee.userId), incoming.flowId)
        if (request !== undefined && !request.weStarted() && !request.isCancelled()) {
          // The request it replaces was never answered here: the device that sent it is told.
          const replaced = this.flow !== undefined && this.view !== undefined && !isFinished(this.view.phase) ? this.flow.request.cancel() : undefined
          if (replaced !== undefined) await send(replaced)
          this.follow(request)
        } else request?.free()
      }
      // Any flow's event may move ours: the machine cancels both requests when a second one comes
      // while the first is open.
      if (this.flow !== undefined) await this.step(send)
    })
  }

  /**
   * A new request takes the place of the flow in hand when that one is over, or is another
   * device's request nobody here has accepted yet (a stale or bogus one must not block the real
   * one until it times out). A flow the person accepted or started is never displaced.
   */
  private replaceable(): boolean {
    const view = this.view
    return view === undefined || isFinished(view.phase) || (view.direction === "incoming" && view.phase === "requested")
  }

  private follow(request: sdk.VerificationRequest): void {
    if (this.flow?.timer !== undefined) clearTimeout(this.flow.timer)
    this.flow?.request.free()
    const flow: Flow = { request, timer: undefined }
    flow.timer = setTimeout(() => void this.timeOut(flow).catch((e: unknown) => this.options.onError?.(e)), this.options.timeoutMs ?? 10 * 60_000)
    flow.timer.unref()
    this.flow = flow
  }

  private timeOut(flow: Flow): Promise<void> {
    return this.options.e2ee.exclusive(async (_machine, send) => {
      flow.timer = undefined
      if (this.flow !== flow || this.closed) return
      // The machine may have ended it itself (its own SAS timeout) without an event telling us.
      if (isFinished(viewOf(factsOf(flow.request, flow)).phase)) return void (await this.step(send))
      // A started SAS can say why (m.timeout); a bare request only cancels.
      const sas = flow.request.getVerification()
      const out = sas instanceof sdk.Sas ? sas.cancelWithCode("m.timeout") : flow.request.cancel()
      sas?.free()
      if (out !== undefined) await send(out)
      await this.step(send, { code: "m.timeout", reason: "the verification timed out", byUs: true })
    })
  }

  /** Takes the host's own steps (bounded), publishes the view, and after `done` waits for the signature. */
  private async step(send: (r: OutgoingRequest) => Promise<void>, cancelledAs?: NonNullable<VerificationView["cancelled"]>): Promise<VerificationAnswer> {
    const flow = this.flow!
    let facts = factsOf(flow.request, flow)
    for (let round = 0; round < 3; round++) {
      const next = autoStep(facts)
      if (next === "none") break
      if (next === "start-sas") {
        const started = await flow.request.startSas()
        if (started !== undefined) {
          const [sas, out] = started
          sas.free()
          await send(out)
        }
      } else {
        const sas = flow.request.getVerification()
        const out = sas instanceof sdk.Sas ? sas.accept() : undefined
        sas?.free()
        if (out !== undefined) await send(out)
      }
      facts = factsOf(flow.request, flow)
    }
    let view = viewOf(facts)
    // The machine's own cancel carries its generic reason; the timeout says what happened.
    if (cancelledAs !== undefined && view.phase === "cancelled") view = { ...view, cancelled: cancelledAs }
    if (isFinished(view.phase) && flow.timer !== undefined) {
      clearTimeout(flow.timer)
      flow.timer = undefined
    }
    const wasDone = this.view?.flowId === view.flowId && this.view.phase === "done"
    this.publish(view)
    if (view.phase === "done" && !wasDone && !this.deviceSigned) this.awaitSignature()
    return { _tag: "Ok", verification: view }
  }

  private publish(view: VerificationView): void {
    if (sameView(this.view, view)) return
    this.view = view
    this.changed()
  }

  private changed(): void {
    for (const l of this.listeners) l()
  }

  /** The other device uploads its signature of this one after `done`: look until it is on the server. */
  private awaitSignature(): void {
    const { e2ee } = this.options
    const deadline = Date.now() + (this.options.signatureWaitMs ?? 30_000)
    const look = () => {
      const t = setTimeout(() => {
        this.timers.delete(t)
        if (this.closed) return
        void e2ee
          .exclusive((machine, send) => ownDeviceSigned(machine, send, e2ee))
          .then((signed) => {
            if (signed) {
              this.deviceSigned = true
              this.changed()
            } else if (Date.now() < deadline) look()
          })
          .catch((e: unknown) => this.options.onError?.(e))
      }, 500)
      t.unref()
      this.timers.add(t)
    }
    look()
  }
}

const isRequestList = (out: OutgoingRequest | ReadonlyArray<OutgoingRequest>): out is ReadonlyArray<OutgoingRequest> => Array.isArray(out)

/** Whether the server's current keys have this device signed by the account's self-signing key. */
const ownDeviceSigned = async (machine: sdk.OlmMachine, send: (r: OutgoingRequest) => Promise<void>, e2ee: E2ee): Promise<boolean> => {
  await send(machine.queryKeysForUsers([new sdk.UserId(e2ee.userId)]))
  const device = await machine.getDevice(new sdk.UserId(e2ee.userId), new sdk.DeviceId(e2ee.deviceId))
  if (device === undefined) return false
  try {
    return device.isCrossSignedByOwner()
  } finally {
    device.free()
  }
}
