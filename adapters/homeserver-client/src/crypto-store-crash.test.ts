import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, existsSync, openSync, readSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { deserialize } from "node:v8"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { readJournal, readRecords } from "./crypto-journal.ts"
import type { CryptoStoreCompaction } from "./crypto-store.ts"
import { E2ee, type RawEvent } from "./crypto.ts"
import { MatrixHttp, path } from "./matrix-http.ts"
import { readSnapshot, SNAPSHOT_MAGIC } from "./snapshot-file.ts"

/**
 * The crypto store under `kill -9`: Bob's OlmMachine runs in a child process on a real homeserver
 * (the embedded one), syncing Alice's room keys and Olm to-device messages, and reports each round
 * on stdout only after its `persist()` resolved: an acknowledged round. The child is killed with
 * SIGKILL at a random moment, several times over the same store; after each kill the store must
 * open with the same identity keys and decrypt every event whose room key an acknowledged round
 * brought, and the next child must keep decrypting Alice's Olm messages (the Olm session lived).
 */

/** Bob: opens the store, uploads keys, then sync rounds until killed; one JSON line per acknowledged round. */
const CHILD = `
const [crypto, matrixHttp] = await Promise.all([import(process.argv[1]), import(process.argv[2])])
const [baseUrl, accessToken, userId, deviceId, storeFile, resumeFrom, optionsJson] = process.argv.slice(3)
const options = JSON.parse(optionsJson)
const http = new matrixHttp.MatrixHttp({ baseUrl, accessToken })
const e2ee = await crypto.E2ee.open({ userId, deviceId, http, storeFile, storeCompaction: options.storeCompaction })
await e2ee.processOutgoingRequests()
if (resumeFrom === "" && options.importSessions > 0) {
  // Bulk for the store (room keys of another sender, as a key-file import): compactions take a while.
  const { generateKeyPairSync, randomBytes } = await import("node:crypto")
  const b64 = (bytes) => Buffer.from(bytes).toString("base64").replace(/=+$/, "")
  const senderKey = b64(randomBytes(32))
  const batch = Array.from({ length: options.importSessions }, () => {
    const signing = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32)
    const sessionKey = Buffer.concat([Buffer.from([1]), Buffer.alloc(4), randomBytes(128), signing])
    return { algorithm: "m.megolm.v1.aes-sha2", room_id: "!bulk:localhost", sender_key: senderKey, session_id: b64(signing), session_key: b64(sessionKey), sender_claimed_keys: { ed25519: b64(signing) }, forwarding_curve25519_key_chain: [] }
  })
  const result = await e2ee.exclusive((machine) => machine.importExportedRoomKeys(JSON.stringify(batch), () => undefined))
  result.free()
  await e2ee.persist()
}
const say = (o) => process.stdout.write(JSON.stringify(o) + "\\n")
const sessions = []
e2ee.onRoomKeys((keys) => { for (const k of keys) sessions.push(k.sessionId) })
say({ ready: e2ee.identityKeys() })
let since = resumeFrom === "" ? undefined : resumeFrom
for (let round = 0; ; round++) {
  const res = await http.request({ method: "GET", path: "/_matrix/client/v3/sync", query: { timeout: 5000, since }, timeoutMs: 20000 })
  const got = await e2ee.receiveSync({
    toDevice: res.to_device?.events ?? [],
    changed: res.device_lists?.changed ?? [],
    left: res.device_lists?.left ?? [],
    oneTimeKeyCounts: res.device_one_time_keys_count ?? {},
    unusedFallbackKeyTypes: res.device_unused_fallback_key_types
  })
  await e2ee.persist()
  since = res.next_batch
  say({ ack: round, since, sessions: sessions.splice(0), pings: got.filter((e) => e.type === "org.example.ping" && e.encrypted).map((e) => e.content.n) })
}
`

interface ChildLine {
  readonly ready?: { readonly ed25519: string; readonly curve25519: string }
  readonly ack?: number
  readonly since?: string
  readonly sessions?: ReadonlyArray<string>
  readonly pings?: ReadonlyArray<number>
}

const ROOM = "!crash:localhost"

let hs: EmbeddedHomeserver
let dir: string
const children: Array<ChildProcess> = []
const machines: Array<E2ee> = []
beforeEach(async () => {
  hs = await startEmbeddedHomeserver()
  dir = await mkdtemp(join(tmpdir(), "widgethost-crypto-crash-"))
})
afterEach(async () => {
  for (const c of children.splice(0)) c.kill("SIGKILL")
  for (const m of machines.splice(0)) await m.close()
  await hs.close()
  await rm(dir, { recursive: true, force: true })
})

interface ChildOptions {
  readonly storeCompaction?: CryptoStoreCompaction
  /** Room keys imported by the first child, so that the store is big enough for compactions to take a while. */
  readonly importSessions?: number
}

const spawnBob = (bob: { accessToken: string; userId: string; deviceId: string }, storeFile: string, since: string, options: ChildOptions): ChildProcess => {
  const src = (f: string) => fileURLToPath(new URL(f, import.meta.url))
  const child = spawn(
    process.execPath,
    ["--conditions=@widgethost/source", "--import", "tsx", "--input-type=module", "-e", CHILD, src("./crypto.ts"), src("./matrix-http.ts"), hs.baseUrl, bob.accessToken, bob.userId, bob.deviceId, storeFile, since, JSON.stringify(options)],
    { stdio: ["ignore", "pipe", "pipe"] }
  )
  children.push(child)
  return child
}

interface KillPlan {
  readonly iterations: number
  readonly child: ChildOptions
  /** Called once Olm messages flow in a child; kills it at some moment; returns what stops that. */
  readonly arm: (child: ChildProcess, storeFile: string) => () => void
  /** Looks at the files a kill left, before they are reopened. */
  readonly afterKill?: (storeFile: string) => Promise<void>
}

/**
 * Bob's children, one after another on the same store, each killed as `plan` says; after each
 * kill the store reopens with the same identity and decrypts every acknowledged room key, and
 * every child decrypted Alice's Olm messages (her Olm session lived through the kills).
 */
const killLoop = async (plan: KillPlan): Promise<void> => {
    const alice = await hs.ensureUser("alice", "pw")
    const bob = await hs.ensureUser("bob", "pw")
    const aliceHttp = new MatrixHttp({ baseUrl: hs.baseUrl, accessToken: alice.accessToken })
    const aliceE2ee = await E2ee.open({ userId: alice.userId, deviceId: alice.deviceId, http: aliceHttp })
    machines.push(aliceE2ee)
    await aliceE2ee.processOutgoingRequests()
    const storeFile = join(dir, "bob", "crypto.v8")

    /** Each message gets its own room key (rotation after one message): an acknowledged session names one event. */
    const sent = new Map<string, { readonly event: RawEvent; readonly body: string }>()
    let next = 0
    const sendRound = async () => {
      const n = next++
      const body = `message ${n}`
      const content = await aliceE2ee.encryptRoomEvent(ROOM, [alice.userId, bob.userId], "m.room.message", { msgtype: "m.text", body }, { rotation_period_msgs: 1 })
      sent.set(String(content["session_id"]), { event: { type: "m.room.encrypted", event_id: `$m${n}`, sender: alice.userId, origin_server_ts: 1, content }, body })
      const { messages } = await aliceE2ee.encryptToDevice("org.example.ping", { [bob.userId]: { [bob.deviceId]: { n } } })
      await aliceHttp.request({ method: "PUT", path: path`/_matrix/client/v3/sendToDevice/m.room.encrypted/ping-${n}`, body: { messages } })
    }

    let identity: ChildLine["ready"]
    let since = ""
    const acknowledgedSessions = new Set<string>()
    const pingsPerIteration: Array<number> = []
    for (let iteration = 0; iteration < plan.iterations; iteration++) {
      const child = spawnBob(bob, storeFile, since, plan.child)
      let stderr = ""
      child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      let pings = 0
      let disarm: (() => void) | undefined
      // Alice sends round after round while the child lives: its syncs batch what came meanwhile.
      let alive = true
      let sending: Promise<void> | undefined
      let sendFailure: unknown
      const sendWhileAlive = async () => {
        while (alive) await sendRound()
      }
      // A child that never gets going is killed too; the assertions below then say what was missing.
      const stuck = setTimeout(() => child.kill("SIGKILL"), 90_000)
      for await (const text of createInterface({ input: child.stdout! })) {
        const line = JSON.parse(text) as ChildLine
        if (line.ready !== undefined) {
          if (identity === undefined) identity = line.ready
          expect(line.ready, "identity keys after a SIGKILL").toEqual(identity)
          sending = sendWhileAlive().catch((e: unknown) => {
            sendFailure = e
            child.kill("SIGKILL")
          })
        } else if (line.ack !== undefined) {
          since = line.since ?? since
          for (const s of line.sessions ?? []) acknowledgedSessions.add(s)
          pings += (line.pings ?? []).length
          if (pings > 0) disarm ??= plan.arm(child, storeFile)
        }
      }
      alive = false
      disarm?.()
      clearTimeout(stuck)
      await exited
      await sending
      expect(sendFailure, "Alice's sends failed").toBeUndefined()
      expect(child.signalCode, `the child died by itself:\n${stderr}`).toBe("SIGKILL")
      pingsPerIteration.push(pings)
      await plan.afterKill?.(storeFile)

      // Reopened in this process: the file alone must hold every acknowledged round.
      const reopened = await E2ee.open({ userId: bob.userId, deviceId: bob.deviceId, http: new MatrixHttp({ baseUrl: hs.baseUrl, accessToken: bob.accessToken }), storeFile })
      machines.push(reopened)
      expect(reopened.identityKeys()).toEqual(identity)
      for (const sessionId of acknowledgedSessions) {
        const message = sent.get(sessionId)
        if (message === undefined) continue // Bob's own outbound sessions: none here
        const outcome = await reopened.decryptRoomEvent(ROOM, message.event)
        expect(outcome, `acknowledged room key ${sessionId} lost at iteration ${iteration}`).toMatchObject({ _tag: "Decrypted", event: { content: { body: message.body } } })
      }
      await reopened.close()
      machines.splice(machines.indexOf(reopened), 1)
    }
    expect(acknowledgedSessions.size).toBeGreaterThanOrEqual(plan.iterations)
    // Every child, the restarted ones included, decrypted Alice's Olm messages: her one Olm
    // session to Bob, made before the first kill, survived in his store.
    expect(pingsPerIteration.every((n) => n > 0), `pings per iteration ${pingsPerIteration.join(",")}`).toBe(true)
}

describe("crypto store under SIGKILL", () => {
  it("a child killed at random points loses no acknowledged round: the store reopens, same identity, every acknowledged room key decrypts, Olm goes on", { timeout: 180_000 }, async () => {
    await killLoop({
      iterations: 3,
      child: {},
      // Killed at a random moment once Olm messages flow: mid-sync, mid-decrypt, mid-append.
      arm: (child) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), Math.random() * 1500)
        return () => clearTimeout(timer)
      }
    })
  })

  it("a child killed during compactions at random points loses no acknowledged round", { timeout: 300_000 }, async () => {
    // A compaction every two rounds, in small pages, over a store of a few thousand room keys:
    // the child spends most of its time compacting, rounds appending meanwhile.
    const child: ChildOptions = { storeCompaction: { maxJournalRounds: 2, pageRecords: 64 }, importSessions: 500 }
    const states: Array<string> = []
    let firstGeneration: number | undefined
    let lastGeneration = 0
    await killLoop({
      iterations: 5,
      child,
      // Killed at a random moment after this child finished a compaction of its own (so they
      // progress across the restarts); compactions run nearly all the time, so the kill lands
      // mid-cut, mid-read, mid-write, at the renames, or between two of them.
      arm: (bob, storeFile) => {
        const start = generationOnDisk(storeFile)
        let timer: NodeJS.Timeout | undefined
        const poll = setInterval(() => {
          if (timer === undefined && generationOnDisk(storeFile) > start) timer = setTimeout(() => bob.kill("SIGKILL"), Math.random() * 1500)
        }, 5)
        return () => {
          clearInterval(poll)
          clearTimeout(timer)
        }
      },
      afterKill: async (storeFile) => {
        const state = await compactionState(storeFile)
        states.push(state.name)
        firstGeneration ??= state.generation
        lastGeneration = state.generation
      }
    })
    process.stdout.write(`crypto store kills during compactions: ${states.join("; ")} (generations ${firstGeneration} to ${lastGeneration})\n`)
    // The kills did land inside compactions (a new segment beside the old journal), and
    // compactions went on across the restarts.
    expect(states.filter((s) => s !== "between compactions").length, `states after the kills: ${states.join(", ")}`).toBeGreaterThan(0)
    expect(lastGeneration, `states after the kills: ${states.join(", ")}`).toBeGreaterThan(firstGeneration ?? 0)
  })
})

/** The snapshot's generation, from its header alone (the first record; the file is renamed in whole). */
const generationOnDisk = (storeFile: string): number => {
  const head = Buffer.alloc(4096)
  const fd = openSync(storeFile, "r")
  try {
    const n = readSync(fd, head, 0, head.length, 0)
    const header = readRecords(head.subarray(0, n), SNAPSHOT_MAGIC.length).payloads[0]
    return header === undefined ? -1 : (deserialize(header) as { generation: number }).generation
  } finally {
    closeSync(fd)
  }
}

/** Which step of a compaction the files are at (crypto-store-files.ts has the table). */
const compactionState = async (storeFile: string): Promise<{ readonly name: string; readonly generation: number }> => {
  const snapshot = readSnapshot(await readFile(storeFile), storeFile)
  if (!existsSync(`${storeFile}.journal.next`)) return { name: "between compactions", generation: snapshot.generation }
  const next = readJournal(await readFile(`${storeFile}.journal.next`)).header.generation
  return { name: next === snapshot.generation ? "snapshot renamed, journal not yet" : "cut, snapshot being written", generation: snapshot.generation }
}
