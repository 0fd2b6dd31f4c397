/**
 * The service's interactive verification through its admin API: the service signs in as a second
 * device of an account whose cross-signing identity a matrix-js-sdk peer (Rust crypto) set up, and
 * has no recovery key, so it says plainly that its device is unverified. The peer asks to verify
 * it and drives its side (accept → start SAS → compare → confirm); the service's side goes through
 * `/api/verification` (accept, the 7 emoji with names, confirm) and ends cross-signed in
 * `/api/identity`. The cancel case, and malformed verification events from the peer, which leave
 * the service answering. And the console page in headless Chromium: it says the device is
 * unverified, its Verify asks the peer, it shows the 7 emoji with names, and Confirm finishes.
 */
import * as sdk from "matrix-js-sdk"
import { VerificationPhase, type ShowSasCallbacks, type VerificationRequest } from "matrix-js-sdk/lib/crypto-api/index.js"
import { join } from "node:path"
import { existsSync } from "node:fs"
import { chromium } from "playwright-core"
import { describe, expect, it } from "vitest"
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/CryptoEvent.js"
import type { VerificationStatus, VerificationView } from "@widgethost/homeserver-client"
import { parseConfig, type RunningService, serve } from "@widgethost/service"
import { useE2eeWorld } from "../src/e2ee-world.ts"
import { peerSas, rustCryptoPeer, waitFor } from "../src/js-sdk-peer.ts"

const CHROMIUM = "/usr/bin/chromium"
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
const TOKEN = "sas-admin-token-0123456789"

const world = useE2eeWorld("widgethost-service-sas-")

interface Admin {
  readonly get: <T>(path: string) => Promise<T>
  readonly post: (path: string) => Promise<{ readonly status: number; readonly body: Record<string, unknown> }>
}

const adminOf = (url: string): Admin => {
  const call = async (method: string, path: string) => {
    const res = await fetch(`${url}${path}`, { method, headers: { Authorization: `Bearer ${TOKEN}` } })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  return {
    get: async <T,>(path: string) => (await call("GET", path)).body as T,
    post: (path: string) => call("POST", path)
  }
}

interface Setup {
  readonly bob: sdk.MatrixClient
  readonly service: RunningService
  readonly admin: Admin
  readonly serviceLog: Array<string>
}

/** Bob's js-sdk client owns the account; the service signs in as another of bob's devices, with no recovery key. */
const setUp = async (): Promise<Setup> => {
  const bob = await rustCryptoPeer("bob", world)
  const serviceLog: Array<string> = []
  const config = parseConfig({ dataDir: join(world.root, "service"), homeserver: { url: world.hs.baseUrl, user: "bob", password: "bob-password" }, admin: { token: TOKEN } })
  const service = await serve(config, (level, message, fields) => serviceLog.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`))
  world.cleanups.push(() => service.stop())
  const admin = adminOf(service.ready.ready.admin_url)
  const deviceId = service.ready.ready.device_id
  await waitFor("bob seeing the service's device", async () => (await bob.getCrypto()!.getUserDeviceInfo([bob.getUserId()!], true)).get(bob.getUserId()!)?.has(deviceId) === true)
  return { bob, service, admin, serviceLog }
}

const status = async (admin: Admin): Promise<VerificationStatus> => (await admin.get<{ verification: VerificationStatus }>("/api/verification")).verification

const flowIn = async (admin: Admin, phase: VerificationView["phase"], flowId?: string): Promise<VerificationView> => {
  let flow: VerificationView | null = null
  await waitFor(`the admin API showing a verification ${phase}`, async () => {
    flow = (await status(admin)).flow
    return flow?.phase === phase && (flowId === undefined || flow.flowId === flowId)
  })
  return flow!
}


/** The peer asks, the admin API accepts, the peer starts SAS: both sides show their emoji. */
const toEmoji = async ({ bob, admin }: Setup): Promise<{ request: VerificationRequest; sas: ShowSasCallbacks; flow: VerificationView }> => {
  const request = await bob.getCrypto()!.requestOwnUserVerification()
  const asked = await flowIn(admin, "requested", request.transactionId)
  expect(asked).toMatchObject({ direction: "incoming", otherDeviceId: bob.getDeviceId(), emoji: null })
  const accepted = await admin.post(`/api/verification/${encodeURIComponent(asked.flowId)}/accept`)
  expect(accepted).toMatchObject({ status: 200, body: { flow: { phase: "ready" } } })
  await waitFor("bob's request being ready", () => request.phase === VerificationPhase.Ready)
  const shown = peerSas(request)
  await request.startVerification("m.sas.v1")
  const sas = await shown
  return { request, sas, flow: await flowIn(admin, "emoji") }
}

describe("the service's device verified by SAS through the admin API, the peer (matrix-js-sdk, Rust crypto) driving the other side", () => {
  it("says the device is unverified; the peer asks, the admin API accepts and confirms the same 7 emoji; both sides end verified", async () => {
    const setup = await setUp()
    const { bob, admin, service } = setup
    const before = await admin.get<{ identity: { status: string; detail: string } }>("/api/identity")
    expect(before.identity.status).toBe("unverified")
    expect(before.identity.detail).toMatch(/unverified until you verify it from another of your devices/)
    expect(await status(admin)).toEqual({ deviceSigned: false, flow: null })

    const { request, sas, flow } = await toEmoji(setup)
    expect(flow.emoji).toHaveLength(7)
    expect(flow.emoji!.map((e) => [e.symbol, e.name])).toEqual(sas.sas.emoji)
    // The emoji's names are the spec's words, not blank.
    for (const e of flow.emoji!) expect(e.name).toMatch(/^[A-Z][a-z]+( [A-Za-z][a-z]+)?$/) // "Dog", "Light Bulb"

    expect(await admin.post(`/api/verification/${encodeURIComponent(flow.flowId)}/confirm`)).toMatchObject({ status: 200, body: { flow: { phase: "confirmed" } } })
    await sas.confirm()
    await flowIn(admin, "done")
    await waitFor("bob's request being done", () => request.phase === VerificationPhase.Done)

    const deviceId = service.ready.ready.device_id
    await waitFor("the admin API saying the device is signed", async () => (await status(admin)).deviceSigned)
    expect((await admin.get<{ identity: { status: string } }>("/api/identity")).identity.status).toBe("cross-signed")
    await bob.getCrypto()!.getUserDeviceInfo([bob.getUserId()!], true)
    const seen = await bob.getCrypto()!.getDeviceVerificationStatus(bob.getUserId()!, deviceId)
    expect({ signedByOwner: seen?.signedByOwner, crossSigningVerified: seen?.crossSigningVerified }).toEqual({ signedByOwner: true, crossSigningVerified: true })
  })

  it("cancel from the admin API at the emoji: both sides end cancelled, the device stays unverified, and wrong calls get 404 / 409", async () => {
    const setup = await setUp()
    const { admin, request } = { ...setup, ...(await toEmoji(setup)) }
    const flow = (await status(admin)).flow!
    const path = `/api/verification/${encodeURIComponent(flow.flowId)}`
    expect(await admin.post(`${path}/cancel`)).toMatchObject({ status: 200, body: { flow: { phase: "cancelled", cancelled: { byUs: true } } } })
    await waitFor("bob's request being cancelled", () => request.phase === VerificationPhase.Cancelled)
    expect(await admin.post(`${path}/confirm`)).toMatchObject({ status: 409, body: { error: { code: "Conflict" } } })
    expect(await admin.post(`${path}/cancel`)).toMatchObject({ status: 409 })
    expect(await admin.post(`/api/verification/other-flow/accept`)).toMatchObject({ status: 404, body: { error: { code: "NotFound" } } })
    expect(await admin.post(`${path}/explode`)).toMatchObject({ status: 404 })
    expect((await fetch(`${setup.service.ready.ready.admin_url}${path}/confirm`, { method: "POST" })).status).toBe(401)
    const after = await status(admin)
    expect(after.deviceSigned).toBe(false)
    expect((await admin.get<{ identity: { status: string } }>("/api/identity")).identity.status).toBe("unverified")
  })

  it("malformed and out-of-order verification events from the peer leave the service answering, and a real request still works after", async () => {
    const setup = await setUp()
    const { bob, admin, service } = setup
    const me = bob.getUserId()!
    const device = service.ready.ready.device_id
    const junk: Array<[string, Record<string, unknown>]> = [
      ["m.key.verification.request", { from_device: 42, methods: "m.sas.v1", timestamp: "now" }],
      ["m.key.verification.request", { transaction_id: { nested: true }, from_device: bob.getDeviceId() }],
      ["m.key.verification.start", { transaction_id: "never-requested", method: "m.sas.v1", from_device: bob.getDeviceId() }],
      ["m.key.verification.key", { transaction_id: "never-requested", key: 7 }],
      ["m.key.verification.mac", { transaction_id: "never-requested", mac: "x", keys: null }],
      ["m.key.verification.cancel", { transaction_id: "never-requested" }],
      ["m.key.verification.ready", { transaction_id: "never-requested", from_device: bob.getDeviceId(), methods: ["m.sas.v1"] }],
      ["m.key.verification.done", { transaction_id: "never-requested" }]
    ]
    for (const [type, content] of junk) await bob.sendToDevice(type, new Map([[me, new Map([[device, content]])]]))
    const synced = service.homeserver.nextSync()
    await synced
    await service.homeserver.nextSync()
    expect((await admin.get<{ identity: unknown }>("/api/identity")).identity).not.toBeNull()
    // None of it is a flow the person could act on.
    expect(await status(admin)).toEqual({ deviceSigned: false, flow: null })

    const { sas, flow } = await toEmoji(setup)
    expect(flow.emoji!.map((e) => [e.symbol, e.name])).toEqual(sas.sas.emoji)
  })

  it.skipIf(!existsSync(CHROMIUM))("in the console (Chromium): unverified said plainly, Verify asks the peer, the 7 emoji with names, Confirm, then signed", async () => {
    const setup = await setUp()
    const { bob, admin } = setup
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    world.cleanups.push(() => browser.close())
    const page = await browser.newPage()
    const problems: Array<string> = []
    page.on("pageerror", (e) => problems.push(e.message))
    await page.goto(`${setup.service.ready.ready.admin_url}/?token=${encodeURIComponent(TOKEN)}`)
    await page.locator("#device-unverified").waitFor()
    expect(await page.locator("#device-unverified").textContent()).toMatch(/This device is unverified until you verify it from another of your devices/)
    expect(await page.locator("#identity").textContent()).toMatch(/^unverified: /)

    const received = new Promise<VerificationRequest>((resolve) => bob.on(CryptoEvent.VerificationRequestReceived, resolve))
    await page.locator("button[data-verification=verify]").click()
    const request = await received
    await page.locator("#verification-phase[data-phase=requested]").waitFor()
    const shown = peerSas(request)
    await request.accept()
    const sas = await shown
    await page.locator("#verification-emoji li").nth(6).waitFor()
    const items = page.locator("#verification-emoji li")
    expect(await items.count()).toBe(7)
    const onPage: Array<[string, string]> = []
    for (let i = 0; i < 7; i++) onPage.push([(await items.nth(i).locator(".symbol").textContent())!, (await items.nth(i).locator(".name").textContent())!])
    expect(onPage).toEqual(sas.sas.emoji)

    await sas.confirm()
    await page.locator("button[data-verification=confirm]").click()
    await page.locator("#device-signed").waitFor({ timeout: 20_000 })
    await waitFor("the console's trust line saying cross-signed", async () => /^cross-signed: /.test((await page.locator("#identity").textContent()) ?? ""))
    expect((await status(admin)).flow?.phase).toBe("done")
    expect(await page.locator("button[data-verification=verify]").count()).toBe(0)
    expect(problems).toEqual([])
  })
})
