/**
 * What each E2EE interop test against a js-sdk peer starts from: a fresh embedded homeserver, a
 * temporary directory, cleanups run in reverse after the test, and the SDK's loggers and the Rust
 * crypto's tracing collected, shown only when the test fails. `world` is also what
 * `rustCryptoPeer` takes (`hs`, `logs`, `cleanups`).
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type EmbeddedHomeserver, startEmbeddedHomeserver } from "@widgethost/embedded-homeserver"
import { afterEach, beforeEach } from "vitest"
import { silenceJsSdk } from "./js-sdk-logger.ts"

export interface E2eeWorld {
  /** This test's homeserver (a new one per test). */
  hs: EmbeddedHomeserver
  /** This test's temporary directory (removed after it). */
  root: string
  readonly logs: Array<string>
  readonly cleanups: Array<() => unknown>
}

/** Registers the per-test set-up and tear-down in the calling file; the fields are set before each test. */
export const useE2eeWorld = (prefix: string): E2eeWorld => {
  const world: E2eeWorld = { hs: undefined as unknown as EmbeddedHomeserver, root: "", logs: [], cleanups: [] }
  silenceJsSdk(world.logs)
  beforeEach(async () => {
    world.hs = await startEmbeddedHomeserver()
    world.root = await mkdtemp(join(tmpdir(), prefix))
  })
  afterEach(async (context) => {
    for (const c of world.cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined)
    await world.hs.close()
    await rm(world.root, { recursive: true, force: true })
    if (context.task.result?.state === "fail") process.stderr.write(`${world.logs.slice(-200).join("\n")}\n`)
    world.logs.length = 0
  })
  return world
}
