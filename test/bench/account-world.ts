/**
 * The account path's world: the embedded homeserver over real HTTP on 127.0.0.1, Alice and Bob
 * in one room (clear or encrypted), both synced once, Alice then offline with her sync position
 * and crypto store saved. Shared by the catch-up, idle and live measurements of
 * `account-path.ts`; only Alice's port runs in the measuring process.
 *
 * Where the homeserver (and Bob, the sender) run is the `placement`:
 * - "child process" (`account-server.ts`): another process, as in real use, where the homeserver
 *   and the other users are other machines. On this 2-core machine client and server then each
 *   have a core, and the measuring process's CPU is Alice's client alone.
 * - "same process": the homeserver and Bob share Alice's event loop, so every number also pays
 *   for building each sync response, serving each send and Bob's client.
 *
 * Only Alice keeps her data on disk (sync position and crypto store, written durably after each
 * sync, as a deployed host does). The homeserver and Bob run in memory: on this machine's disk
 * one durable write costs about 10 ms, and the homeserver's journal (one datasync per send) and
 * Bob's own saves would otherwise be timed as if they were Alice's client.
 */
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { type ConnectOptions, type MatrixHomeserver, connectHomeserver } from "@widgethost/homeserver-client"
import { path } from "@widgethost/homeserver-client"
import { startInEncryptedRoom } from "../src/engine-fixture.ts"

const PASSWORD = "correct horse battery staple"

export type Placement = "child process" | "same process"

/** What the measuring process needs to know of a world, whichever process holds it. */
export interface WorldInfo {
  readonly baseUrl: string
  readonly root: string
  readonly roomId: string
  readonly aliceUser: string
  readonly encrypted: boolean
}

export interface World extends WorldInfo {
  readonly placement: Placement
  /**
   * Bob sends `${prefix} m0` … `${prefix} m${count - 1}` (encrypted where the room is), `inFlight`
   * at once; resolves with each message's send time, on the shared clock {@link sharedNow}.
   */
  sendMany(prefix: string, count: number, inFlight: number): Promise<ReadonlyArray<number>>
  /** CPU µs the homeserver's process has used so far (this process's, when it is the same). */
  serverCpuMicros(): Promise<number>
  close(): Promise<void>
}

/** Milliseconds on a clock every process on this machine shares (sub-millisecond resolution). */
export const sharedNow = (): number => performance.timeOrigin + performance.now()

const cpuMicros = () => {
  const cpu = process.cpuUsage()
  return cpu.user + cpu.system
}

/** Alice's port on her saved data (call `start()` to sync). */
export const openAlice = (w: WorldInfo, sync: ConnectOptions["sync"] = {}): Promise<MatrixHomeserver> => open(w.baseUrl, w.aliceUser, join(w.root, "alice"), sync)

const open = (baseUrl: string, user: string, dataDir: string | undefined, sync: ConnectOptions["sync"] = {}) =>
  connectHomeserver({ baseUrl, auth: { user, password: PASSWORD }, ...(dataDir === undefined ? {} : { dataDir }), sync: { timeoutMs: 1_000, timelineLimit: 1_000, maxGapEvents: 25_000, ...sync } })

/** The homeserver, Bob and the room in this process; Alice's data under `root`. */
export const setUpHere = async (encrypted: boolean, root: string): Promise<World> => {
  const hs: EmbeddedHomeserver = await startEmbeddedHomeserver({})
  const alice = await hs.ensureUser("alice", PASSWORD)
  const bobUser = await hs.ensureUser("bob", PASSWORD)
  const a = await open(hs.baseUrl, alice.userId, join(root, "alice"))
  const bob = await open(hs.baseUrl, bobUser.userId, undefined)
  let roomId: string
  if (encrypted) roomId = await startInEncryptedRoom(a, bob)
  else {
    roomId = (await a.http.request<{ room_id: string }>({ method: "POST", path: "/_matrix/client/v3/createRoom", body: { preset: "public_chat" } })).room_id
    await bob.http.request({ method: "POST", path: path`/_matrix/client/v3/rooms/${roomId}/join`, body: {} })
    const synced = [a.nextSync(), bob.nextSync()]
    a.start()
    bob.start()
    await Promise.all(synced)
  }
  await a.stop()
  const sendOne = (body: string) => Effect.runPromise(bob.sendEvent({ _tag: "SendEvent", roomId, type: "m.room.message", content: { msgtype: "m.text", body } }))
  return {
    baseUrl: hs.baseUrl,
    root,
    roomId,
    aliceUser: alice.userId,
    encrypted,
    placement: "same process",
    sendMany: async (prefix, count, inFlight) => {
      const at = new Array<number>(count)
      let next = 0
      const sender = async () => {
        while (next < count) {
          const i = next++
          at[i] = sharedNow()
          await sendOne(`${prefix} m${i}`)
        }
      }
      await Promise.all(Array.from({ length: Math.max(1, inFlight) }, sender))
      return at
    },
    serverCpuMicros: async () => cpuMicros(),
    close: async () => {
      await bob.stop()
      await hs.close()
    }
  }
}

/** Messages between the measuring process and `account-server.ts`. */
export type ToServer = { readonly type: "send"; readonly id: number; readonly prefix: string; readonly count: number; readonly inFlight: number } | { readonly type: "cpu"; readonly id: number } | { readonly type: "close"; readonly id: number }
export type FromServer =
  | { readonly type: "ready"; readonly world: WorldInfo }
  | { readonly type: "sent"; readonly id: number; readonly at: ReadonlyArray<number> }
  | { readonly type: "cpu"; readonly id: number; readonly micros: number }
  | { readonly type: "closed"; readonly id: number }
  | { readonly type: "failed"; readonly message: string }

const serverEntry = fileURLToPath(new URL("./account-server.ts", import.meta.url))
const loader = fileURLToPath(new URL("./loader.mjs", import.meta.url))

/** The homeserver and Bob in a child process (`account-server.ts`), driven over IPC. */
const setUpInChild = async (encrypted: boolean, root: string): Promise<World> => {
  const child = spawn(process.execPath, [...(process.env.ACCOUNT_SERVER_PROF === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${process.env.ACCOUNT_SERVER_PROF}`]), "--import", loader, serverEntry, JSON.stringify({ encrypted, root })], { stdio: ["ignore", "inherit", "inherit", "ipc"] })
  const waiting = new Map<number, (m: FromServer) => void>()
  let failure: Error | undefined
  let readied: (info: WorldInfo) => void = () => {}
  let failedReady: (e: Error) => void = () => {}
  const ready = new Promise<WorldInfo>((resolve, reject) => ((readied = resolve), (failedReady = reject)))
  const fail = (e: Error) => {
    failure = e
    failedReady(e)
    for (const w of waiting.values()) w({ type: "failed", message: e.message })
    waiting.clear()
  }
  child.on("message", (m: FromServer) => {
    if (m.type === "ready") readied(m.world)
    else if (m.type === "failed") fail(new Error(`account server: ${m.message}`))
    else {
      waiting.get(m.id)?.(m)
      waiting.delete(m.id)
    }
  })
  child.once("exit", (code) => fail(new Error(`account server exited with code ${code}`)))
  let ids = 0
  const ask = <T extends FromServer["type"]>(request: ToServer, type: T): Promise<Extract<FromServer, { type: T }>> =>
    new Promise((resolve, reject) => {
      if (failure !== undefined) return reject(failure)
      waiting.set(request.id, (m) => (m.type === type ? resolve(m as Extract<FromServer, { type: T }>) : reject(new Error(m.type === "failed" ? m.message : `unexpected ${m.type}`))))
      child.send(request)
    })
  const info = await ready
  return {
    ...info,
    placement: "child process",
    sendMany: async (prefix, count, inFlight) => (await ask({ type: "send", id: ++ids, prefix, count, inFlight }, "sent")).at,
    serverCpuMicros: async () => (await ask({ type: "cpu", id: ++ids }, "cpu")).micros,
    close: async () => {
      const exited = new Promise((resolve) => child.once("exit", resolve))
      await ask({ type: "close", id: ++ids }, "closed").catch(() => undefined)
      await exited
    }
  }
}

export const setUp = async (encrypted: boolean, placement: Placement): Promise<World> => {
  const root = await mkdtemp(join(tmpdir(), "widgethost-account-path-"))
  const world = placement === "same process" ? await setUpHere(encrypted, root) : await setUpInChild(encrypted, root)
  return {
    ...world,
    close: async () => {
      await world.close()
      await rm(root, { recursive: true, force: true })
    }
  }
}

export const tearDown = (w: World): Promise<void> => w.close()

/** Bob sends one message (encrypted where the room is). */
export const sendOne = async (w: World, body: string): Promise<void> => {
  await w.sendMany(body, 1, 1)
}
