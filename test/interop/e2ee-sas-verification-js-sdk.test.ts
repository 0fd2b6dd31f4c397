/**
 * Interactive SAS verification of a widgethost device (`DeviceVerification`, the homeserver
 * client's edge over matrix-sdk-crypto's verification) with matrix-js-sdk 36 and its Rust crypto
 * driving the other side, against the embedded homeserver. The peer owns the account and its
 * cross-signing identity; widgethost signs in as a second device of it without a recovery key, so
 * it starts unverified. Both directions: the peer asks and widgethost accepts, and widgethost asks
 * and the peer accepts. Both sides show the same 7 emoji; after both confirm, the peer has signed
 * widgethost's device (it sees it verified, and widgethost sees itself signed by its owner), and
 * the cross-signing private keys reach widgethost by secret gossip. A
 * cancel from either side, and a timeout, end the flow on both sides.
 */
import * as sdk from "matrix-js-sdk"
import { VerificationPhase, type VerificationRequest } from "matrix-js-sdk/lib/crypto-api/index.js"
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/CryptoEvent.js"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { connectHomeserver, DeviceVerification, type MatrixHomeserver, type VerificationOptions, type VerificationView } from "@widgethost/homeserver-client"
import { useE2eeWorld } from "../src/e2ee-world.ts"
import { peerSas, rustCryptoPeer, waitFor } from "../src/js-sdk-peer.ts"

const world = useE2eeWorld("widgethost-sas-")

interface Setup {
  readonly bob: sdk.MatrixClient
  readonly port: MatrixHomeserver
  readonly verification: DeviceVerification
}

/** Bob's js-sdk client (which bootstraps the account's cross-signing) and a widgethost device of bob's, syncing. */
const setUp = async (options: Partial<VerificationOptions> = {}): Promise<Setup> => {
  const bob = await rustCryptoPeer("bob", world)
  const port = await connectHomeserver({ baseUrl: world.hs.baseUrl, auth: { user: "bob", password: "bob-password" }, dataDir: join(world.root, "widgethost"), sync: { timeoutMs: 500 } })
  world.cleanups.push(() => port.stop())
  const errors: Array<unknown> = []
  const verification = await DeviceVerification.open({ e2ee: port.e2ee, onError: (e) => errors.push(e), ...options })
  world.cleanups.push(() => verification.close())
  world.cleanups.push(() => expect(errors).toEqual([]))
  const synced = port.nextSync()
  port.start()
  await synced
  // Bob's client learns of the new device before it asks it anything.
  await waitFor("bob seeing the widgethost device", async () => (await bob.getCrypto()!.getUserDeviceInfo([bob.getUserId()!], true)).get(bob.getUserId()!)?.has(port.deviceId) === true)
  return { bob, port, verification }
}

const view = (v: DeviceVerification): VerificationView | null => v.status().flow

const waitForPhase = async (v: DeviceVerification, phase: VerificationView["phase"]): Promise<VerificationView> => {
  await waitFor(`widgethost's verification reaching ${phase}`, () => view(v)?.phase === phase)
  return view(v)!
}


/** Both sides' end state: the peer signed widgethost's device, widgethost trusts the peer and itself. */
const expectVerifiedBothWays = async ({ bob, port, verification }: Setup) => {
  const crypto = bob.getCrypto()!
  await waitFor("bob's client seeing the widgethost device as cross-signed", async () => {
    await crypto.getUserDeviceInfo([bob.getUserId()!], true)
    const status = await crypto.getDeviceVerificationStatus(bob.getUserId()!, port.deviceId)
    return status?.signedByOwner === true && status.crossSigningVerified
  })
  await waitFor("widgethost seeing its device signed by its owner", () => verification.status().deviceSigned)
  const trust = await port.e2ee.exclusive(async (machine) => {
    const { UserId, DeviceId, OwnUserIdentity } = await import("@matrix-org/matrix-sdk-crypto-wasm")
    const identity = await machine.getIdentity(new UserId(port.userId))
    const peerDevice = await machine.getDevice(new UserId(port.userId), new DeviceId(bob.getDeviceId()!))
    const out = { identityVerified: identity instanceof OwnUserIdentity && identity.isVerified(), peerDeviceVerified: peerDevice?.isVerified() === true }
    identity?.free()
    peerDevice?.free()
    return out
  })
  expect(trust).toEqual({ identityVerified: true, peerDeviceVerified: true })
  // After verifying its own device, the machine asks the other device for the cross-signing
  // private keys (m.secret.request) and gets them, as Element's devices do: the host holds them now.
  await waitFor("the cross-signing private keys gossiped to widgethost", () =>
    port.e2ee.exclusive(async (machine) => {
      const held = await machine.crossSigningStatus()
      const all = held.hasMaster && held.hasSelfSigning && held.hasUserSigning
      held.free()
      return all
    })
  )
}

describe("SAS verification of a widgethost device, the other side driven by matrix-js-sdk with Rust crypto", () => {
  it("the peer requests, widgethost accepts: the same 7 emoji on both sides, both confirm, and both end verified", async () => {
    const setup = await setUp()
    const { bob, verification } = setup
    expect(verification.status()).toEqual({ deviceSigned: false, flow: null })

    const request = await bob.getCrypto()!.requestOwnUserVerification()
    const incoming = await waitForPhase(verification, "requested")
    expect(incoming).toMatchObject({ direction: "incoming", otherDeviceId: bob.getDeviceId(), emoji: null, cancelled: null })
    expect(await verification.confirm(incoming.flowId)).toMatchObject({ _tag: "Refused" }) // no emoji yet

    expect(await verification.accept(incoming.flowId)).toMatchObject({ _tag: "Ok", verification: { phase: "ready" } })
    await waitFor("bob's request being ready", () => request.phase === VerificationPhase.Ready)
    const shown = peerSas(request)
    await request.startVerification("m.sas.v1")
    const sas = await shown
    const ours = await waitForPhase(verification, "emoji")
    expect(ours.emoji).toHaveLength(7)
    expect(ours.emoji!.map((e) => [e.symbol, e.name])).toEqual(sas.sas.emoji)

    expect(await verification.confirm(ours.flowId)).toMatchObject({ _tag: "Ok", verification: { phase: "confirmed" } })
    await sas.confirm()
    await waitForPhase(verification, "done")
    await waitFor("bob's request being done", () => request.phase === VerificationPhase.Done)
    await expectVerifiedBothWays(setup)
  })

  it("widgethost requests, the peer accepts: widgethost starts SAS, both confirm, and both end verified", async () => {
    const setup = await setUp()
    const { bob, verification } = setup
    const received = new Promise<VerificationRequest>((resolve) => bob.on(CryptoEvent.VerificationRequestReceived, resolve))
    const asked = await verification.request()
    expect(asked).toMatchObject({ _tag: "Ok", verification: { direction: "outgoing", phase: "requested" } })
    expect(await verification.request()).toMatchObject({ _tag: "Refused" }) // one at a time

    const request = await received
    const shown = peerSas(request)
    await request.accept()
    const sas = await shown
    const ours = await waitForPhase(verification, "emoji")
    expect(ours.otherDeviceId).toBe(bob.getDeviceId())
    expect(ours.emoji!.map((e) => [e.symbol, e.name])).toEqual(sas.sas.emoji)
    await sas.confirm()
    await verification.confirm(ours.flowId)
    await waitForPhase(verification, "done")
    await expectVerifiedBothWays(setup)
  })

  it("widgethost cancels at the emoji (they differ, say): both sides end cancelled and the device stays unverified", async () => {
    const setup = await setUp()
    const { bob, port, verification } = setup
    const request = await bob.getCrypto()!.requestOwnUserVerification()
    const incoming = await waitForPhase(verification, "requested")
    await verification.accept(incoming.flowId)
    await waitFor("bob's request being ready", () => request.phase === VerificationPhase.Ready)
    const shown = peerSas(request)
    await request.startVerification("m.sas.v1")
    await shown
    const ours = await waitForPhase(verification, "emoji")

    expect(await verification.cancel(ours.flowId)).toMatchObject({ _tag: "Ok", verification: { phase: "cancelled", cancelled: { byUs: true } } })
    await waitFor("bob's request being cancelled", () => request.phase === VerificationPhase.Cancelled)
    expect(await verification.confirm(ours.flowId)).toMatchObject({ _tag: "Refused" })
    expect(await verification.cancel("no-such-flow")).toMatchObject({ _tag: "NotFound" })
    await bob.getCrypto()!.getUserDeviceInfo([bob.getUserId()!], true)
    expect((await bob.getCrypto()!.getDeviceVerificationStatus(bob.getUserId()!, port.deviceId))?.signedByOwner).toBe(false)
    expect(verification.status().deviceSigned).toBe(false)
  })

  it("the peer cancels: widgethost's flow ends cancelled, not by us, and a new request can follow", async () => {
    const { bob, verification } = await setUp()
    const request = await bob.getCrypto()!.requestOwnUserVerification()
    const incoming = await waitForPhase(verification, "requested")
    await request.cancel()
    const cancelled = await waitForPhase(verification, "cancelled")
    expect(cancelled.cancelled).toMatchObject({ byUs: false })
    expect(await verification.accept(incoming.flowId)).toMatchObject({ _tag: "Refused" })

    const again = await bob.getCrypto()!.requestOwnUserVerification()
    await waitFor("the second request", () => view(verification)?.flowId === again.transactionId && view(verification)?.phase === "requested")
  })

  it("a request nobody answers times out: cancelled on both sides, and widgethost says it timed out (m.timeout)", async () => {
    const { bob, verification } = await setUp({ timeoutMs: 1_500 })
    const request = await bob.getCrypto()!.requestOwnUserVerification()
    await waitForPhase(verification, "requested")
    const cancelled = await waitForPhase(verification, "cancelled")
    expect(cancelled.cancelled).toMatchObject({ code: "m.timeout", byUs: true })
    await waitFor("bob's request being cancelled", () => request.phase === VerificationPhase.Cancelled)
  })

  it("two requests at once from the account's devices: the crypto machine cancels both (as matrix-rust-sdk does), the console says so, and a later request works", async () => {
    const { bob, verification } = await setUp()
    const first = await bob.getCrypto()!.requestOwnUserVerification()
    await waitFor("the first request", () => view(verification)?.flowId === first.transactionId)
    const second = await bob.getCrypto()!.requestOwnUserVerification()
    await waitFor("both of the peer's requests cancelled", () => first.phase === VerificationPhase.Cancelled && second.phase === VerificationPhase.Cancelled)
    const ended = await waitForPhase(verification, "cancelled")
    expect(ended).toMatchObject({ flowId: first.transactionId, emoji: null })

    const third = await bob.getCrypto()!.requestOwnUserVerification()
    await waitFor("the third request followed", () => view(verification)?.flowId === third.transactionId && view(verification)?.phase === "requested")
    expect(await verification.accept(third.transactionId!)).toMatchObject({ _tag: "Ok", verification: { phase: "ready" } })
    await waitFor("the peer's third request ready", () => third.phase === VerificationPhase.Ready)
  })
})
