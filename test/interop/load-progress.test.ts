/**
 * Interop: the progress of the long work of connecting, against the embedded homeserver. An
 * account in many rooms connects: its first sync reports waiting for the homeserver, then each
 * room taken in, then done; connecting again from the same data directory, the crypto store's
 * load reports its records restored (as many as the snapshot holds), the machine opened, and
 * done. Drawn by the service's progress line on a (recorded) terminal, each task is rewritten in
 * place and ends with one final line.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { startEmbeddedHomeserver, type EmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { connectHomeserver, type LoadProgress } from "@widgethost/homeserver-client"
import { ProgressLine } from "@widgethost/service"

const ROOMS = 40
let hs: EmbeddedHomeserver | undefined
let dir: string | undefined
afterEach(async () => {
  await hs?.close()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe("load progress: the first sync of an account in many rooms, the crypto store's load", { timeout: 120_000 }, () => {
  it("reports each, in order, ending finished; the progress line draws them in place", async () => {
    hs = await startEmbeddedHomeserver({ registration: "open" })
    dir = await mkdtemp(join(tmpdir(), "widgethost-progress-"))
    const me = await hs.createUser("many", "pw-many")
    for (let i = 0; i < ROOMS; i++) {
      const res = await fetch(`${hs.baseUrl}/_matrix/client/v3/createRoom`, { method: "POST", headers: { authorization: `Bearer ${me.accessToken}`, "content-type": "application/json" }, body: JSON.stringify({ name: `room ${i}` }) })
      expect(res.status).toBe(200)
    }
    const connect = async (seen: LoadProgress[]) => {
      const port = await connectHomeserver({ baseUrl: hs!.baseUrl, auth: { user: "many", password: "pw-many" }, dataDir: join(dir!, "account"), sync: { timeoutMs: 200 }, onProgress: (p) => void seen.push(p) })
      port.start()
      await port.nextSync()
      await port.stop()
    }

    const first: LoadProgress[] = []
    await connect(first)
    const firstSync = first.filter((p) => p.task === "first-sync")
    expect(firstSync[0]).toEqual({ task: "first-sync", step: "waiting for the homeserver", done: 0, total: 0, unit: "", finished: false })
    expect(firstSync.filter((p) => p.step === "taking in rooms").map((p) => p.done)).toEqual(Array.from({ length: ROOMS + 1 }, (_, i) => i))
    expect(firstSync.at(-1)).toEqual({ task: "first-sync", step: "done", done: ROOMS, total: ROOMS, unit: "rooms", finished: true })
    // A new account's store has nothing to restore: its load is reported, with nothing to count.
    expect(first.filter((p) => p.task === "crypto-store").at(-1)).toMatchObject({ finished: true, total: 0 })

    const again: LoadProgress[] = []
    await connect(again)
    const store = again.filter((p) => p.task === "crypto-store")
    const restoring = store.filter((p) => p.step === "restoring records")
    const total = restoring[0]!.total
    expect(total).toBeGreaterThan(0)
    expect(restoring.at(-1)!.done).toBe(total)
    expect(restoring.map((p) => p.done)).toEqual([...restoring.map((p) => p.done)].sort((a, b) => a - b))
    expect(store.map((p) => p.step).filter((s, i, all) => all.indexOf(s) === i)).toEqual(["reading the store", "replaying the journal", "restoring records", "opening the crypto machine", "loaded"])
    expect(store.at(-1)).toEqual({ task: "crypto-store", step: "loaded", done: total, total, unit: "records", finished: true })
    // (The first run wrote after its snapshot: those writes are in the journal, replayed after the records.)
    // From a saved token there is no first sync to report.
    expect(again.some((p) => p.task === "first-sync")).toBe(false)

    // The same reports on a terminal: rewritten in place, one final line per task.
    const writes: string[] = []
    const line = new ProgressLine({ isTTY: true, columns: 100, write: (text) => void writes.push(text) }, { intervalMs: 0 })
    for (const p of [...again, ...first.filter((q) => q.task === "first-sync")]) line.update(p)
    const screen = writes.join("")
    expect(screen.split("\n").filter((l) => l !== "").map((l) => l.split("\r").at(-1)!.replace("\x1b[K", ""))).toEqual([
      expect.stringMatching(new RegExp(`^crypto store: done, ${total.toLocaleString("en-US")} records in \\d`)),
      expect.stringMatching(new RegExp(`^first sync: done, ${ROOMS} rooms in \\d`))
    ])
    expect(writes.filter((w) => w.startsWith("\r") && !w.endsWith("\n")).length).toBeGreaterThan(ROOMS)
    process.stderr.write(`load progress, as a terminal shows it (\\r steps): ${JSON.stringify(writes.slice(0, 3))} … ${JSON.stringify(writes.slice(-2))}\n`)
  })
})
