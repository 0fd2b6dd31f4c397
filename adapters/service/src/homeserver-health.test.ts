/**
 * The console's homeserver connection health, through the admin HTTP API, against the embedded
 * homeserver: connected with a small sync lag; the homeserver stopped (an outage), so the loop
 * fails with network errors, backs off and retries, the lag growing; started again on the same
 * port and data, so the loop recovers; then a burst of 503s on `/sync` while a second user writes,
 * after which the batch handed over shows how far behind it was.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { fromEffectPort } from "@widgethost/core/effect"
import { createEngine } from "@widgethost/engine"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver } from "@widgethost/homeserver-client"
import { approveAll } from "@widgethost/testing"
import { engineAdminModel, type HomeserverHealth, startAdminServer } from "./admin.ts"
import { ApprovalQueue } from "./approvals.ts"
import { HomeserverHealthRecorder } from "./homeserver-health.ts"
import { MessageLog } from "./message-log.ts"

const TOKEN = "health-test-admin-token"
const PASSWORD = "widgethost-password"
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined)
})

const until = async <T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> => {
  let last: T | undefined
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    last = await read()
    if (ok(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
}

describe("homeserver connection health in the admin API", { timeout: 60_000 }, () => {
  it("connected → homeserver stopped: network errors, backoff, retries, growing lag → restarted: recovered; a 503 burst: behind by the outage", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "widgethost-health-"))
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
    let hs: EmbeddedHomeserver = await startEmbeddedHomeserver({ dataDir: join(dataDir, "hs"), registration: "open" })
    cleanups.push(() => hs.close())
    const port = Number(new URL(hs.baseUrl).port)
    await hs.createUser("widgethost", PASSWORD)
    const bob = await hs.createUser("bob", PASSWORD)

    const health = new HomeserverHealthRecorder(() => undefined)
    const homeserver = await connectHomeserver({
      baseUrl: hs.baseUrl,
      auth: { user: "widgethost", password: PASSWORD },
      dataDir: join(dataDir, "account"),
      retry: { maxAttempts: 2, baseDelayMs: 20, maxDelayMs: 40 },
      sync: { timeoutMs: 200, backoffBaseMs: 100, backoffMaxMs: 400 },
      onUndecryptable: health.roomEvent,
      onToDeviceUndecryptable: health.toDevice
    })
    cleanups.push(() => homeserver.stop())
    health.watch(() => homeserver.stats(), () => homeserver.syncHealth())
    const engine = createEngine({ homeserver: fromEffectPort(homeserver), approver: approveAll })
    cleanups.push(() => engine.stop())
    const admin = await startAdminServer({ token: TOKEN, model: engineAdminModel({ engine, widgets: () => [], approvals: new ApprovalQueue(), messages: new MessageLog(), homeserver: () => health.health() }) })
    cleanups.push(() => admin.close())
    const read = async () => {
      const res = await fetch(`${admin.url}/api/homeserver`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(res.status).toBe(200)
      return ((await res.json()) as { homeserver: HomeserverHealth | null }).homeserver!
    }

    // Before start: watched, nothing synced yet.
    expect((await read()).connection).toMatchObject({ state: "starting", lastSyncAt: null, lastSyncAgoMs: null, retries: 0, errors: {} })
    homeserver.start()
    const up = await until("connected", read, (h) => h.connection?.state === "connected" && h.syncs >= 2)
    expect(up.connection).toMatchObject({ failuresInRow: 0, backoff: null, errors: {}, lastError: null })
    expect(up.connection!.lastSyncAgoMs).toBeLessThan(5_000)

    // The outage: the homeserver is stopped (its long-polls end, new connections are refused).
    await hs.close()
    const down = await until("retrying after network errors", read, (h) => h.connection?.state === "retrying" && h.connection.retries >= 2 && (h.connection.errors.network ?? 0) >= 2)
    expect(down.connection!.failuresInRow).toBeGreaterThanOrEqual(2)
    expect(down.connection!.lastError).toMatchObject({ kind: "network" })
    expect(down.connection!.httpRetries).toBeGreaterThan(0) // each failed sync was tried twice by the HTTP client
    const syncsWhenDown = down.syncs
    const later = await until("the lag growing", read, (h) => h.connection!.lastSyncAgoMs! >= down.connection!.lastSyncAgoMs! + 300)
    expect(later.connection!.state).toBe("retrying")
    expect(later.syncs).toBe(syncsWhenDown)
    // While it sleeps between tries, the wait and what is left of it are shown.
    const sleeping = await until("a backoff wait in progress", read, (h) => h.connection!.backoff !== null)
    expect(sleeping.connection!.backoff!.retryInMs).toBeLessThanOrEqual(sleeping.connection!.backoff!.ms)
    expect(sleeping.connection!.backoff!.ms).toBeLessThanOrEqual(400)

    // Recovery: the same homeserver back on the same port, from its data.
    hs = await startEmbeddedHomeserver({ dataDir: join(dataDir, "hs"), registration: "open", port })
    const recovered = await until("connected again", read, (h) => h.connection?.state === "connected" && h.syncs > syncsWhenDown)
    expect(recovered.connection).toMatchObject({ failuresInRow: 0, backoff: null })
    expect(recovered.connection!.lastSyncAgoMs).toBeLessThan(later.connection!.lastSyncAgoMs!)
    expect(recovered.connection!.errors.network).toBeGreaterThanOrEqual(2) // the history stays

    // A burst of 503s on /sync while bob writes: the loop is behind until it gets through.
    const roomRes = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, {
      method: "POST",
      headers: { authorization: `Bearer ${bob.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ preset: "public_chat", invite: [homeserver.userId] })
    })
    const { room_id: roomId } = (await roomRes.json()) as { room_id: string }
    await fetch(`${hs.baseUrl}/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, { method: "POST", headers: { authorization: `Bearer ${(await hs.ensureUser("widgethost", PASSWORD)).accessToken}`, "content-type": "application/json" }, body: "{}" })
    await until("the room joined and synced", read, (h) => h.syncs > recovered.syncs + 1)
    hs.injectFault({ path: /\/sync$/, method: "GET", times: 8, kind: { status: 503, body: { errcode: "M_UNKNOWN", error: "overloaded" } } })
    await until("503s counted", read, (h) => (h.connection!.errors["server-error"] ?? 0) >= 1)
    const sent = await fetch(`${hs.baseUrl}/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t1`, {
      method: "PUT",
      headers: { authorization: `Bearer ${bob.accessToken}`, "content-type": "application/json" },
      body: JSON.stringify({ msgtype: "m.text", body: "written during the 503s" })
    })
    expect(sent.status).toBe(200)
    const sentAt = Date.now()
    const caughtUp = await until("caught up after the 503s", read, (h) => h.connection?.state === "connected" && h.delivered > recovered.delivered)
    expect(caughtUp.connection!.errors["server-error"]).toBeGreaterThanOrEqual(4) // 8 faults, 2 HTTP attempts per sync
    // Sent after the first or second failed sync; at least two more waits (of at least 100, 200 and
    // 200 ms: base 100, cap 400, jitter in the upper half) held it back before it was handed over.
    expect(caughtUp.connection!.behindMs).toBeGreaterThanOrEqual(250)
    expect(caughtUp.connection!.behindMs).toBeLessThanOrEqual(Date.now() - sentAt + 1_000)
    expect(caughtUp.held).toBe(0) // nothing waiting for a key: the undecryptable-pending count
  })
})
